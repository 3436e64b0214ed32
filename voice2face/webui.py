"""What the web demo shows, computed without any web framework so it can be tested directly.

`app.py` only lays out Gradio components and wires them to `demo_request`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from .audio import parse_durations
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

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"


@dataclass
class DemoOutput:
    gallery: list[tuple[Image.Image, str]]  # (face, short caption) per length
    settle: pd.DataFrame  # seconds of speech vs cosine to the whole clip's embedding
    spectrogram: Image.Image  # log-mel of the speech with the cut points marked
    strip: Image.Image  # all faces side by side, for download
    notes: str  # markdown: what was used, anything the user should know


def durations_from_choices(choices: list[str] | None, extra: str | None = "") -> tuple[float | None, ...]:
    """Check-box labels ("4 s", "whole clip") plus free text ("3 12.5") -> sorted durations, whole clip last."""
    values: list[str] = [c.removesuffix(" s") if c != WHOLE_CLIP else "full" for c in choices or []]
    values += (extra or "").replace(",", " ").split()
    if not values:
        raise Voice2FaceError("Pick at least one length of speech to draw a face from.")
    durations = set(parse_durations(values))
    seconds = sorted(d for d in durations if d is not None)
    return tuple(seconds) + ((None,) if None in durations else ())


def demo_request(
    model: Voice2Face, audio: AudioSource | None, choices: list[str] | None, extra: str | None = ""
) -> DemoOutput:
    """Everything the page shows for one clip; raises Voice2FaceError with a readable message."""
    if audio is None or (isinstance(audio, str) and not audio):
        raise Voice2FaceError("Record or upload a clip first.")
    durations = durations_from_choices(choices, extra)
    result = model.faces_for_durations(audio, durations, max_seconds=MAX_AUDIO_SECONDS)
    gallery = [(upscale(im, DISPLAY_SIZE), cut.short_label) for im, cut in zip(result.images, result.cuts)]
    settle = pd.DataFrame(
        {"seconds of speech": result.seconds, "similarity to whole clip": result.similarity_to_longest().round(4)}
    )
    spectrogram = spectrogram_image(result, model.front_end.hop_ms / 1000, model.front_end.log_compress)
    return DemoOutput(gallery, settle, spectrogram, result.strip(size=160), notes_markdown(result))


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
    result: FacesResult, hop_s: float, log_compressed: bool = True, width_px: int = 900, height_px: int = 260
) -> Image.Image:
    """The speech's log-mel spectrogram with a line where each cut ends."""
    features = display_levels(result.utterance.features.numpy(), log_compressed)
    fig = Figure(figsize=(width_px / 100, height_px / 100), dpi=100)  # no pyplot: safe across threads
    ax = fig.add_subplot()
    ax.imshow(features, origin="lower", aspect="auto", cmap="magma", extent=(0, features.shape[1] * hop_s, 0, features.shape[0]))
    for cut in result.cuts:
        ax.axvline(cut.seconds, color="cyan", linewidth=1.2)
        label = "whole" if cut.requested is None else f"{cut.requested:g} s"
        ax.text(cut.seconds, features.shape[0] * 0.97, f" {label}", color="cyan", va="top", ha="left", fontsize=8)
    ax.set_xlabel("seconds of speech (silence removed)")
    ax.set_ylabel("mel band")
    fig.tight_layout()
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3].copy())


def model_card(model: Voice2Face, path: str | Path) -> str:
    """Markdown naming the loaded checkpoint and what it learned from, from its config.json."""
    info = model.info
    steps = info.training.get("steps", 0)
    text = (
        f"**Model:** `{Path(path).name}` · trained on: *{info.trained_on}* · "
        f"{steps} training steps · voice encoder `{info.model.voice.backend}` · voice2face {info.code_version}"
    )
    if info.trained_on.startswith("nothing"):
        text += (
            "\n\n> ⚠️ This checkpoint is **untrained** (random weights). The faces show that the pipeline "
            "runs; they do not reflect the voice."
        )
    return text


def example_clips() -> list[str]:
    """Bundled example recordings (see examples/README.md for their origin)."""
    return sorted(str(p) for p in EXAMPLES_DIR.glob("*.flac"))
