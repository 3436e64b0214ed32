"""What the web demo shows, computed without any web framework so it can be tested directly.

`layout` only lays out Gradio components and wires them to `demo_request`; `app.py` only starts it.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import os
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Iterator

from PIL import Image

from ..audio.decode import SUPPORTED_FORMATS, AudioSource
from ..errors import Voice2FaceError
from ..images import DISPLAY_SIZE, face_strip
from ..lengths import DEFAULT_DURATIONS, WHOLE_CLIP, WHOLE_CLIP_WORDS, Lengths, choice_label, parse_durations, round_seconds, seconds_text
from ..limits import MAX_AUDIO_SECONDS, MAX_DURATIONS
from ..models import Reading, VoiceReading
from ..pipeline import FacesResult, Voice2Face
from .charts import settle_image, spectrogram_image
from .limits import CACHE_AGE_S, CACHE_SWEEP_S, MAX_UPLOAD_BYTES

#: Lengths offered as check boxes ("whole clip" is the full speech), the default lengths ticked.
DURATION_CHOICES = [choice_label(d) for d in (1.0, 2.0, 4.0, 8.0, 16.0, 30.0, None)]
DEFAULT_CHOICES = [choice_label(d) for d in DEFAULT_DURATIONS]
#: Uploads above this size are refused by the server before any decoding.
MAX_UPLOAD_MB = MAX_UPLOAD_BYTES // 2**20
MAX_UPLOAD = f"{MAX_UPLOAD_MB}mb"
#: The free-text lengths box takes at most this many characters.
MAX_EXTRA_CHARS = 100

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
#: The bundled examples, the first drawn as the page opens, and what each is in words (examples/README.md: their sources).
EXAMPLES = {
    "female_voice_en_f4.flac": "A woman's voice (synthetic, espeak-ng, 12 s)",
    "male_voice_en-us_m3.flac": "A man's voice (synthetic, espeak-ng, 12 s)",
    "male_voice_jfk_1961.flac": "A man's real voice (John F. Kennedy, 1961, 11 s)",
}


@dataclass(frozen=True)
class FullSizeFaces:
    """What the full-size download needs to draw the page's faces again at the model's own size."""

    readings: Reading  # what the model read from each length, in the page's order
    captions: list[str]  # long captions ("first 1.0 s of speech", ...)


@dataclass(frozen=True)
class DrawnFaces:
    """What the sliders and the full-size download redraw, kept by the server for one page under an id the page
    holds too: the server keeps the last MAX_SESSIONS pages' (`web/limits.py`), so a page whose faces it no longer
    holds is told so, never given the worked example's person instead."""

    id: str
    reading: VoiceReading | None  # the longest length's, for the sliders (None: a model that reads nothing)
    full_size: FullSizeFaces

    @classmethod
    def of(cls, out: "DemoOutput", id: str | None = None) -> "DrawnFaces":
        return cls(id or uuid.uuid4().hex, out.reading, out.full_size)


#: What a page is told when the server no longer holds the faces it shows.
NOT_HELD = ("This server no longer holds the faces on this page (it keeps the most recent visitors' only): draw them "
            "again to change them or download them at full size.")  # fmt: skip


@dataclass
class DemoOutput:
    faces: list[tuple[Image.Image | None, str]]  # (face at DISPLAY_SIZE or None while not drawn yet, short caption) per distinct length
    settle: dict[str, list[float]] | None  # seconds of speech and each cut's cosine to the whole clip's (None until all heard)
    spectrogram: Image.Image  # log-mel of the speech with the cut points marked
    strip: Image.Image | None  # all faces side by side at DISPLAY_SIZE (None until every face is drawn)
    notes: str  # plain text: what was used, anything the user should know
    heard: str = ""  # how much speech in how much audio (`FacesResult.heard`)
    longest: int = 0  # which face is the longest length's (the first drawn)
    reading: VoiceReading | None = None  # what the model read from the longest length (None: a model that reads nothing)
    full_size: FullSizeFaces | None = None  # for `full_size_strip`, drawn only when the download is asked for (None until the last face)
    drawn_as: list[str] = field(default_factory=list)  # per face drawn, what it was drawn as ("a woman of about 34"), for alt text
    reading_seconds: float = 0.0  # the speech the reading heard: the longest length's

    @property
    def reading_words(self) -> str:
        """The reading of the whole clip in words (`reading_text`); empty for a model that reads nothing."""
        return reading_text(self.reading, self.reading_seconds) if self.reading is not None else ""

    @cached_property
    def settle_plot(self) -> Image.Image:
        """`settle` as a picture, drawn only where it is shown (the page, with the last face; the API returns the numbers)."""
        return settle_image(self.settle)


