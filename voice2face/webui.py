"""What the web demo shows, computed without any web framework so it can be tested directly.

`app.py` only lays out Gradio components and wires them to `demo_request`.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import math
import os
import uuid
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterator

import numpy as np
from matplotlib import colormaps
from PIL import Image, ImageDraw, ImageFont

from .audio import WHOLE_CLIP_WORDS, parse_durations
from .decode import AudioSource
from .errors import Voice2FaceError
from .images import DISPLAY_SIZE, resize
from .limits import MAX_AUDIO_SECONDS
from .pipeline import FacesResult, Voice2Face

#: Lengths offered as check boxes; "whole clip" is the full speech.
WHOLE_CLIP = "whole clip"
DURATION_CHOICES = ["0.5 s", "1 s", "2 s", "4 s", "8 s", "16 s", "30 s", WHOLE_CLIP]
DEFAULT_CHOICES = ["1 s", "2 s", "4 s", "8 s", WHOLE_CLIP]
#: Uploads above this size are refused by the server before any decoding.
MAX_UPLOAD_MB = 50
MAX_UPLOAD = f"{MAX_UPLOAD_MB}mb"
#: matplotlib's magma colour table, 256 RGB rows, for the spectrogram.
_MAGMA = (colormaps["magma"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)
#: The free-text lengths box takes at most this many characters.
MAX_EXTRA_CHARS = 100

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"


@dataclass
class DemoOutput:
    faces: list[tuple[Image.Image | None, str]]  # (face at DISPLAY_SIZE or None while not drawn yet, short caption) per distinct length
    settle: dict[str, list[float]]  # seconds of speech, and each cut's cosine to the whole clip's embedding
    spectrogram: Image.Image  # log-mel of the speech with the cut points marked
    strip: Image.Image | None  # all faces side by side, for download (None until every face is drawn)
    notes: str  # markdown: what was used, anything the user should know

    @cached_property
    def settle_plot(self) -> Image.Image:
        """`settle` as a picture, drawn only where it is shown (the page; the API returns the numbers)."""
        return settle_image(self.settle)


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
    *_, last = demo_steps(model, audio, choices, extra)
    return last


def demo_steps(
    model: Voice2Face, audio: AudioSource | None, choices: list[str] | None, extra: str | None = ""
) -> Iterator[DemoOutput]:
    """The page's output as the faces are drawn: first with every face still a placeholder (None),
    then once per face, the whole clip's first, then once more with the strip (a 5000-px PNG takes
    0.4 s to encode: the last face is not kept waiting for it). Drawing a 1024-px face takes 0.16-0.4 s
    on a CPU, so the visitor sees the first face long before the last."""
    if audio is None or (isinstance(audio, str) and not audio):
        raise Voice2FaceError(f"Record or upload a clip first (files up to {MAX_UPLOAD_MB} MB).")
    durations = durations_from_choices(choices, extra)
    planned = model.plan(audio, durations, max_seconds=MAX_AUDIO_SECONDS)
    settle = {"seconds of speech": planned.seconds, "similarity to whole clip": planned.similarity_to_longest().round(4).tolist()}
    spectrogram = spectrogram_image(planned, model.front_end.hop_ms / 1000, model.front_end.log_compress)
    captions = [cut.short_label for cut in planned.cuts]
    drawn: list[Image.Image | None] = [None] * len(captions)
    yield DemoOutput(list(zip(drawn, captions, strict=True)), settle, spectrogram, None, notes_markdown(planned))
    longest_first = sorted(range(len(captions)), key=lambda i: -planned.cuts[i].frames)
    shown: list[Image.Image | None] = [None] * len(captions)
    for i in longest_first:
        (drawn[i],) = model.render(planned.embeddings[i : i + 1])
        shown[i] = resize(drawn[i], DISPLAY_SIZE)
        yield DemoOutput(list(zip(shown, captions, strict=True)), settle, spectrogram, None, notes_markdown(planned))
    # the strip keeps the faces at the size the model draws them (1024 px), for download
    strip = planned.with_faces(drawn).strip(size=max(drawn[0].width, DISPLAY_SIZE))
    yield DemoOutput(list(zip(shown, captions, strict=True)), settle, spectrogram, strip, notes_markdown(planned))


# --------------------------------------------------------------------------- HTML the page shows


def faces_html(faces: list[tuple[Image.Image, str]]) -> str:
    """The faces as a wrapping grid with each caption under its face (never on it): on a phone
    they wrap onto rows instead of hiding behind a sideways scroll."""
    figures = "".join(
        (f'<figure class="v2f-face"><img src="{png_data_uri(face)}" alt="face drawn from {html.escape(caption)} of speech">'
         if face else '<figure class="v2f-face v2f-pending"><div class="v2f-placeholder">drawing…</div>')
        + f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        for face, caption in faces
    )  # fmt: skip
    return f'<div class="v2f-faces">{figures}</div>'


def message_html(message: str, title: str = "Could not draw a face") -> str:
    """An error that stays on the page until the next request (a toast vanishes after 10 s)."""
    return f'<div class="v2f-error" role="alert"><strong>{html.escape(title)}</strong><p>{html.escape(message)}</p></div>'


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)  # 5x faster than the default; a few KB larger
    return buffer.getvalue()


def png_data_uri(image: Image.Image) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode()


def save_png(image: Image.Image, folder: Path) -> str:
    """Write `image` as `<content hash>.png` in `folder`, atomically, and return its path.

    Identical requests give identical images; Gradio writes a PIL output in
    place under its content hash, so one client could download a file while
    another rewrote it ("Too little data for declared Content-Length"). A file
    that is renamed into place is never seen half-written.
    """
    data = png_bytes(image)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(data).hexdigest()[:32]}.png"
    try:
        os.utime(path)  # handed out again: the cache sweep ages files by ctime, so make it young
    except FileNotFoundError:
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


def settle_image(settle: dict[str, list[float]], width_px: int = 560, height_px: int = 260) -> Image.Image:
    """How the embedding of the first N seconds approaches the whole clip's, on a y-range fitted to the
    curve (cosines of 0.86 to 1.0 are a flat line on -1..1). Drawn with Pillow on the server: the
    page's plot widget took half a second to draw its first chart, matplotlib 60 ms."""
    seconds, similarity = settle["seconds of speech"], settle["similarity to whole clip"]
    low = max(-1.0, math.floor((min(min(similarity), 0.9) - 0.05) * 20) / 20)
    left, right, top, bottom = 56, 16, 30, 44
    plot_w, plot_h = width_px - left - right, height_px - top - bottom
    end = float(_log_seconds(np.array(max(seconds)))) or 1.0
    x_of = lambda s: left + float(_log_seconds(np.array(s))) / end * plot_w  # noqa: E731
    y_of = lambda v: top + (1.0 - v) / (1.0 - low) * plot_h  # noqa: E731
    canvas = Image.new("RGB", (width_px, height_px), "white")
    draw = ImageDraw.Draw(canvas)
    small, title = ImageFont.load_default(size=12), ImageFont.load_default(size=14)
    for v in np.arange(low, 1.0001, 0.05 if 1 - low <= 0.3 else 0.1):
        y = y_of(v)
        draw.line([(left, y), (left + plot_w, y)], fill=(225, 225, 225))
        draw.text((left - 6, y), f"{v:.2f}", fill="black", font=small, anchor="rm")
    for s in seconds:
        draw.text((x_of(s), top + plot_h + 6), f"{s:.1f}", fill="black", font=small, anchor="ma")
    points = [(x_of(s), y_of(v)) for s, v in zip(seconds, similarity, strict=True)]
    draw.line(points, fill=(79, 70, 229), width=2)
    for x, y in points:
        draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=(79, 70, 229))
    draw.rectangle([left, top, left + plot_w, top + plot_h], outline="black")
    draw.text((width_px / 2, 6), "How the voice embedding settles", fill="black", font=title, anchor="ma")
    draw.text((left + plot_w / 2, height_px - 4), "seconds of speech used (log scale past 1 s)", fill="black",
              font=small, anchor="md")  # fmt: skip
    draw.text((4, top - 18), "similarity to whole clip", fill="black", font=small, anchor="la")
    return canvas


