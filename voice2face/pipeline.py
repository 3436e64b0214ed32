"""Inference: `Voice2Face.from_pretrained(dir)`, then `stream(audio)` (faces as they are drawn) or
`faces_for_durations(audio)` (all of them at once).

The app, the live view, the CLI, the evaluator and the tests all go through this class.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .audio.decode import AudioSource
from .audio.front_end import Utterance, prepare_utterance
from .checkpoint import CheckpointInfo, load_network, read_info, require_kind
from .errors import AudioError, Voice2FaceError
from .images import face_strip, resize, to_pil
from .lengths import DEFAULT_DURATIONS, Cut, Durations, distinct_cuts, parse_durations, plan_cuts, seconds_text
from .limits import MAX_AUDIO_SECONDS, MAX_SIZE, MIN_FACE_SPEECH_SECONDS, MIN_SIZE
from .models import FaceGenerator, Reading, VoiceEncoder
from .models.openvino import available as openvino_available
from .models.voice import speaker_part
from .paths import DEFAULT_CHECKPOINT


@dataclass
class FacesResult:
    """Faces for several lengths of one clip, what each length really used, and what the model read from each."""

    images: list[Image.Image | None]  # per cut; None for a face a stream has not drawn yet
    cuts: list[Cut]
    embeddings: np.ndarray  # (n_cuts, output_dim): unit speaker embeddings, then any statistics (NaN: not heard yet)
    utterance: Utterance
    readings: Reading  # per cut: the numbers that place each face (`Reading.describes_voice`: gender and age among them)
    notes: list[str] = field(default_factory=list)
    speaker_dims: int | None = None  # the rows' leading unit speaker embedding (`models.voice.speaker_part`); None: all of it

    @property
    def seconds(self) -> list[float]:
        return [c.seconds for c in self.cuts]

    @property
    def heard(self) -> str:
        """How much speech in how much audio: the line the page, the live view and the CLI all show."""
        return f"Heard {seconds_text(self.utterance.speech_seconds)} of speech in {seconds_text(self.utterance.audio.seconds)} of audio."

    @property
    def captions(self) -> list[str]:
        return [c.label for c in self.cuts]

    @property
    def longest(self) -> int:
        """Which cut is the longest (the whole clip's, where it was asked for): the first face drawn."""
        return self.drawing_order[0]

    @property
    def drawing_order(self) -> list[int]:
        """The cuts in the order their faces are drawn: the longest (the whole clip's) first, then shorter and shorter."""
        return sorted(range(len(self.cuts)), key=lambda i: -self.cuts[i].frames)

    def similarity_to_longest(self) -> np.ndarray:
        """Cosine of each cut's embedding to the longest cut's: how the embedding settles."""
        speaker = speaker_part(self.embeddings, self.speaker_dims)
        return speaker @ speaker[self.longest]

    def strip(self, size: int = 160) -> Image.Image:
        """All faces side by side with their captions, as one image."""
        return face_strip(self.images, self.captions, size)


class Voice2Face:
    """A voice encoder and a face generator loaded from one checkpoint."""

    def __init__(
        self, voice_encoder: VoiceEncoder, generator: FaceGenerator, info: CheckpointInfo,
        device: str = "cpu", path: Path | None = None,
    ):  # fmt: skip
        self.device = resolve_device(device)
        self.voice_encoder = voice_encoder.to(self.device).eval()
        # channels-last lets oneDNN run the StyleGAN's convolutions 1.7x faster on a CPU (benchmarks/bench_inference.py)
        self.generator = generator.to(self.device, memory_format=torch.channels_last).eval()
        self.info = info
        self.front_end = voice_encoder.front_end
        self.path = path  # the checkpoint directory it came from, if any

    @classmethod
    def from_pretrained(cls, path: str | Path = DEFAULT_CHECKPOINT, device: str = "cpu") -> "Voice2Face":
        """Load a 'voice-to-face' checkpoint directory (a training run, `export` or `init-random`)."""
        path = Path(path)
        info = read_info(path)
        require_kind(path, info, "voice-to-face")
        return cls(load_network(path, "voice_encoder", info), load_network(path, "generator", info), info, device, path)

    @torch.inference_mode()
    def stream(
        self, audio: AudioSource, durations: Durations = DEFAULT_DURATIONS, size: int | None = None,
        max_seconds: float = MAX_AUDIO_SECONDS,
    ) -> Iterator[FacesResult]:  # fmt: skip
        """One face for the first N seconds of speech, for each N in `durations` (None = whole clip), `size`
        pixels square (None: as the model draws them, 64 or 1024), yielded as each is drawn: the whole
        clip's first, each step the result so far (faces still to come are None).

        Each face is drawn as soon as its length is heard: the whole clip's does not wait for the passes
        the shorter lengths need of their own (`VoiceEncoder.prefix_passes`). Until the last step, the
        embeddings and readings of lengths not heard yet are NaN. Lengths that come to the same speech (8 s
        and 16 s of a 5 s clip) give one face, not copies; `notes` says so. A StyleGAN model with a small
        head draws faces of up to 256 px through it, about 4x faster than at 1024 px.
        """
        check_size(size)
        result = self.listen(audio, durations, max_seconds)
        small = self.draws_small(size)
        passes = self.voice_encoder.prefix_passes([c.frames for c in result.cuts])
        for i in result.drawing_order:
            if np.isnan(result.embeddings[i]).any():  # this length's pass is next
                result = self.hear(result, next(group for group in passes if result.cuts[i].frames in group))
            (face,) = self.draw(result.readings.row(i), size, small)
            result = dataclasses.replace(result, images=[face if k == i else image for k, image in enumerate(result.images)])
            yield result

    def faces_for_durations(
        self, audio: AudioSource, durations: Durations = DEFAULT_DURATIONS, max_seconds: float = MAX_AUDIO_SECONDS,
        size: int | None = None,
    ) -> FacesResult:  # fmt: skip
        """Every face of `stream`, once all are drawn."""
        *_, last = self.stream(audio, durations, size, max_seconds)
        return last

    @torch.inference_mode()
    def plan(self, audio: AudioSource, durations: Durations = DEFAULT_DURATIONS, max_seconds: float = MAX_AUDIO_SECONDS) -> FacesResult:
        """Decode, cut, embed and read, without drawing: a result whose faces are all None."""
        result = self.listen(audio, durations, max_seconds)
        return self.hear(result, [c.frames for c in result.cuts])

    def listen(self, audio: AudioSource, durations: Durations, max_seconds: float) -> FacesResult:
        """Decode, check for speech and cut, before any length is heard: a result whose embeddings are NaN."""
        durations = parse_durations(durations)
        utterance = prepare_utterance(audio, self.front_end, max_seconds)
        require_face_speech(utterance.speech_seconds)
        planned = plan_cuts(utterance.features.shape[-1], durations, self.front_end)
        cuts = distinct_cuts(planned, self.front_end.hop_ms)
        unheard = np.full((len(cuts), self.voice_encoder.output_dim), np.nan, dtype=np.float32)
        return FacesResult([None] * len(cuts), cuts, unheard, utterance, self.read_voices(unheard), _notes(utterance, planned),
                           self.voice_encoder.embedding_dim)  # fmt: skip

    def hear(self, result: FacesResult, lengths: list[int]) -> FacesResult:
        """`result` with the cuts of these lengths (in frames) embedded, and everything heard so far read."""
        heard = [k for k, cut in enumerate(result.cuts) if cut.frames in lengths]
        embeddings = result.embeddings.copy()
        embeddings[heard] = self.embed_cuts(result.utterance.features, [result.cuts[k] for k in heard]).cpu().numpy()
        return dataclasses.replace(result, embeddings=embeddings, readings=self.read_voices(embeddings))

    def embed_cuts(self, features: torch.Tensor, cuts: list[Cut]) -> torch.Tensor:
        """Embed the first `cut.frames` frames for every cut (the encoder shares what work it can between them)."""
        return self.voice_encoder.embed_prefixes(features.to(self.device), [c.frames for c in cuts])

    def serve_with_openvino(self, cache_dir: str | Path | None = None) -> bool:
        """Draw faces (and hear voices, where the encoder has a compiled graph) through OpenVINO from now on,
        where that is faster: a StyleGAN generator on a CPU. With a `cache_dir` the graphs are kept there
        (`models/openvino.py`), so a restart reads them back. For a long-running server; False, and
        nothing changed, for other models or devices or without the openvino package. The voice's graph is traced
        in a child process while the faces' is traced here: both cores busy at a first start."""
        if self.device.type != "cpu" or not openvino_available() or not self.generator.has_cpu_graph:
            return False
        with ThreadPoolExecutor(1, thread_name_prefix="voice2face-voice-graph") as voice_side:
            hearing = voice_side.submit(self.voice_encoder.compile_for_cpu, cache_dir)
            self.generator.compile_for_cpu(cache_dir)
            hearing.result()
        return True

    def release_full_size(self) -> None:
        """After full-size faces: let the compiled full-size graph go, where it can be read back from the
        cache (`serve_with_openvino`); nothing otherwise."""
        self.generator.release_full_size()

    def draws_small(self, size: int | None) -> bool:
        """Whether faces of `size` px come from the generator's small head (StyleGAN models that have one, up to its size)."""
        small = self.generator.small_size
        return small is not None and size is not None and size <= small

    @torch.inference_mode()
    def read_voices(self, embeddings: np.ndarray | torch.Tensor) -> Reading:
        """What the model reads from each voice embedding: the numbers that place its face."""
        return self.generator.read(torch.as_tensor(embeddings, dtype=torch.float32, device=self.device))

    @torch.inference_mode()
    def render(self, embeddings: np.ndarray | torch.Tensor, size: int | None = None) -> list[Image.Image]:
        """Faces for voice embeddings (rows), `size` px square."""
        return self.render_readings(self.read_voices(embeddings), size)

    @torch.inference_mode()
    def render_readings(self, reading: Reading, size: int | None = None) -> list[Image.Image]:
        """Faces for readings, changed or not (`VoiceReading.changed`): the same person older, younger,
        or the other gender. Every face is drawn through here, so an unchanged reading gives the same
        face to the byte. On a CPU one face at a time: a batch of 1024-px faces overflows the caches
        and costs more per face (benchmarks/bench_inference.py)."""
        check_size(size)
        n = len(reading)
        batches = [reading.row(i) for i in range(n)] if self.device.type == "cpu" else [reading]
        small = self.draws_small(size)
        return [face for batch in batches for face in self.draw(batch, size, small)]

    def draw(self, reading: Reading, size: int | None, small: bool) -> list[Image.Image]:
        images = to_pil(self.generator.draw(reading, small))
        return [resize(image, size) for image in images] if size else images

    @torch.inference_mode()
    def __call__(self, audio: AudioSource) -> Image.Image:
        """The face for the whole clip."""
        return self.faces_for_durations(audio, (None,)).images[0]


def resolve_device(device: str) -> torch.device:
    """'cpu', 'cuda', 'cuda:N' or 'auto' (CUDA when there is one), with a clear error if unavailable."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise Voice2FaceError(f"Unknown device {str(device)[:40]!r}: use cpu, cuda, cuda:N or auto.") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise Voice2FaceError(f"Device {device!r} was asked for, but PyTorch sees no CUDA GPU here; use --device cpu.")
    if chosen.type not in ("cpu", "cuda"):
        raise Voice2FaceError(f"Device {device!r} is not supported: use cpu, cuda, cuda:N or auto.")
    return chosen


def require_face_speech(speech_seconds: float) -> None:
    """Refuse, in words, to draw a face from under MIN_FACE_SPEECH_SECONDS of speech."""
    if speech_seconds < MIN_FACE_SPEECH_SECONDS:
        raise AudioError(
            f"Only {seconds_text(speech_seconds)} of speech were heard; a face needs at least "
            f"{MIN_FACE_SPEECH_SECONDS:g} s, since from less a voice tells too little of its speaker. Speak a little longer."
        )


def check_size(size: int | None) -> None:
    if size is not None and not MIN_SIZE <= size <= MAX_SIZE:
        raise Voice2FaceError(f"Faces are drawn {MIN_SIZE} to {MAX_SIZE} pixels wide, not {size}.")


def _notes(utterance: Utterance, cuts: list[Cut]) -> list[str]:
    """Plain-language remarks on what was used (`cuts` as planned, before merging), for the CLI and the app to show."""
    audio, notes = utterance.audio, []
    if audio.truncated:
        notes.append(
            f"The clip is {seconds_text(audio.source_seconds)} long; only its first {seconds_text(audio.seconds)} were read."
        )
    if audio.damaged_note:
        notes.append(audio.damaged_note)
    capped = [f"{cut.requested:g}" for cut in cuts if cut.capped]
    if capped:
        asked = capped[0] if len(capped) == 1 else ", ".join(capped[:-1]) + " and " + capped[-1]
        notes.append(f"Asked for {asked} s of speech, but the clip holds only {seconds_text(utterance.speech_seconds)}"
                     f"{'' if len(capped) == 1 else ' of speech'}; one face was drawn from all of it.")  # fmt: skip
    return notes