def durations_from_choices(choices: list[str] | None, extra: str | None = "") -> Lengths:
    """Check-box labels ("4 s", "whole clip") plus free text ("3 12.5") -> sorted durations, whole clip last: parsed
    here, once (the pipeline takes `Lengths` as they are)."""
    if extra and len(extra) > MAX_EXTRA_CHARS:
        raise Voice2FaceError(f"The lengths box takes at most {MAX_EXTRA_CHARS} characters, e.g. \"3 12.5\".")
    values: list[str] = [c.removesuffix(" s") if c != WHOLE_CLIP else "full" for c in choices or []]
    words = (extra or "").replace(",", " ").split()
    bad = [w for w in words if w.lower() not in WHOLE_CLIP_WORDS and not _is_number(w)]
    if bad:
        raise Voice2FaceError(f"{bad[0][:20]!r} in the lengths box is not a number of seconds (e.g. 3 or 12.5).")
    if len(values) + len(words) > MAX_DURATIONS:
        raise Voice2FaceError(
            f"At most {MAX_DURATIONS} lengths at once: {len(values)} ticked and {len(words)} typed make {len(values) + len(words)}."
        )
    values += words
    if not values:
        raise Voice2FaceError("Pick at least one length of speech to draw a face from.")
    durations = set(parse_durations(values))
    seconds = sorted(d for d in durations if d is not None)
    return Lengths(tuple(seconds) + ((None,) if None in durations else ()))


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
    """The page's output as the faces are drawn (`Voice2Face.stream`, the page's one call into the model): once
    per face, the whole clip's first, the faces still to come as placeholders (None); the last step also
    holds the strip. Faces are drawn at the page's size (DISPLAY_SIZE), through the model's small head
    where it has one; the full-size faces are drawn only when the download asks for them (`full_size_strip`)."""
    if audio is None or (isinstance(audio, str) and not audio):
        raise Voice2FaceError(f"Record or upload a clip first (files up to {MAX_UPLOAD_MB} MB).")
    durations = durations_from_choices(choices, extra)
    if isinstance(audio, str) and not Path(audio).is_file():  # an upload the cache has let go of
        raise Voice2FaceError(expired_text(Path(audio).name))
    shown = None
    for result in model.stream(audio, durations, DISPLAY_SIZE, MAX_AUDIO_SECONDS):
        shown = shown or ShownClip.of(result, model)
        yield shown.step(result)


@dataclass
class ShownClip:
    """What the page shows of one clip that does not change as its faces arrive: the speech chart, the notes and
    the captions."""

    spectrogram: Image.Image
    notes: str
    captions: list[str]

    @classmethod
    def of(cls, result: FacesResult, model: Voice2Face) -> "ShownClip":
        spectrogram = spectrogram_image(result, model.front_end.hop_ms / 1000, model.front_end.log_compress)
        return cls(spectrogram, notes_text(result), [cut.short_label for cut in result.cuts])

    def step(self, result: FacesResult) -> DemoOutput:
        """The faces so far, what each was drawn as, and the reading of the whole clip (its face comes first); with
        the last face, how the face settled, the strip and what the full-size download draws again."""
        done = all(image is not None for image in result.images)
        readings = result.readings if result.readings.describes_voice else None
        drawn_as = []
        if readings is not None:
            drawn_as = [drawn_as_words(readings.row(i)) if image is not None else "" for i, image in enumerate(result.images)]
        # the longest length's reading, as its face was drawn from it, so the sliders' reset gives that face to the byte
        reading = readings.row(result.longest) if readings is not None else None
        return DemoOutput(list(zip(result.images, self.captions, strict=True)), settle_of(result) if done else None, self.spectrogram,
                          face_strip(result.images, result.captions, DISPLAY_SIZE) if done else None, self.notes, result.heard,
                          result.longest, reading, FullSizeFaces(result.readings, result.captions) if done else None, drawn_as,
                          result.cuts[result.longest].seconds)  # fmt: skip