def _log_seconds(seconds: np.ndarray) -> np.ndarray:
    """Seconds on the axis both pictures share: linear to 1 s, logarithmic after, so the 1, 2, 4, 8 s
    cuts are evenly spaced and still apart on a 300 s clip."""
    return np.where(seconds <= 1, seconds, 1 + np.log2(np.maximum(seconds, 1)))


def spectrogram_image(
    result: FacesResult, hop_s: float, log_compressed: bool = True, width_px: int = 900, height_px: int = 260
) -> Image.Image:
    """The speech's log-mel spectrogram with a line where each cut ends, on the pictures' shared
    time axis (see `_log_seconds`); labels alternate between two heights so neighbours stay apart.

    Drawn with Pillow (a colour table and a few lines), about 10x faster than a matplotlib figure.
    """
    features = display_levels(result.utterance.features.numpy(), log_compressed)
    total = features.shape[1] * hop_s
    left, right, top, bottom = 48, 12, 8, 44
    plot_w, plot_h = width_px - left - right, height_px - top - bottom
    end = float(_log_seconds(np.array(total)))
    axis = np.linspace(0, end, plot_w)  # one column per pixel: the frame under each point of the warped axis
    columns = np.minimum((np.where(axis <= 1, axis, 2 ** (axis - 1)) / hop_s).astype(int), features.shape[1] - 1)
    shown = features[::-1, columns]  # low bands at the bottom
    low, high = np.percentile(shown, 1), np.percentile(shown, 99.5)
    levels = np.clip((shown - low) / max(high - low, 1e-6) * 255, 0, 255).astype(np.uint8)
    picture = Image.fromarray(_MAGMA[levels]).resize((plot_w, plot_h), Image.Resampling.NEAREST)
    canvas = Image.new("RGB", (width_px, height_px), "white")
    canvas.paste(picture, (left, top))
    draw = ImageDraw.Draw(canvas)
    small, bold = ImageFont.load_default(size=12), ImageFont.load_default(size=14)
    x_of = lambda seconds: left + float(_log_seconds(np.array(seconds))) / end * (plot_w - 1)  # noqa: E731
    for t in (0, 0.5, 1, 2, 4, 8, 16, 30, 60, 120, 300):
        if t <= total:
            x = x_of(t)
            draw.line([(x, top + plot_h), (x, top + plot_h + 4)], fill="black")
            draw.text((x, top + plot_h + 6), f"{t:g}", fill="black", font=small, anchor="ma")
    draw.text((left + plot_w / 2, height_px - 4), "seconds of speech, silence removed (log scale past 1 s)",
              fill="black", font=small, anchor="md")  # fmt: skip
    draw.text((14, top + plot_h / 2), "mel", fill="black", font=small, anchor="mm")
    for k, cut in enumerate(result.cuts):
        x = x_of(cut.seconds)
        draw.line([(x, top), (x, top + plot_h)], fill=(0, 255, 255), width=2)
        label = "whole" if cut.requested is None else f"{cut.requested:g} s"
        y = top + plot_h - (4 if k % 2 == 0 else 24)  # at the bottom: the page puts a download button top right
        last = cut is result.cuts[-1]
        draw.text((x - 4 if last else x + 4, y), label, fill=(0, 255, 255), font=bold, anchor="rd" if last else "ld",
                  stroke_width=2, stroke_fill="black")  # fmt: skip
    draw.rectangle([left - 1, top - 1, left + plot_w, top + plot_h], outline="black")
    return canvas


PLAIN_SUMMARY = (
    "**What to expect:** a photograph of a made-up person that fits what the voice suggests, mainly whether it "
    "sounds like a man or a woman. Different voices get different people, and one voice keeps its person. It is "
    "not a picture of the speaker: the model never saw who is speaking, only voices and faces of different people "
    "matched by gender and age. The faces come from a generator trained on Flickr photos (FFHQ; non-commercial use only)."
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
    PyTorch's first-call costs and Pillow's fonts otherwise land on them (2-3 s instead of 0.5 s)."""
    from .decoder_process import warm_up as start_decoders

    start_decoders()
    demo_request(model, example_clips()[0], DEFAULT_CHOICES)


def example_clips() -> list[str]:
    """Bundled example recordings (see examples/README.md for their origin)."""
    return sorted(str(p) for p in EXAMPLES_DIR.glob("*.flac"))
