"""A face that forms while someone speaks: constant work and memory per update, however long the recording.

The microphone delivers a chunk about every second. Each chunk is resampled
(one streaming resampler per recording), its silence removed by the same
WebRTC VAD as the full pipeline, and the speech appended to a short buffer.
Whenever the buffer holds a 1.6 s window, the window is embedded and added to
a running sum; windows overlap by half, as GE2E's own partials do. The face
shown is the generator's for the normalised sum (plus the unfinished window),
so an update costs one window's embedding and one face, never the whole
recording. The recording itself is kept (16-bit, 16 kHz, at most
MAX_AUDIO_SECONDS) so that the usual side-by-side comparison can be drawn
when recording stops.

Chunks that arrive as files (the web page's stream) are decoded by the same
bounded decoder, in a worker, as uploads (`add_file`), at most
MAX_CHUNK_SECONDS of each; and only windows a speech detector hears as a voice
count towards the face, so a tone or music draws nothing.

`LiveRecordings` holds the recordings of a shared page: one a visitor session,
at most MAX_LIVE_RECORDINGS at once, each dropped LIVE_IDLE_S after its last
chunk, so what strangers can make the server hold is bounded.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr
import torch
from PIL import Image

from ..audio.decode import check_layout, to_float_mono, whole_rate
from ..audio.front_end import frame_features, speech_frames
from ..audio.load import load_audio
from ..audio.speech_check import MIN_SPEECH_PROBABILITY, speech_probability
from ..audio.speech_check import SAMPLE_RATE as SPEECH_CHECK_RATE
from ..errors import AudioError
from ..images import DISPLAY_SIZE
from ..limits import MAX_AUDIO_SECONDS, MIN_FACE_SPEECH_SECONDS
from ..models.voice import average_voices
from ..pipeline import Voice2Face
from ..units import seconds_text
from .limits import LIVE_IDLE_S, MAX_LIVE_RECORDINGS

WINDOW_SECONDS = 1.6
#: Chunk bytes a recording may have waiting to be heard (a second of browser audio is 2-40 KB).
MAX_WAITING_BYTES = 16 * 1024 * 1024
#: The page sends a chunk about every second; a "chunk" longer than this is cut to it.
MAX_CHUNK_SECONDS = 5.0


@dataclass
class LiveUpdate:
    face: Image.Image | None  # None until MIN_FACE_SPEECH_SECONDS of speech have been heard
    speech_seconds: float  # seconds of speech the face is drawn from (no face yet: heard so far)
    recorded_seconds: float
    new_face: bool  # False when the face is the one already shown (no new speech was embedded)
    not_voice: bool = False  # sound was heard, but it was not a voice (a tone, noise, music)
    waiting: int = 0  # chunks received and kept, not yet listened to: the server is behind the microphone
    problem: str = ""  # why a kept chunk could not be heard (the rest of the recording goes on)

    @property
    def caption(self) -> str:
        """One line in one unit; the speech used never exceeds the recording, so neither does its figure."""
        line = self.heard
        if self.waiting:
            line += f" (the server is busy: {self.waiting} chunk{'s' if self.waiting > 1 else ''} of audio kept, still to be heard; none is lost)"
        if self.problem:
            line += f" A piece of the recording could not be read: {self.problem}"
        return line

    @property
    def heard(self) -> str:
        """What the face is drawn from, or why there is none yet."""
        if self.face is None and self.not_voice:
            return f"No voice heard yet: a tone, noise or music draws no face. {seconds_text(self.recorded_seconds)} recorded"
        if self.face is None and self.speech_seconds > 0:
            return (f"Listening… {seconds_text(self.speech_seconds)} of speech so far; a face needs "
                    f"{MIN_FACE_SPEECH_SECONDS:g} s. {seconds_text(self.recorded_seconds)} recorded")  # fmt: skip
        if self.face is None:
            return f"Listening… no speech yet, {seconds_text(self.recorded_seconds)} recorded"
        return f"Face from {seconds_text(self.speech_seconds)} of speech, {seconds_text(self.recorded_seconds)} recorded"


class LiveFaces:
    """The face for the speech so far, updated one microphone chunk at a time."""

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
        self.inbox: deque[bytes] = deque()  # chunks kept, not yet heard
        self.inbox_lock, self.hearing = threading.Lock(), threading.Lock()
        self.listener: threading.Thread | None = None  # hears the kept chunks, one at a time, in order
        self.problem = ""  # why the last chunk that could not be heard was not
        self.answered_face: Image.Image | None = None  # the face the page was last sent

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

    def add_file(self, path: str | Path) -> LiveUpdate:
        """Take the next chunk as the page streams it, a short audio file: kept at once, in order, and heard
        by this recording's own thread, so the page's stream is answered at once however busy the server
        is (a stream left waiting lost audio: 4.8 s of 10 s reached the server). Every chunk is kept; only
        redraws are skipped. The answer carries the newest face drawn, and how much is still to be heard."""
        self.keep(Path(path).read_bytes())
        with self.inbox_lock:
            if self.listener is None or not self.listener.is_alive():
                self.listener = threading.Thread(target=self.catch_up, kwargs={"wait": True}, daemon=True)
                self.listener.start()
        return self.update_as_is()

    def keep(self, chunk: bytes) -> None:
        """Queue a chunk's file bytes, in the order they came (at most MAX_WAITING_BYTES waiting)."""
        if len(chunk) > MAX_WAITING_BYTES:
            raise AudioError(f"A live chunk of {len(chunk) / 2**20:.0f} MB is far more than a second of audio; record again.")
        with self.inbox_lock:
            if sum(map(len, self.inbox)) + len(chunk) > MAX_WAITING_BYTES:
                raise AudioError("The server has fallen too far behind your microphone; stop and record again in a minute.")
            self.inbox.append(chunk)

    def catch_up(self, wait: bool = False) -> LiveUpdate:
        """Hear every kept chunk in order, then draw if there is new speech. One thread hears a recording at
        a time; another that arrives meanwhile leaves its chunk kept and returns the face as it is (with
        `wait`, it waits its turn: the end of a recording must hear everything)."""
        if not self.hearing.acquire(blocking=wait):
            return self.update_as_is()
        try:
            while True:
                with self.inbox_lock:
                    if not self.inbox:
                        break
                    chunk = self.inbox.popleft()
                try:
                    self._hear_file(chunk)
                except AudioError as err:  # heard in this recording's own thread: say it with the next answer
                    self.problem = str(err)
            return self.current()
        finally:
            self.hearing.release()

    def _hear_file(self, chunk: bytes) -> None:
        """Decode one chunk like an upload (in a worker, bounded), never more than MAX_CHUNK_SECONDS of it nor
        more than the recording has room for."""
        room = (self.max_samples - self.recorded_samples) / self.rate
        if room > 0:
            audio = load_audio(chunk, self.rate, max_seconds=min(MAX_CHUNK_SECONDS, room))
            self.add(self.rate, audio.samples)

    def update_as_is(self) -> LiveUpdate:
        """The newest face drawn (new_face if this is the first answer to carry it), and how many kept
        chunks are still to be heard."""
        with self.inbox_lock:
            waiting = max(len(self.inbox) - 1, 0)  # the chunk just kept is on its way; more are a backlog
            face, new = self.face, self.face is not None and self.face is not self.answered_face
            self.answered_face = face
        used = self.drawn_samples if face is not None else len(self.speech)
        return LiveUpdate(face, used / self.rate, self.recorded_samples / self.rate, new_face=new,
                          not_voice=self.not_voice, waiting=waiting, problem=self.problem)  # fmt: skip

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
        """The whole recording as a (rate, int16 samples) pair, as `load_audio` takes it: every chunk kept
        is heard first."""
        self.catch_up(wait=True)
        if not self.recorded:
            raise AudioError("Nothing was recorded. Allow the page to use the microphone and try again.")
        return self.rate, np.concatenate(self.recorded)


