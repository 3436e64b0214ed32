"""voice2face web demo: record or upload speech, see the faces drawn from several lengths of it.

    python app.py [--checkpoint DIR] [--host 127.0.0.1] [--port 7860] [--share]

Layout and wiring only; what the page computes lives in voice2face/webui.py.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no network calls at run time

import gradio as gr  # noqa: E402

from voice2face import DEFAULT_CHECKPOINT, Voice2Face, Voice2FaceError  # noqa: E402
from voice2face.decode import SUPPORTED_FORMATS  # noqa: E402
from voice2face.limits import MAX_AUDIO_SECONDS  # noqa: E402
from voice2face.webui import (  # noqa: E402
    DEFAULT_CHOICES,
    DURATION_CHOICES,
    MAX_UPLOAD,
    demo_request,
    example_clips,
    model_card,
)

#: Requests computed at once; each takes a fraction of a second on CPU.
CONCURRENCY = 2

INTRO = """# voice2face
Speak for a few seconds (or upload a clip) and see the face a neural network draws from the voice,
for the **first 1, 2, 4, 8 seconds of speech and the whole clip** side by side: longer clips give the
model more to go on. Method: Wen, Singh & Raj, *Reconstructing faces from voices*, NeurIPS 2019.
"""


def build_demo(model: Voice2Face, checkpoint: Path) -> gr.Blocks:
    def draw(audio, choices, extra):
        try:
            out = demo_request(model, audio, choices, extra)
        except Voice2FaceError as err:
            raise gr.Error(str(err), title="Could not draw a face") from None
        return out.gallery, out.settle, out.spectrogram, out.strip, out.notes

    with gr.Blocks(title="voice2face") as demo:
        gr.Markdown(INTRO)
        gr.Markdown(model_card(model, checkpoint), elem_id="model-card")
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=300):
                audio = gr.Audio(
                    sources=["microphone", "upload"],
                    type="filepath",
                    label=f"Your voice ({SUPPORTED_FORMATS}; first {MAX_AUDIO_SECONDS:.0f} s used)",
                    elem_id="voice",
                )
                choices = gr.CheckboxGroup(
                    DURATION_CHOICES, value=DEFAULT_CHOICES, label="Lengths of speech to compare", elem_id="lengths"
                )
                extra = gr.Textbox(label="Other lengths in seconds (optional)", placeholder="e.g. 3 12.5", max_lines=1)
                button = gr.Button("Draw faces", variant="primary", elem_id="draw")
                gr.Examples(example_clips(), inputs=[audio], label="Examples (synthetic espeak-ng voices)")
            with gr.Column(scale=3, min_width=300):
                gallery = gr.Gallery(
                    label="Faces, shortest to longest", columns=5, height=260, object_fit="contain", format="png", elem_id="faces"
                )
                notes = gr.Markdown(elem_id="notes")
        with gr.Row(equal_height=False):  # min_width: on a phone the two stack instead of squeezing
            with gr.Column(min_width=340):
                settle = gr.LinePlot(
                    x="seconds of speech",
                    y="similarity to whole clip",
                    title="How the voice embedding settles",  # short: it must fit a phone
                    y_lim=[-1, 1],
                    height=260,
                )
            with gr.Column(min_width=340):
                spectrogram = gr.Image(label="Log-mel spectrogram of the speech, cut points marked", type="pil")
        strip = gr.Image(label="Side-by-side strip (download as PNG)", type="pil", format="png", elem_id="strip")

        button.click(
            draw,
            inputs=[audio, choices, extra],
            outputs=[gallery, settle, spectrogram, strip, notes],
            api_name="faces",
            concurrency_limit=CONCURRENCY,
        )
    return demo


def launch(demo: gr.Blocks, host: str, port: int, share: bool, block: bool = True) -> None:
    """Serve the page; if a share link was asked for but cannot be made, keep serving locally."""
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=32)
    demo.launch(
        server_name=host,
        server_port=port,
        share=share,
        max_file_size=MAX_UPLOAD,
        prevent_thread_lock=True,
        show_error=True,
        theme=gr.themes.Soft(font=["system-ui", "sans-serif"], font_mono=["monospace"]),
    )
    if share and not demo.share_url:
        print(
            "\nCould not open a public share link (this machine is offline, or Gradio's tunnel helper is missing). "
            f"The demo is still serving locally at http://{host}:{port}\n",
            file=sys.stderr,
        )
    if block:
        demo.block_thread()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="voice2face web demo")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="checkpoint directory (default: %(default)s)")
    parser.add_argument(
        "--host",
        default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        help="address to serve on; 0.0.0.0 for all interfaces (default: %(default)s, or $GRADIO_SERVER_NAME as on Spaces)",
    )
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)), help="port (default: %(default)s)"
    )
    parser.add_argument("--share", action="store_true", help="also open a temporary public link through Gradio's share service")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: cpu)")
    args = parser.parse_args(argv)
    try:
        model = Voice2Face.from_pretrained(args.checkpoint, device=args.device)
    except Voice2FaceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    launch(build_demo(model, args.checkpoint), args.host, args.port, args.share)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
