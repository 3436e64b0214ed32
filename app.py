"""voice2face web demo: record or upload speech, see the faces drawn from several lengths of it.

    python app.py [--checkpoint DIR] [--host 127.0.0.1] [--port 7860] [--share]

Layout and wiring only; what the page computes lives in voice2face/webui.py
(one request) and voice2face/live.py (the live view).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import logging
import math
import os
import signal
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no network calls at run time
# a cache folder of our own: the sweep deletes everything in it, and /tmp/gradio is every Gradio app's
os.environ.setdefault("GRADIO_TEMP_DIR", tempfile.mkdtemp(prefix="voice2face-cache-"))

import gradio as gr  # noqa: E402
from gradio.exceptions import InvalidPathError  # noqa: E402
from gradio_client.utils import is_http_url_like  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

from voice2face import DEFAULT_CHECKPOINT, Voice2Face, Voice2FaceError  # noqa: E402
from voice2face.audio.decode import SUPPORTED_FORMATS  # noqa: E402
from voice2face.cache_sweep import CacheSweeper  # noqa: E402
from voice2face.closed_routes import ClosedRoutes  # noqa: E402
from voice2face.images import DISPLAY_SIZE  # noqa: E402
from voice2face.limits import CACHE_AGE_S, CACHE_MAX_BYTES, CACHE_SWEEP_S, MAX_AUDIO_SECONDS  # noqa: E402
from voice2face.live import NO_RECORDING, LiveRecordings  # noqa: E402
from voice2face.memory import limit_malloc_arenas, return_freed_memory  # noqa: E402
from voice2face.paths import OPENVINO_CACHE  # noqa: E402
from voice2face.request_size import RequestSizeLimit  # noqa: E402
from voice2face.webui import (  # noqa: E402
    DEFAULT_CHOICES,
    DURATION_CHOICES,
    EXAMPLE_NOTE,
    MAX_EXTRA_CHARS,
    MAX_UPLOAD,
    OLDER_RANGE,
    PAGE_JS,
    PLAIN_SUMMARY,
    DemoOutput,
    changed_face,
    demo_request,
    demo_steps,
    example_clips,
    faces_html,
    full_size_strip,
    image_html,
    is_untrained,
    message_html,
    model_card,
    notes_html,
    reading_text,
    save_png,
    slider_values,
    warm_up,
)

log = logging.getLogger("voice2face.app")

#: Requests computed at once, and requests allowed to wait; each takes a fraction of a second on CPU.
CONCURRENCY = 2
QUEUE_SIZE = 32
#: The live view redraws the face this often while the microphone records.
LIVE_EVERY_S = 1.0

CSS = """
.v2f-faces { display: flex; flex-wrap: wrap; gap: 10px; justify-content: flex-start; }
.v2f-face { margin: 0; flex: 0 1 calc(33.3% - 7px); min-width: 72px; max-width: 256px; }  /* 3 a row: faces big enough to judge */
.v2f-placeholder { aspect-ratio: 1; border-radius: 6px; background: #eceef3; color: #6b7280; display: flex;
                   align-items: center; justify-content: center; font-size: 0.9rem; }