#: What stopping says when the server holds no recording for the session.
NO_RECORDING = (
    f"No recording reached the server: the live view was full, or the recording sent nothing for {LIVE_IDLE_S:.0f} s. "
    "Try again, or record a clip in the “Record or upload” tab."
)


class LiveRecordings:
    """The live view's recordings, one a visitor session, kept here rather than in Gradio's session
    state (which keeps a closed tab's state for an hour, and one for every session hash a script
    invents): at most `limit` at once, each dropped `idle_s` after its last chunk, so the memory the
    live view can hold is bounded by `limit` recordings whatever visitors do. Thread-safe: Gradio
    calls it from several worker threads."""

    def __init__(self, model: Voice2Face, limit: int = MAX_LIVE_RECORDINGS, idle_s: float = LIVE_IDLE_S,
                 clock: Callable[[], float] = time.monotonic):  # fmt: skip
        self.model, self.limit, self.idle_s, self.clock = model, limit, idle_s, clock
        self.recordings: dict[str, tuple[LiveFaces, float]] = {}  # session -> (recording, time of its last chunk)
        self.lock = threading.Lock()

    def open(self, session: str) -> LiveFaces:
        """This session's recording, begun now if it has none; an AudioError when `limit` others are recording."""
        self.drop_idle()
        with self.lock:
            live = self.recordings[session][0] if session in self.recordings else None
            if live is None:
                if len(self.recordings) >= self.limit:
                    raise AudioError(
                        f"The live view is full: {self.limit} visitors are recording right now. Try again in a minute, "
                        "or record a clip in the “Record or upload” tab."
                    )
                live = LiveFaces(self.model)
            self.recordings[session] = (live, self.clock())
            return live

    def drop_idle(self) -> list[str]:
        """Drop the recordings whose last chunk is older than `idle_s` (a closed tab, a stalled stream);
        the sessions dropped."""
        with self.lock:
            now = self.clock()
            idle = [session for session, (_, last) in self.recordings.items() if now - last > self.idle_s]
            for session in idle:
                del self.recordings[session]
        return idle

    def add_file(self, session: str, path: str | Path) -> LiveUpdate:
        """The next chunk of this session's recording (see `LiveFaces.add_file`)."""
        return self.open(session).add_file(path)

    def close(self, session: str) -> LiveFaces | None:
        """End this session's recording and hand it over (None if it had none, or it was dropped)."""
        with self.lock:
            entry = self.recordings.pop(session, None)
        return entry[0] if entry else None

    def __len__(self) -> int:
        return len(self.recordings)

    def __contains__(self, session: str) -> bool:
        return session in self.recordings
