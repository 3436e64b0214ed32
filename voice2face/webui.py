"""What the web demo shows, computed without any web framework so it can be tested directly.

`app.py` only lays out Gradio components and wires them to `demo_request`.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from .audio import WHOLE_CLIP_WORDS, parse_durations
from .decode import AudioSource
from .limits import MAX_AUDIO_SECONDS
from .errors import Voice2FaceError
from .images import upscale
from .pipeline import FacesResult, Voice2Face

#: Lengths offered as check boxes; "whole clip" is the full speech.
WHOLE_CLIP = "whole clip"
DURATION_CHOICES = ["0.5 s", "1 s", "2 s", "4 s", "8 s", "16 s", "30 s", WHOLE_CLIP]
DEFAULT_CHOICES = ["1 s", "2 s", "4 s", "8 s", WHOLE_CLIP]
#: Uploads above this size are refused by the server before any decoding.
MAX_UPLOAD = "50mb"
#: Faces are shown this many pixels wide (the model draws 64x64).
DISPLAY_SIZE = 192
#: The free-text lengths box takes at most this many characters.
MAX_EXTRA_CHARS = 100

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"


@dataclass
class DemoOutput:
    faces: list[tuple[Image.Image, str]]  # (face at DISPLAY_SIZE, short caption) per distinct length
    settle: pd.DataFrame  # seconds of speech vs cosine to the whole clip's embedding
    spectrogram: Image.Image  # log-mel of the speech with the cut points marked
    strip: Image.Image  # all faces side by side, for download
    notes: str  # markdown: what was used, anything the user should know

    @property
    def settle_limits(self) -> list[float]:
        """A y-range that shows the curve (cosines of 0.86 to 1.0 are a flat line on -1..1)."""
        low = float(self.settle["similarity to whole clip"].min())
        return [max(-1.0, round(min(low, 0.9) - 0.05, 2)), 1.0]


def durations_from_choices(choices: list[str] | None, extra: str | None = "") -> tuple[float | None, ...]:
    """Check-box labels ("4 s", "whole clip") plus free text ("3 12.5") -> sorted durations, whole clip last."""
    if extra and len(extra) > MAX_EXTRA_CHARS:
        raise Voice2FaceError(f"The lengths box takes at most {MAX_EXTRA_CHARS} characters, e.g. \"3 12.5\".")
    values: list[str] = [c.removesuffix(" s") if c != WHOLE_CLIP else "full" for c in choices or []]
    words = (extra or "").replace(",", " ").split()
    bad = [w for w in words if w.lower() not in WHOLE_CLIP_WORDS and not _is_number(w)]
    if bad:
        raise Voice2FaceError(f"{bad[0][:20]!r} in the lengths box is not a number of seconds (e.g. 3 or 12.5).")
    values += words
    if not values:
        raise Voice2FaceError("Pick at least one length of speech to draw a face from.")
    durations = set(parse_durations(values))
    seconds = sorted(d for d in durations if d is not None)
    return tuple(seconds) + ((None,) if None in durations else ())


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def demo_request(
    model: Voice2Face, audio: AudioSource | None, choices: list[str] | None, extra: str | None = ""
) -> DemoOutput:
    """Everything the page shows for one clip; raises Voice2FaceError with a readable message."""
    if audio is None or (isinstance(audio, str) and not audio):
        raise Voice2FaceError("Record or upload a clip first.")
    durations = durations_from_choices(choices, extra)
    result = model.faces_for_durations(audio, durations, max_seconds=MAX_AUDIO_SECONDS)
    faces = [(upscale(im, DISPLAY_SIZE), cut.short_label) for im, cut in zip(result.images, result.cuts)]
    settle = pd.DataFrame(
        {"seconds of speech": result.seconds, "similarity to whole clip": result.similarity_to_longest().round(4)}
    )
    spectrogram = spectrogram_image(result, model.front_end.hop_ms / 1000, model.front_end.log_compress)
    return DemoOutput(faces, settle, spectrogram, result.strip(size=160), notes_markdown(result))


# --------------------------------------------------------------------------- HTML the page shows


def faces_html(faces: list[tuple[Image.Image, str]]) -> str:
    """The faces as a wrapping grid with each caption under its face (never on it): on a phone
    they wrap onto rows instead of hiding behind a sideways scroll."""
    figures = "".join(
        f'<figure class="v2f-face"><img src="{png_data_uri(face)}" alt="face drawn from {html.escape(caption)} of speech">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        for face, caption in faces
    )
    return f'<div class="v2f-faces">{figures}</div>'


def message_html(message: str, title: str = "Could not draw a face") -> str:
    """An error that stays on the page until the next request (a toast vanishes after 10 s)."""
    return f'<div class="v2f-error" role="alert"><strong>{html.escape(title)}</strong><p>{html.escape(message)}</p></div>'


def png_data_uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def save_png(image: Image.Image, folder: Path) -> str:
    """Write `image` as `<content hash>.png` in `folder`, atomically, and return its path.

    Identical requests give identical images; Gradio writes a PIL output in
    place under its content hash, so one client could download a file while
    another rewrote it ("Too little data for declared Content-Length"). A file
    that is renamed into place is never seen half-written.
    """
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    data = buffer.getvalue()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(data).hexdigest()[:32]}.png"
    if not path.exists():
        partial = folder / f".{path.name}.{uuid.uuid4().hex}.part"
        partial.write_bytes(data)
        os.replace(partial, path)
    return str(path)


def notes_markdown(result: FacesResult) -> str:
    utt = result.utterance
    audio = utt.audio
    lines = [
        f"Heard **{utt.speech_seconds:.1f} s of speech** in {audio.seconds:.1f} s of audio "
        f"({audio.source_sample_rate} Hz, {audio.source_channels} channel{'s' if audio.source_channels > 1 else ''})."
    ]
    lines += [f"- {note}" for note in result.notes]
    return "\n".join(lines)


def display_levels(features: np.ndarray, log_compressed: bool, range_db: float = 80.0) -> np.ndarray:
    """What to draw: log-mels as they are; linear mel energies (the GE2E front end) in dB.

    Drawn linearly, mel energies are a black picture with a few bright specks.
    """
    if log_compressed:
        return features
    db = 10 * np.log10(np.maximum(features, 1e-10))
    return np.maximum(db, db.max() - range_db)


def spectrogram_image(
    result: FacesResult, hop_s: float, log_compressed: bool = True, width_px: int = 900, height_px: int = 260,
    max_columns: int = 1500,
) -> Image.Image:  # fmt: skip
    """The speech's log-mel spectrogram with a line where each cut ends.

    Time runs on a log scale past the first second, so the 1, 2, 4, 8 s cuts
    are evenly spaced and still apart on a 300 s clip; labels alternate
    between two heights so neighbours do not cover each other.
    """
    features = display_levels(result.utterance.features.numpy(), log_compressed)
    step = max(1, -(-features.shape[1] // max_columns))  # every step-th frame: the picture has ~900 px anyway
    shown = features[:, ::step]
    edges = np.arange(shown.shape[1] + 1) * step * hop_s
    fig = Figure(figsize=(width_px / 100, height_px / 100), dpi=100)  # no pyplot: safe across threads
    ax = fig.add_subplot()
    ax.pcolormesh(edges, np.arange(shown.shape[0] + 1), shown, cmap="magma", shading="flat", rasterized=True)
    ax.set_xscale("symlog", linthresh=1.0, linscale=0.5)
    ax.set_xlim(0, edges[-1])
    ticks = [t for t in (0, 0.5, 1, 2, 4, 8, 16, 30, 60, 120, 300) if t <= edges[-1]]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    for k, cut in enumerate(result.cuts):
        ax.axvline(cut.seconds, color="cyan", linewidth=1.2)
        label = "whole" if cut.requested is None else f"{cut.requested:g} s"
        height = features.shape[0] * (0.96 if k % 2 == 0 else 0.80)
        ax.text(cut.seconds, height, f" {label}", color="cyan", va="top", ha="right" if cut is result.cuts[-1] else "left",
                fontsize=11, fontweight="bold")  # fmt: skip
    ax.set_xlabel("seconds of speech, silence removed (log scale past 1 s)")
    ax.set_ylabel("mel band")
    fig.tight_layout()
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3].copy())


PLAIN_SUMMARY = (
    "**What to expect:** a made-up face that fits what the voice suggests, mainly whether it sounds like a man "
    "or a woman, and a little of the age. It is not a picture of the speaker: the model never saw who is speaking, "
    "only voices and photos of different people matched by gender and age."
)


def model_card(model: Voice2Face, path: str | Path) -> str:
    """Markdown naming the loaded checkpoint and what it learned from, from its config.json."""
    info = model.info
    steps = info.training.get("steps", 0)
    text = (
        f"**Model:** `{Path(path).name}` · trained on: *{info.trained_on}* · "
        f"{steps} training steps · voice encoder `{info.model.voice.backend}` · voice2face {info.code_version}"
    )
    if is_untrained(model):
        text += (
            "\n\n> ⚠️ This checkpoint is **untrained** (random weights). The faces show that the pipeline "
            "runs; they do not reflect the voice."
        )
    return text


def is_untrained(model: Voice2Face) -> bool:
    return model.info.trained_on.startswith("nothing")


def warm_up(model: Voice2Face) -> None:
    """Serve one request before the first visitor does: decoder workers, the speech detector,
    PyTorch's first-call costs and matplotlib's fonts otherwise land on them (2-3 s instead of 0.5 s)."""
    demo_request(model, example_clips()[0], DEFAULT_CHOICES)


def example_clips() -> list[str]:
    """Bundled example recordings (see examples/README.md for their origin)."""
    return sorted(str(p) for p in EXAMPLES_DIR.glob("*.flac"))