.v2f-face img, #tuned-face img { width: 100%; height: auto; display: block; border-radius: 6px; }
#tuned-face img { max-width: 256px; }
.v2f-face figcaption { text-align: center; font-size: 0.95rem; margin-top: 4px; }
.v2f-example-note { margin: 0 0 8px 0; color: #4b5563; }
.v2f-error { border: 2px solid #c0392b; background: #fdecea; color: #611a15; border-radius: 8px; padding: 10px 14px; }
.v2f-error p { margin: 4px 0 0 0; }
#live-face img { max-width: 256px; }
#voice .controls, #live-voice .controls { flex-wrap: wrap; gap: 8px; }
#voice select, #live-voice select { max-width: 100%; width: auto; flex: 1 1 12rem; }  /* the microphone's whole name */
@media (max-width: 600px) { .v2f-face { flex-basis: calc(50% - 5px); } }
"""

INTRO = """# voice2face
Speak for a few seconds or upload a clip: a neural network draws a face from the voice, for the **first 1, 2, 4 and 8 s
of speech and the whole clip**, side by side.
"""


#: The page hands the full-size strip, once drawn, to the browser as a download.
CLICK_STRIP_FILE = "() => { const link = document.querySelector('#strip-file'); if (link) link.click(); }"


def refuse_web_addresses(component: gr.Audio) -> gr.Audio:
    """Make `component` refuse web addresses as input: the server would download them with no size cap.

    Gradio fetches a URL given as a file input before any event code runs; this wraps the one
    method that does it, on this component only (a subclass would make Gradio write a .pyi stub).
    """
    fetch = component.async_move_resource_to_block_cache

    async def move_local_files_only(url_or_file_path):
        if isinstance(url_or_file_path, str) and is_http_url_like(url_or_file_path):
            raise gr.Error("Send the audio file itself; web addresses are not fetched.", print_exception=False)
        return await fetch(url_or_file_path)

    component.async_move_resource_to_block_cache = move_local_files_only
    return component


def refuse_server_paths_in_our_words(demo: gr.Blocks) -> gr.Blocks:
    """An API caller that names a file on the server ("/etc/passwd") instead of uploading one is refused
    by Gradio with a message naming the server's folders; say it in our words, naming none."""
    preprocess = demo.preprocess_data

    async def uploads_only(*args, **kwargs):
        try:
            return await preprocess(*args, **kwargs)
        except InvalidPathError:
            raise gr.Error("Only files uploaded to this page can be used: send the audio file itself.", print_exception=False) from None

    demo.preprocess_data = uploads_only
    return demo


def refuse_unknown_choices(component: gr.CheckboxGroup) -> gr.CheckboxGroup:
    """Make `component` refuse values it does not offer (an API caller's "3 s") in our words, naming
    the offered lengths and the free-text box, instead of Gradio's generic "not in the list of choices"."""
    offered = [value for _, value in component.choices]
    preprocess = component.preprocess

    def known_lengths_only(payload):
        if payload is not None and not isinstance(payload, list):
            raise gr.Error("The lengths must be a list such as [\"1 s\", \"whole clip\"].", print_exception=False)
        unknown = [value for value in payload or [] if value not in offered]
        if unknown:
            raise gr.Error(
                f"{str(unknown[0])[:20]!r} is not one of the lengths offered ({', '.join(offered)}). "
                "Put other lengths in seconds in the other-lengths box (the next input), e.g. \"3 12.5\".",
                print_exception=False,
            )
        return preprocess(payload)

    component.preprocess = known_lengths_only
    return component


def end_live_streams(demo: gr.Blocks, sessions: Iterable[str]) -> None:
    """End the Live tab's open streams of `sessions` now, as Gradio's own close route does.

    Gradio counts an open stream among the jobs it runs (40 in all, for every route) until the
    stream's time limit, however idle it is: 40 streams that each sent one chunk and stopped held
    the whole server, every visitor's faces included, for 5 minutes. Call on the server's event
    loop: the events' signals are asyncio events.
    """
    sessions = set(sessions)
    for event in list(demo._queue.event_ids_to_events.values()):
        if event.streaming and event.session_hash in sessions and event.fn.api_name == "live_update":
            event.run_time, event.closed = math.inf, True
            event.signal.set()


def tuned_face_html(face) -> str:
    """The face the sliders change, as the page shows it."""
    return image_html(face, "the longest length's face, as the sliders set it")


def build_demo(model: Voice2Face, checkpoint: Path) -> gr.Blocks:
    """The page (its file cache is swept by `launch`)."""
    outputs_folder: list[Path] = []  # Gradio's cache folder, known once the Blocks exist
    recordings = LiveRecordings(model)  # the live view's, bounded in number and dropped when idle
    example = warm_up(model)  # the first request, served now; the page shows it until the visitor's own

    def files(*images, name: str = "") -> list[str]:
        """Saved where Gradio serves and sweeps them; every file saved must be returned, or it is never swept."""
        return [save_png(image, outputs_folder[0], name) for image in images]

    def request(audio, choices, extra) -> DemoOutput:
        try:
            return demo_request(model, audio, choices, extra)
        except Voice2FaceError as err:
            log.info("refused a request: %s", err)  # one line, not a traceback: it is the visitor's input
            raise
        finally:
            return_freed_memory()  # under 16 clients the server peaked 90 MB higher, and rested 270 MB higher, without

    def reading_outputs(out: DemoOutput) -> dict:
        """The voice reading under the faces and the sliders set to it (hidden for models that read nothing)."""
        if out.reading is None:
            return {reading_text_md: "", tune: gr.update(visible=False), reading_state: None}
        female, older = slider_values(out.reading)
        return {reading_text_md: reading_text(out.reading), tune: gr.update(visible=True), reading_state: out.reading,
                tuned_face: tuned_face_html(out.faces[out.longest][0]),
                gender_slider: female, age_slider: older}  # fmt: skip

    def draw_page(audio, choices, extra, live: bool = False):
        """The page's button: faces appear as they are drawn, the whole clip's first; an error stays
        on the page, and the other panes are emptied."""
        try:
            steps = demo_steps(model, audio, choices, extra)
            out = next(steps)  # the first face (the whole clip's), with the charts
            settle, spectrogram = files(out.settle_plot, out.spectrogram)
            yield {faces: faces_html(out.faces), settle_image: settle, spectrogram_image: spectrogram, strip: None,
                   strip_download: gr.update(visible=False), notes: notes_html(out.notes), reading_text_md: "",
                   tune: gr.update(visible=False)}  # fmt: skip
            for out in steps:  # the last step also holds the strip, sent after its face
                yield {faces: faces_html(out.faces)}
            (strip_file,) = files(out.strip)
            yield {strip: strip_file, strip_download: gr.update(visible=True), full_size_state: out.full_size, **reading_outputs(out)} | (
                {live_face: out.faces[out.longest][0], live_caption: out.heard} if live else {}
            )
        except Voice2FaceError as err:
            log.info("refused a request: %s", err)
            yield error_outputs(str(err))
        finally:
            return_freed_memory()

    def error_outputs(message: str) -> dict:
        """The message where the faces go; the other panes emptied."""
        return {faces: message_html(message), settle_image: None, spectrogram_image: None, strip: None,
                strip_download: gr.update(visible=False), notes: "", reading_text_md: "", tune: gr.update(visible=False)}  # fmt: skip

    def download_full_size(full_size):
        """The download button: every face of the last request drawn again at full size, side by side."""
        if full_size is None:
            return gr.skip()
        try:
            (path,) = files(full_size_strip(model, full_size), name="voice2face-faces-full-size")
        finally:
            model.release_full_size()  # 330 MB a server need not hold between downloads
            return_freed_memory()
        return gr.update(value=path)

    def draw_api(audio, choices, extra):
        """The /faces endpoint: errors are errors, faces a gallery of files with captions."""
        try:
            out = request(audio, choices, extra)
        except Voice2FaceError as err:
            raise gr.Error(str(err), title="Could not draw a face", print_exception=False) from None
        faces = list(zip(files(*(face for face, _ in out.faces)), (caption for _, caption in out.faces), strict=True))
        return faces, out.settle, *files(out.spectrogram, out.strip), out.notes

    def retune(reading, female, older):
        """The sliders: the same person, another gender or age."""
        if reading is None:
            return gr.skip()
        try:
            return tuned_face_html(changed_face(model, reading, female, older))
        except Voice2FaceError as err:
            return message_html(str(err), "Could not redraw the face")

    def reset(reading):
        if reading is None:
            return gr.skip(), gr.skip(), gr.skip()
        female, older = slider_values(reading)
        return tuned_face_html(changed_face(model, reading, None, None)), female, older

    def live_start(request: gr.Request):
        try:
            recordings.open(request.session_hash)
        except Voice2FaceError as err:
            return None, str(err)
        return None, "Listening…"

    async def live_update(chunk, request: gr.Request):
        """One chunk of a recording (decoded and drawn in a worker thread). Runs on the server's event
        loop, where it ends the streams of recordings dropped as idle, and its own if it is refused."""
        end_live_streams(demo, recordings.drop_idle())
        if chunk is None:
            return gr.skip(), gr.skip()
        try:
            update = await asyncio.to_thread(recordings.add_file, request.session_hash, chunk)
        except Voice2FaceError as err:
            if request.session_hash not in recordings:  # the live view is full: this stream ends here
                end_live_streams(demo, [request.session_hash])
            return None, str(err)
        return update.face if update.new_face else gr.skip(), update.caption

    def drop_recording(request: gr.Request) -> None:
        recordings.close(request.session_hash)

    def live_finish(choices, extra, request: gr.Request):
        live = recordings.close(request.session_hash)
        try:
            recording = live.recording() if live is not None else None
        except Voice2FaceError as err:  # the microphone sent nothing
            yield error_outputs(str(err))
            return
        if recording is None:
            yield error_outputs(NO_RECORDING)
            return
        yield from draw_page(recording, choices, extra, live=True)

    with gr.Blocks(title="voice2face") as demo:
        outputs_folder.append(Path(demo.GRADIO_CACHE) / "voice2face")
        gr.Markdown(INTRO)
        gr.Markdown(PLAIN_SUMMARY, elem_id="summary")
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=300):
                with gr.Tabs():
                    with gr.Tab("Record or upload", id="clip"):
                        audio = refuse_web_addresses(gr.Audio(
                            sources=["microphone", "upload"],
                            type="filepath",
                            label="Your voice",
                            elem_id="voice",
                            buttons=["download"],  # Gradio's share button works only on Spaces
                        ))  # fmt: skip
                        button = gr.Button("Draw faces", variant="primary", elem_id="draw")
                    with gr.Tab("Live", id="live", elem_id="live-tab"):
                        gr.Markdown("Record, and watch the face form from the speech so far; stop to compare lengths.")
                        live_audio = gr.Audio(  # filepath: chunks reach our bounded decoder, not Gradio's pydub
                            sources=["microphone"], type="filepath", streaming=True, label="Live microphone", elem_id="live-voice",
                            buttons=[],
                        )
                        live_face = gr.Image(label="Face so far", type="pil", show_label=False, elem_id="live-face",
                                             height=DISPLAY_SIZE, buttons=[], interactive=False)  # fmt: skip
                        live_caption = gr.Markdown(elem_id="live-caption")
                with gr.Accordion("Lengths to compare", open=False, elem_id="lengths-accordion"):
                    choices = refuse_unknown_choices(gr.CheckboxGroup(
                        DURATION_CHOICES, value=DEFAULT_CHOICES, label="Lengths of speech", elem_id="lengths"
                    ))  # fmt: skip
                    extra = gr.Textbox(
                        label="Other lengths in seconds", value="", placeholder="e.g. 3 12.5", max_lines=1, max_length=MAX_EXTRA_CHARS
                    )
            with gr.Column(scale=3, min_width=300):
                faces = gr.HTML(faces_html(example.faces, EXAMPLE_NOTE), label="Faces", elem_id="faces")
                reading_text_md = gr.Markdown(reading_text(example.reading) if example.reading else "", elem_id="reading")
                reading_state = gr.State(example.reading)
                with gr.Group(visible=example.reading is not None, elem_id="tune") as tune:
                    with gr.Row(equal_height=False):  # side by side on a desktop, stacked on a phone
                        with gr.Column(min_width=220):
                            tuned_face = gr.HTML(tuned_face_html(example.faces[example.longest][0]) if example.reading else "",
                                                 elem_id="tuned-face")  # fmt: skip
                        with gr.Column(min_width=220):
                            female, older = slider_values(example.reading) if example.reading else (50, 0)
                            gender_slider = gr.Slider(0, 100, value=female, step=1, label="How much a woman's voice (%)",
                                                      info="0: a man's, 100: a woman's", elem_id="gender-slider")  # fmt: skip
                            age_slider = gr.Slider(*OLDER_RANGE, value=older, step=1, label="Younger or older (years)",
                                                   info="0: as old as the voice sounds", elem_id="age-slider")  # fmt: skip
                            reset_button = gr.Button("Back to what the voice says", size="sm", elem_id="reset-face")
                notes = gr.HTML(notes_html(example.notes), label="What was used", elem_id="notes")
        gr.Examples(example_clips(), inputs=[audio], label="Examples (synthetic espeak-ng voices)")
        with gr.Row(equal_height=False):  # min_width: on a phone the two stack instead of squeezing
            with gr.Column(min_width=300):
                gr.Markdown("**How much the face changes as you speak longer**")
                settle_image = gr.Image(example.settle_plot, label="How much the face changes as you speak longer",
                                        show_label=False, type="filepath", elem_id="settle", buttons=[])  # fmt: skip
            with gr.Column(min_width=300):
                gr.Markdown("**The speech**, with where each length ends")
                spectrogram_image = gr.Image(example.spectrogram, label="The speech", show_label=False, type="filepath",
                                             elem_id="spectrogram", buttons=[])  # fmt: skip
        gr.Markdown("**All faces side by side**")
        strip = gr.Image(example.strip, label="All faces side by side", show_label=False, type="filepath", elem_id="strip", buttons=[])
        # the full-size faces are drawn when asked for, then handed to a hidden download button the page clicks
        strip_download = gr.Button("Download all faces at full size (PNG)", size="sm", elem_id="strip-download")
        strip_file = gr.DownloadButton(visible="hidden", elem_id="strip-file")
        full_size_state = gr.State(example.full_size)
        with gr.Accordion("About the model", open=False):
            plain_card, technical_card = model_card(model, checkpoint)
            gr.Markdown(plain_card, elem_id="model-card")
            with gr.Accordion("Technical details", open=False):
                gr.Markdown(
                    f"{technical_card}\n\nFile formats: {SUPPORTED_FORMATS}. The first {MAX_AUDIO_SECONDS:.0f} s of a clip are used."
                )
        api_faces = gr.Gallery(label="Faces with captions", visible=False, format="png")
        api_settle = gr.JSON(label="How much the face changes as you speak longer", visible=False)

        page_outputs = [faces, reading_text_md, tune, tuned_face, gender_slider, age_slider, reading_state,
                        settle_image, spectrogram_image, strip, strip_download, full_size_state, notes]  # fmt: skip
        button.click(draw_page, [audio, choices, extra], page_outputs, concurrency_limit=CONCURRENCY,
                     api_visibility="private", concurrency_id="draw", show_progress="minimal")  # fmt: skip
        api_button = gr.Button(visible=False)
        api_button.click(draw_api, [audio, choices, extra], [api_faces, api_settle, spectrogram_image, strip, notes],
                         api_name="faces", concurrency_limit=CONCURRENCY, concurrency_id="draw")  # fmt: skip
        strip_download.click(download_full_size, full_size_state, strip_file, api_visibility="private", concurrency_id="draw",
                             show_progress="minimal").success(None, None, None, js=CLICK_STRIP_FILE)  # fmt: skip
        for slider in (gender_slider, age_slider):
            slider.input(retune, [reading_state, gender_slider, age_slider], tuned_face, trigger_mode="always_last",
                         api_visibility="private", concurrency_id="draw", show_progress="hidden")  # fmt: skip
        reset_button.click(reset, reading_state, [tuned_face, gender_slider, age_slider], api_visibility="private",
                           concurrency_id="draw", show_progress="hidden")  # fmt: skip
        live_audio.start_recording(live_start, None, [live_face, live_caption], api_visibility="private",
                                   show_progress="hidden")  # fmt: skip
        # no concurrency slots: Gradio would hold one for an open stream until its time limit, however
        # idle; `recordings` caps the recordings instead, says so to the visitor who finds it full, and
        # its idle and refused streams are ended (`end_live_streams`)
        live_audio.stream(live_update, [live_audio], [live_face, live_caption], stream_every=LIVE_EVERY_S,
                          time_limit=MAX_AUDIO_SECONDS, concurrency_limit=None, api_visibility="private",
                          show_progress="hidden")  # fmt: skip
        live_audio.stop_recording(live_finish, [choices, extra], [*page_outputs, live_face, live_caption],
                                  api_visibility="private", concurrency_id="draw", show_progress="minimal")  # fmt: skip
        demo.unload(drop_recording)  # a closed tab's recording goes at once
        # a no-op through the queue as the page opens: the browser sets up its event stream now,
        # not on the visitor's first click (which was 3x slower than later ones without it)
        demo.load(lambda: None, None, None, api_visibility="private", show_progress="hidden")
        if is_untrained(model):
            gr.Markdown("⚠️ This checkpoint is untrained: the faces do not reflect the voice.")
    return refuse_server_paths_in_our_words(demo)


def launch(
    demo: gr.Blocks, host: str, port: int, share: bool, block: bool = True, cache_sweep: tuple[float, float] = (CACHE_SWEEP_S, CACHE_AGE_S)
) -> CacheSweeper:
    """Serve the page; if a share link was asked for but cannot be made, keep serving locally. Its file
    cache is swept every `cache_sweep[0]` s of files older than `cache_sweep[1]` s (and bounded in size);
    with `block`, serve until interrupted (Ctrl-C, or SIGTERM as docker, systemd and Spaces send) and
    then empty the cache."""
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE, api_open=False)  # no /run/ route skips the queue
    gradio_says = io.StringIO()  # Gradio prints its own share-link advice (download steps for its tunnel helper)
    with contextlib.redirect_stdout(gradio_says):
        demo.launch(
            server_name=host,
            server_port=port,
            share=share,
            max_file_size=MAX_UPLOAD,
            prevent_thread_lock=True,
            show_error=True,
            quiet=True,
            css=CSS,
            js=PAGE_JS,
            # every body capped before any route reads it, and routes the page never uses closed
            app_kwargs={"middleware": [Middleware(RequestSizeLimit), Middleware(ClosedRoutes)]},
            theme=gr.themes.Soft(font=["system-ui", "sans-serif"], font_mono=["monospace"]),
        )
    local = f"http://{host}:{port}"
    if demo.share_url:
        print(f"voice2face is serving at {local} and at the public link {demo.share_url}")
    elif share:
        log.debug("Gradio on the share link: %s", " ".join(gradio_says.getvalue().split()))
        print(f"Could not make a public link (no connection to Gradio's share service); voice2face is serving at {local} only.")
    else:
        print(f"voice2face is serving at {local} (add --share for a temporary public link)")
    kept = lambda: set().union(*(getattr(b, "keep_in_cache", set()) for b in demo.blocks.values()))  # noqa: E731
    sweeper = CacheSweeper(demo.GRADIO_CACHE, *cache_sweep, CACHE_MAX_BYTES, keep=kept).start()
    if block:
        signal.signal(signal.SIGTERM, stop_on_sigterm)
        try:
            demo.block_thread()
        finally:
            sweeper.clear()
    return sweeper


def stop_on_sigterm(signum, frame) -> None:
    """SIGTERM stops the server as Ctrl-C does, so the cache is emptied (it was left behind)."""
    raise KeyboardInterrupt


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
    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)
    limit_malloc_arenas()  # before Gradio's threads start: under load they held 0.5 GB more without it
    try:
        model = Voice2Face.from_pretrained(args.checkpoint, device=args.device)
    except Voice2FaceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if model.serve_with_openvino(OPENVINO_CACHE):
        log.info("drawing faces through OpenVINO (compiled from the checkpoint's synthesis network, kept in %s)", OPENVINO_CACHE)
    launch(build_demo(model, args.checkpoint), args.host, args.port, args.share)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
