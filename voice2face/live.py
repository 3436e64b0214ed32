"""A face that forms while someone speaks: constant work and memory per update, however long the recording.

Samples arrive a chunk at a time (a browser's microphone sends one about every 0.1 s). Each chunk is resampled
(one streaming resampler per recording), its silence removed by the same WebRTC VAD as the full
pipeline, and the speech appended to a short buffer. Whenever the buffer holds a 1.6 s window, the
window is embedded and added to a running sum; windows overlap by half, as GE2E's own partials do.
The face shown is the generator's for the normalised sum (plus the unfinished window), so an update
costs one window's embedding and one face, never the whole recording. The recording itself is kept
(16-bit, 16 kHz, at most MAX_AUDIO_SECONDS) so that the usual side-by-side comparison
(`Voice2Face.stream`) can be drawn when recording stops. Only windows a speech detector hears as a
voice count towards the face, so a tone or music draws nothing.

The web page's Live tab keeps its chunks and hands them over here (`web/live.py`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import soxr
import torch
from PIL import Image

from .audio.decode import check_layout, to_float_mono, whole_rate
from .audio.front_end import frame_features, speech_frames
from .audio.speech_check import MIN_SPEECH_PROBABILITY, speech_probability
from .audio.speech_check import SAMPLE_RATE as SPEECH_CHECK_RATE
from .errors import AudioError
from .images import DISPLAY_SIZE
from .lengths import seconds_text
from .limits import MAX_AUDIO_SECONDS, MIN_FACE_SPEECH_SECONDS
from .models.voice import average_voices
from .pipeline import Voice2Face

WINDOW_SECONDS = 1.6


@dataclass
class LiveUpdate:
    face: Image.Image | None  # None until MIN_FACE_SPEECH_SECONDS of speech have been heard
    speech_seconds: float  # seconds of speech the face is drawn from (no face yet: heard so far)
    recorded_seconds: float
    new_face: bool  # False when the face is the one already shown (no new speech was embedded)
    not_voice: bool = False  # sound was heard, but it was not a voice (a tone, noise, music)

    @property
    def caption(self) -> str:
        """What the face is drawn from, or why there is none yet, in one unit: the speech used never exceeds
        the recording, so neither does its figure."""
        if self.face is None and self.not_voice:
            return f"No voice heard yet: a tone, noise or music draws no face. {seconds_text(self.recorded_seconds)} recorded"
        if self.face is None and self.speech_seconds > 0:
            return (f"Listening… {seconds_text(self.speech_seconds)} of speech so far; a face needs "
                    f"{MIN_FACE_SPEECH_SECONDS:g} s. {seconds_text(self.recorded_seconds)} recorded")  # fmt: skip
        if self.face is None:
            return f"Listening… no speech yet, {seconds_text(self.recorded_seconds)} recorded"
        return f"Face from {seconds_text(self.speech_seconds)} of speech, {seconds_text(self.recorded_seconds)} recorded"


class LiveFaces:
    """The face for the speech so far, updated one chunk of samples at a time."""

    def __init__(self, model: Voice2Face, max_seconds: float = MAX_AUDIO_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.model, self.front_end, self.clock = model, model.front_end, clock
        self.rate = self.front_end.sample_rate
        self.window = int(WINDOW_SECONDS * self.rate)
        self.vad_frame = self.rate * self.front_end.vad_frame_ms // 1000
        self.max_samples = int(max_seconds * self.rate)
        self.source_rate: int | None = None
        self.resampler: soxr.ResampleStream | None = None
        self.recorded: list[np.ndarray] = []  # int16 chunks of the whole recording, for the final comparison
        self.recorded_samples = 0
        self.unvoiced = np.zeros(0, np.float32)  # audio not yet run through the VAD (under one VAD frame)
        self.speech = np.zeros(0, np.float32)  # speech not yet embedded in a full window
        self.embedded_samples = 0  # speech covered by finished windows
        self.total: torch.Tensor | None = None  # sum of the finished windows' encoder outputs
        self.windows = 0  # how many
        self.face: Image.Image | None = None  # the face last drawn, and from how many samples of speech
        self.drawn_samples = 0
        self.drawn_at, self.render_seconds = 0.0, 0.0  # when the face was last drawn, and how long that took
        self.not_voice = False  # a window was heard and was not a voice

    def add(self, source_rate: object, samples: np.ndarray) -> LiveUpdate:
        """Take the next microphone chunk, as Gradio streams it: (rate, int16 or float samples)."""
        rate = whole_rate(source_rate)
        check_layout("the microphone", rate, 1)
        if self.source_rate is None:
            self.source_rate = rate
            self.resampler = None if rate == self.rate else soxr.ResampleStream(rate, self.rate, 1, dtype="float32")
        elif rate != self.source_rate:
            raise AudioError("The microphone changed its sample rate during the recording; record again.")
        mono, _ = to_float_mono(np.asarray(samples))
        mono = np.nan_to_num(mono, nan=0.0, posinf=0.0, neginf=0.0)
        if self.resampler is not None:
            mono = self.resampler.resample_chunk(mono)
        room = self.max_samples - self.recorded_samples
        mono = mono[: max(room, 0)]
        if len(mono):
            self.recorded.append((np.clip(mono, -1, 1) * 32767).astype(np.int16))
            self.recorded_samples += len(mono)
            self._listen(mono)
        return self.current()

    def _listen(self, mono: np.ndarray) -> None:
        audio = np.concatenate([self.unvoiced, mono])
        whole = len(audio) // self.vad_frame * self.vad_frame
        self.unvoiced = audio[whole:]
        if whole == 0 or np.abs(audio[:whole]).max() < 1e-3:
            return
        voiced = speech_frames(audio[:whole], self.front_end)
        speech = audio[:whole].reshape(-1, self.vad_frame)[voiced].reshape(-1)
        self.speech = np.concatenate([self.speech, speech])
        while len(self.speech) >= self.window:
            window = self.speech[: self.window]
            if self._is_voice(window):
                embedding = self._embed(window)
                self.total = embedding if self.total is None else self.total + embedding
                self.windows += 1
                self.embedded_samples += self.window // 2 if self.embedded_samples else self.window
            else:
                self.not_voice = True
            self.speech = self.speech[self.window // 2 :]

    @torch.inference_mode()
    def _embed(self, speech: np.ndarray) -> torch.Tensor:
        features = frame_features(speech, self.front_end).to(self.model.device)
        return self.model.voice_encoder.embed_prefixes(features, [features.shape[-1]])[0]

    @torch.inference_mode()
    def current(self) -> LiveUpdate:
        """The face for the finished windows (or, before the first, for the speech heard so far)."""
        recorded = self.recorded_samples / self.rate
        used = self.embedded_samples if self.total is not None else len(self.speech)
        # Redraw only for new speech, and no more often than drawing allows: a machine that takes
        # 1.5 s to draw a face redraws every 3 s rather than falling behind the microphone.
        busy = self.clock() - self.drawn_at < 2 * self.render_seconds
        # No face from under MIN_FACE_SPEECH_SECONDS: from 0.3 s of a man's voice the reading drew a child.
        too_little = used < MIN_FACE_SPEECH_SECONDS * self.rate
        if too_little and self.face is None:
            return LiveUpdate(None, used / self.rate, recorded, new_face=False, not_voice=self.not_voice)
        nothing_new = used == self.drawn_samples or too_little or busy
        if nothing_new or (self.total is None and not self._is_voice(self.speech)):  # the detector only when it decides
            return LiveUpdate(self.face, self.drawn_samples / self.rate, recorded, new_face=False, not_voice=self.not_voice)
        dims = self.model.voice_encoder.embedding_dim
        voice = average_voices(self.total[None] / self.windows, dims) if self.total is not None else self._embed(self.speech)
        start = self.clock()
        self.face = self.model.render(voice[None], DISPLAY_SIZE)[0]
        self.drawn_at = self.clock()
        self.render_seconds = self.drawn_at - start
        self.drawn_samples = used
        return LiveUpdate(self.face, used / self.rate, recorded, new_face=True)

    def _is_voice(self, speech: np.ndarray) -> bool:
        """Whether `speech` sounds like a voice to the speech detector (too short to tell: not yet). The
        detector hears 16 kHz; a model at another rate is not checked, as `prepare_utterance` does."""
        if self.rate != SPEECH_CHECK_RATE:
            return True
        probability = speech_probability(speech)
        return probability is not None and probability >= MIN_SPEECH_PROBABILITY

    def recording(self) -> tuple[int, np.ndarray]:
        """The whole recording as a (rate, int16 samples) pair, as `load_audio` and `Voice2Face.stream` take it."""
        if not self.recorded:
            raise AudioError("Nothing was recorded. Allow the page to use the microphone and try again.")
        return self.rate, np.concatenate(self.recorded)