def settle_of(result: FacesResult) -> dict[str, list[float]]:
    """How the face settles as more speech is heard: each length's seconds and its embedding's cosine to the whole clip's."""
    return {"seconds of speech": [round_seconds(x) for x in result.seconds],
            "similarity to whole clip": result.similarity_to_longest().round(4).tolist()}  # fmt: skip


def expired_text(name: str) -> str:
    """What a visitor is told when drawing again from an upload the server has deleted."""
    return (f"The recording {name[:60]!r} is no longer on this server: it keeps what is uploaded for about "
            f"{(CACHE_AGE_S + CACHE_SWEEP_S) // 60} minutes. Upload or record it again.")  # fmt: skip


def full_size_strip(model: Voice2Face, faces: FullSizeFaces) -> Image.Image:
    """The page's faces side by side at the size the model draws them (1024 px for the default model),
    for download: drawn only when asked for, so no visitor waits for pixels the page does not show."""
    images = model.render_readings(faces.readings)
    return face_strip(images, faces.captions, max(images[0].width, DISPLAY_SIZE))


# --------------------------------------------------------------------------- the voice reading

#: The age slider's ends: years younger (negative) or older than the face the voice gave, as the
#: face space's measured table (`FaceSpaceDirections.older_years`) turns years into steps. Further
#: down, young-looking faces turn into children; further up, old faces lose their gender.
OLDER_RANGE = (-5, 25)
#: The skin-tone slider's ends, in percent of the face space's measured reach (`FaceSpaceDirections.skin_reach`):
#: -100 darkest, 100 lightest, where the person is still the same person.
SKIN_RANGE = (-100, 100)
#: What the voice sets and what it does not, said beside the reading and the sliders.
WHAT_THE_VOICE_SETS = (
    "The voice sets the face's gender and roughly its age. It cannot tell skin tone, hair or face shape, and the model "
    "was not taught to guess them from an accent: they come from the face network's own variety of people, the same for "
    "the same voice. Speakers of one language still get alike skin tones more often than chance gives (measured); the "
    "slider sets it."
)
#: The age read is an estimate; the page shows it as a range this many years either side.
AGE_MARGIN = 5


def reading_text(reading: VoiceReading, speech_seconds: float) -> str:
    """What the model heard in the whole clip (`speech_seconds` of speech), in plain words: the same two numbers
    that place the whole clip's face and the sliders' face. Saying which length it is keeps it from seeming
    to contradict a short length's face (1 s of a woman's voice can read as a man's)."""
    female, age = float(reading.female[0]), float(reading.age[0])
    sure = max(female, 1 - female)
    if sure < 0.65:
        voice = f"could be a man's or a woman's ({female:.0%} a woman's)"
    else:
        voice = f"sounds like a {'woman' if female >= 0.5 else 'man'}'s ({'over 99%' if sure > 0.99 else f'{sure:.0%}'} sure)"
    low, high = round(age - AGE_MARGIN), round(age + AGE_MARGIN)
    return (f"What the model heard in the whole clip ({seconds_text(speech_seconds)} of speech): the voice {voice}, of someone "
            f"about {low} to {high} years old. These two readings place its face; move the sliders to draw the same person "
            f"otherwise.\n\n{WHAT_THE_VOICE_SETS}")  # fmt: skip


def drawn_as_words(reading: VoiceReading) -> str:
    """What a face was drawn as, in words, as the face space placed it: its gender as the voice read it, and
    its age (never under the model's floor): "a man of about 35"."""
    from ..models.style_map import MIN_FACE_AGE

    female, age = float(reading.female[0]), max(float(reading.age[0]), MIN_FACE_AGE)
    return f"a {'woman' if female >= 0.5 else 'man'} of about {round(age)}"


def slider_values(reading: VoiceReading) -> tuple[int, int, int]:
    """(percent a woman's, years older, skin lighter in percent) as the sliders show the reading: its gender,
    and the face as drawn."""
    return round(100 * float(reading.female[0])), 0, 0


def changed_face(model: Voice2Face, reading: VoiceReading, female_percent: float | None, years_older: float | None,
                 lighter_percent: float | None = None) -> Image.Image:  # fmt: skip
    """The reading's person redrawn with another gender (percent a woman's), older or younger, and with
    darker or lighter skin (percent of the slider's reach); None keeps the reading's own value, so all None
    gives the original face to the byte."""
    sliders = ((female_percent, (0, 100), "gender"), (years_older, OLDER_RANGE, "age"), (lighter_percent, SKIN_RANGE, "skin-tone"))
    for value, (low, high), what in sliders:
        if value is not None and not (isinstance(value, (int, float)) and low <= value <= high):
            raise Voice2FaceError(f"The {what} slider goes from {low} to {high}.")
    if any(value is not None for value, _, _ in sliders):
        female = float(reading.female[0]) if female_percent is None else female_percent / 100
        reading = reading.changed(female, years_older or 0.0, (lighter_percent or 0.0) / SKIN_RANGE[1])
    return model.render_readings(reading, DISPLAY_SIZE)[0]


# --------------------------------------------------------------------------- HTML the page shows


def faces_html(faces: list[tuple[Image.Image | None, str]], example: str | None = None, drawn_as: list[str] | None = None) -> str:
    """The faces as a wrapping grid with each caption under its face (never on it): on a phone
    they wrap onto rows instead of hiding behind a sideways scroll. `example` heads a worked
    example shown before first use; `drawn_as` says in each face's alt text what it was drawn as."""
    def alt(k: int, caption: str) -> str:
        what = f": {drawn_as[k]}" if drawn_as and k < len(drawn_as) else ""
        return html.escape(f"face drawn from {caption} of speech{what}")

    figures = "".join(
        (f'<figure class="v2f-face"><img src="{jpeg_data_uri(face)}" alt="{alt(k, caption)}">'
         if face else '<figure class="v2f-face v2f-pending"><div class="v2f-placeholder">drawing…</div>')
        + f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        for k, (face, caption) in enumerate(faces)
    )  # fmt: skip
    if example:
        return f'<p class="v2f-example-note">{html.escape(example)}</p><div class="v2f-faces v2f-example">{figures}</div>'
    return f'<div class="v2f-faces">{figures}</div>'


def notes_html(notes: str, settle: dict[str, list[float]] | None = None) -> str:
    """Plain-text notes on the page: the first line a paragraph, "- " lines a list, all escaped; with
    `settle`, the chart's numbers as text for screen readers (the chart points at it, page.js)."""
    lines = notes.splitlines()
    items = "".join(f"<li>{html.escape(line[2:])}</li>" for line in lines[1:] if line.startswith("- "))
    chart = f'<p class="v2f-sr-only" id="settle-data">{html.escape(settle_text(settle))}</p>' if settle else ""
    return (f"<p>{html.escape(lines[0])}</p>" if lines else "") + (f"<ul>{items}</ul>" if items else "") + chart


def settle_text(settle: dict[str, list[float]]) -> str:
    """The settle chart in words: how close each length's voice is to the whole clip's (1 = the same)."""
    pairs = zip(settle["seconds of speech"], settle["similarity to whole clip"], strict=True)
    return "How close each length's voice is to the whole clip's (1 = the same): " + ", ".join(f"{s:g} s {v:.2f}" for s, v in pairs) + "."


def image_html(image: Image.Image, alt: str) -> str:
    """One face inline (no file on the server to sweep or to race for), as JPEG like the grid's: as PNG it was 143 KB
    of the last face's 253 KB answer, and of every slider move's."""
    return f'<img src="{jpeg_data_uri(image)}" alt="{html.escape(alt)}">'


def status_html(message: str) -> str:
    """A line that says what the server is doing, announced politely to screen readers."""
    return f'<p class="v2f-status" role="status" aria-live="polite">{html.escape(message)}</p>'


def message_html(message: str, title: str = "Could not draw a face") -> str:
    """An error that stays on the page until the next request (a toast vanishes after 10 s)."""
    return f'<div class="v2f-error" role="alert"><strong>{html.escape(title)}</strong><p>{html.escape(message)}</p></div>'


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)  # 5x faster than the default; a few KB larger
    return buffer.getvalue()


#: The grid's faces are sent as JPEG at this quality: 150 KB a face as PNG, sent again with every face
#: that arrives after it, came to 2.3 MB for five faces; as JPEG 25 KB (a sixth), under 1 ms to encode, not 8.
#: The page's strip of the faces too: as PNG 534 KB and 25.7 ms to encode before the last face could be sent.
FACE_JPEG_QUALITY = 92


def jpeg_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=FACE_JPEG_QUALITY)
    return buffer.getvalue()


def jpeg_data_uri(image: Image.Image) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg_bytes(image)).decode()


#: How `save_image` encodes each kind of file it is asked for: charts, the API's faces and the full-size download
#: losslessly; the strip of faces, on the page and from the API, as JPEG.
ENCODERS = {"png": png_bytes, "jpg": jpeg_bytes}


def save_image(image: Image.Image, folder: Path, name: str = "", kind: str = "png") -> str:
    """Write `image` as `<content hash>/<name>.<kind>` in `folder` (`<content hash>.<kind>` without a name; `kind` one
    of ENCODERS), atomically, and return its path. The name is what a visitor's download is called, so it says what the
    file is and carries no hash; the folder keeps different pictures of one name apart.

    Identical requests give identical images; Gradio writes a PIL output in
    place under its content hash, so one client could download a file while
    another rewrote it ("Too little data for declared Content-Length"). A file
    that is renamed into place is never seen half-written.
    """
    data = ENCODERS[kind](image)
    digest = hashlib.sha256(data).hexdigest()
    path = folder / digest[:16] / f"{name}.{kind}" if name else folder / f"{digest[:32]}.{kind}"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.utime(path)  # handed out again: the cache sweep ages files by ctime, so make it young
    except FileNotFoundError:
        partial = path.parent / f".{path.name}.{uuid.uuid4().hex}.part"
        partial.write_bytes(data)
        os.replace(partial, path)
    return str(path)


def notes_text(result: FacesResult) -> str:
    """What was used and anything the visitor should know, as plain text (the API returns it as is)."""
    audio = result.utterance.audio
    lines = [result.heard]
    if audio.source_channels > 1:
        lines[0] += f" The {audio.source_channels} channels were mixed into one."
    lines += [f"- {note}" for note in result.notes]
    return "\n".join(lines)


PLAIN_SUMMARY = (
    "**What to expect:** a photograph of a made-up person that fits what the voice suggests, mainly whether it "
    "sounds like a man or a woman, and roughly how old. Different voices get different people, and one voice keeps "
    "its person. It is not a picture of the speaker: the model never saw who is speaking.\n\n"
    f"**Your recording** goes to this server only to draw the faces. It is kept in the server's temporary folder "
    f"and deleted within {(CACHE_AGE_S + CACHE_SWEEP_S) // 60} minutes (a live recording is held in memory while "
    "you record, and dropped when you stop or leave); it is never stored elsewhere, shared, or used for training."
)


def model_card(model: Voice2Face, path: str | Path) -> tuple[str, str]:
    """(what the model learned from and cannot do, in plain words; the technical details), from the
    checkpoint's config.json and its evaluation, if it has one."""
    info, training = model.info, model.info.training
    if is_untrained(model):
        plain = ("⚠️ This model is **untrained** (random weights). The faces show that the program runs; "
                 "they do not reflect the voice.")  # fmt: skip
    else:
        speakers, real = training.get("speakers"), training.get("real_speakers")
        if not (isinstance(speakers, int) and isinstance(real, int)):
            heard = "It learned from recorded voices."
        elif speakers == real:
            heard = f"It learned from the voices of {real:,} real people."
        else:
            heard = f"It learned from the voices of {speakers:,} speakers: {real:,} real people and {speakers - real:,} computer voices."
        if "Common Voice" in info.trained_on:
            heard += (" Most are volunteers of Mozilla Common Voice, reading a sentence in one of about 60 languages, "
                      "who gave their gender and age.")  # fmt: skip
        if info.model.voice.backend == "campplus":
            heard += (" It hears a voice through CAM++, a speaker-recognition network trained on about 200,000 speakers "
                      "(3D-Speaker, Apache-2.0).")  # fmt: skip
        plain = (
            f"**What it learned from.** {heard} It was never shown any speaker's face: it learned to hear whether a "
            "voice is a man's or a woman's and roughly how old, and to give different voices different people. "
            + face_source_text(info.trained_on)
            + "\n\n**What it cannot do.** It cannot show what the speaker looks like: the person drawn is invented. "
            "It is least sure about voices unlike those it learned from, and it draws no child: a child's voice gets a "
            "young adult's face. From under a second of speech it draws nothing. "
            + judged_gender_text(model)
            + (f"\n\n**What the voice sets, and what it does not.** {WHAT_THE_VOICE_SETS}"
               if model.generator.has_skin_tone else "")
        )  # fmt: skip
    technical = (
        f"Checkpoint `{Path(path).name}` (voice2face {info.code_version}): {training.get('steps', 0)} training steps "
        f"of stage `{training.get('stage', '?')}`, voice encoder `{info.model.voice.backend}`, face generator "
        f"`{info.model.generator.backend}`. Trained on: {info.trained_on}. Method: Wen, Singh & Raj, "
        "*Reconstructing faces from voices*, NeurIPS 2019."
    )
    return plain, technical


def face_source_text(trained_on: str) -> str:
    """Where the faces' look comes from, in plain words, as the checkpoint's description names it."""
    if "FFHQ" in trained_on:
        return "The faces come from a face generator trained on photographs of people from Flickr (FFHQ; non-commercial use only). "
    if "UTKFace" in trained_on:
        return "The faces come from a face generator trained on face photographs (UTKFace; non-commercial research only). "
    return ""


def judged_gender_text(model: Voice2Face) -> str:
    """How often the face's gender matched the voice's on real speakers held out of training, as the
    checkpoint's own evaluation (evaluation/results.json) measured it; empty when it has none."""
    import json

    try:
        results = json.loads((Path(model.path or ".") / "evaluation" / "results.json").read_text())
        real = results["judged_real"]
        figure = real["durations"]["whole"]["gender_agreement"]["value"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return ""
    return (f"On {len(real['speakers'])} real speakers it never heard ({real['clips']} clips), a face judge saw the "
            f"voice's gender in {figure:.0%} of the faces.")  # fmt: skip


def is_untrained(model: Voice2Face) -> bool:
    return model.info.trained_on.startswith("nothing")


def warm_up(model: Voice2Face) -> DemoOutput:
    """Serve one request before the first visitor does: decoder workers, the speech detector,
    PyTorch's first-call costs and Pillow's fonts otherwise land on them (2-3 s instead of 0.5 s).
    The page shows its result as a worked example until the visitor's own."""
    from ..audio.decoder_process import warm_up as start_decoders

    start_decoders()
    return demo_request(model, example_clips()[0], DEFAULT_CHOICES)


#: Heads the worked example shown before first use.
EXAMPLE_NOTE = "An example, from a bundled synthetic voice: record or upload your own voice and press Draw faces."
#: How the page looks, beside what it does in the browser (PAGE_JS).
CSS = (Path(__file__).resolve().parent / "page.css").read_text()

#: Run by the page after each draw has ended: nothing on it is the previous clip's any more (page.js marks what is).
UNMARK_PREVIOUS = "() => document.querySelectorAll('.v2f-previous').forEach((e) => e.classList.remove('v2f-previous'))"
#: What the page does in the browser: results scrolled into view, our words for a file that is not audio.
PAGE_JS = (Path(__file__).resolve().parent / "page.js").read_text().replace("__FORMATS__", SUPPORTED_FORMATS)


def example_clips() -> list[str]:
    """Bundled example recordings, in the page's order (see examples/README.md for their origin)."""
    return [str(EXAMPLES_DIR / name) for name in EXAMPLES]


def example_labels() -> list[str]:
    """The examples named in words, not by file name: whose voice, and what it is."""
    return list(EXAMPLES.values())
