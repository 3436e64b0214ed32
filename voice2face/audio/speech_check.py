"""Is there a voice in this clip? A second opinion after WebRTC VAD, from Silero VAD.

WebRTC VAD (which cuts the silence out) calls almost any steady sound speech:
a 440 Hz tone, white noise and a DC offset all pass it. A face drawn from a
tone means nothing, so before drawing we ask Silero VAD (MIT; its networks
ship inside the `silero-vad` wheel, nothing is downloaded), a neural speech
detector, whether the kept audio sounds like a voice.

It listens to at most `SEGMENTS` windows of 1.5 s spread over the speech
(Silero needs that much context: in 0.38 s windows it heard a shouted clip
over a phone line as barely speech), each as recorded and scaled to a
speaking level (Silero hears little in a quiet recording), and takes the
median of each frame's higher probability. Audio that carries nothing above
4 kHz (a phone call, an 8 kHz recording) is also heard by Silero's 8 kHz
model, trained on calls, which hears telephone speech far better than the
16 kHz model hears the same band (median 0.37 or more on all 535 EmoDB clips,
against 0.09 for the worst at 16 kHz).

Measured on the 535 EmoDB clips (tests/test_hostile_input.py has the table
and the README its figures): none is refused as recorded, in telephone band,
at -45 dBFS or with white noise at 10 dB SNR; at 5 dB SNR one is. A 440 Hz
tone, white and pink noise, DC, hum, a sweep, an amplitude-modulated tone,
chords and plucked strings, as they are, quiet, in telephone band or in
noise, are all refused (the highest of them scores 0.14, against 0.2 needed).
Of 1,639 Common Voice clips of real speakers (`../shared/data/voices_labelled`),
6 are refused: their spectrograms show voices, which Silero rates 0.01-0.19.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import soxr

from ..errors import AudioError

SAMPLE_RATE = 16000
CHUNK = 512  # samples per Silero frame at 16 kHz (32 ms)
CONTEXT = 64  # samples of the previous frame that Silero sees before each frame
CHUNKS_PER_SEGMENT = 48  # 1.5 s windows
MIN_CHUNKS = 6  # under this (0.19 s) a clip is too short to judge
WARM_UP_CHUNKS = 2  # the recurrent state needs a couple of frames before its answers mean anything
SEGMENTS = 8
STATE_SIZE = 128
#: A clip holds a voice when the median frame's speech probability is at least this. Speech in
#: 5 dB of noise scores 0.08 at worst (one clip of 535), the non-speech sounds above 0.14 at most.
MIN_SPEECH_PROBABILITY = 0.2
#: The speech is also heard scaled to this RMS level: at -45 dBFS Silero heard too little in 15 of 535.
LISTENING_LEVEL_DBFS = -26.0
#: Audio with less than this share of its power above 4 kHz is narrowband (a call): it is also heard at 8 kHz.
NARROWBAND_SHARE = 1e-3
CALL_RATE, CALL_CHUNK, CALL_CONTEXT = 8000, 256, 32


def _silero_file(name: str) -> str:
    """A network inside the wheel, found by path, not imported: importing the silero_vad package calls
    torch.set_num_threads(1) for the whole process."""
    return str(Path(importlib.util.find_spec("silero_vad").origin).parent / "data" / name)


def _session(name: str):
    """One thread: the model is small, and the networks after it get both cores. Sessions hold no state
    between calls (the recurrent state is passed in), so callers on several threads may share one. Without
    telemetry: `process.turn_off_telemetry`, run when the package is imported."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(_silero_file(name), options, providers=["CPUExecutionProvider"])


@lru_cache(maxsize=1)
def _detector():
    """Silero's 16 kHz sequence export: a whole window of frames per call."""
    return _session("silero_vad_16k_sequence.onnx")


@lru_cache(maxsize=1)
def _call_detector():
    """Silero's streaming export, which also runs at 8 kHz: a batch of windows, one frame per call."""
    return _session("silero_vad.onnx")


def frame_probabilities(window: np.ndarray) -> np.ndarray:
    """Silero's speech probability for each 32 ms frame of `window` (a whole number of frames, 16 kHz),
    starting from a fresh state, as the streaming model would give them one frame at a time."""
    frames = window.reshape(-1, CHUNK).astype(np.float32, copy=False)
    context = np.zeros((len(frames), CONTEXT), np.float32)
    context[1:] = frames[:-1, -CONTEXT:]
    state = np.zeros((1, 1, STATE_SIZE), np.float32)
    (probabilities,) = _detector().run(["speech_probs"], {"input": np.concatenate([context, frames], 1), "h": state, "c": state})
    return probabilities.reshape(-1)


def call_frame_probabilities(windows: np.ndarray) -> np.ndarray:
    """Silero's 8 kHz speech probabilities for (windows, samples) of 8 kHz audio, frame by frame: (windows, frames)."""
    detector = _call_detector()
    state = np.zeros((2, len(windows), STATE_SIZE), np.float32)
    context = np.zeros((len(windows), CALL_CONTEXT), np.float32)
    rate = np.array(CALL_RATE, np.int64)
    probabilities = []
    for start in range(0, windows.shape[1] - CALL_CHUNK + 1, CALL_CHUNK):
        frame = windows[:, start : start + CALL_CHUNK]
        out, state = detector.run(None, {"input": np.concatenate([context, frame], 1), "state": state, "sr": rate})
        probabilities.append(out[:, 0])
        context = frame[:, -CALL_CONTEXT:]
    return np.stack(probabilities, 1)


def speech_probability(samples: np.ndarray) -> float | None:
    """How much 16 kHz `samples` sound like a voice to Silero VAD: the median frame's speech probability,
    over up to SEGMENTS windows spread over the clip, each heard as recorded and at a speaking level
    (the second and the 8 kHz model only when the first leaves it below MIN_SPEECH_PROBABILITY).

    None when the clip is too short to judge (under about 0.2 s).
    """
    chunks = min(CHUNKS_PER_SEGMENT, len(samples) // CHUNK)
    if chunks < MIN_CHUNKS:
        return None
    length = chunks * CHUNK
    starts = np.linspace(0, len(samples) - length, max(1, min(SEGMENTS, len(samples) // length))).astype(int)
    windows = np.stack([samples[s : s + length] for s in starts]).astype(np.float32)
    heard = np.stack([frame_probabilities(w) for w in windows])
    as_recorded = float(np.median(heard[:, WARM_UP_CHUNKS:]))
    if as_recorded >= MIN_SPEECH_PROBABILITY:
        return as_recorded  # a voice as recorded: no need to listen again
    gains = listening_gains(windows)
    heard = np.maximum(heard, np.stack([frame_probabilities(w * gains[1]) for w in windows]))
    probability = float(np.median(heard[:, WARM_UP_CHUNKS:]))
    if probability < MIN_SPEECH_PROBABILITY and is_narrowband(windows):
        narrow = soxr.resample(windows.T, SAMPLE_RATE, CALL_RATE).T.astype(np.float32)
        on_a_call = np.max([call_frame_probabilities(np.ascontiguousarray(narrow * gain)) for gain in gains], axis=0)
        probability = max(probability, float(np.median(on_a_call[:, WARM_UP_CHUNKS:])))
    return probability


def listening_gains(windows: np.ndarray) -> tuple[float, float]:
    """The speech is heard as recorded, and scaled to a speaking level: Silero misses quiet voices."""
    rms = float(np.sqrt(np.mean(windows.astype(np.float64) ** 2)))
    return 1.0, 10 ** (LISTENING_LEVEL_DBFS / 20) / max(rms, 1e-9)


def is_narrowband(windows: np.ndarray) -> bool:
    """Whether 16 kHz audio carries (almost) nothing above 4 kHz, as a phone call or an 8 kHz recording."""
    power = np.abs(np.fft.rfft(windows, axis=-1)) ** 2
    high = power[:, power.shape[1] // 2 :].sum()
    return bool(high < NARROWBAND_SHARE * max(power.sum(), 1e-20))


def require_speech(speech: np.ndarray, audio: np.ndarray) -> None:
    """Raise an AudioError when 16 kHz `speech` (what the VAD kept of `audio`) does not sound like a voice.

    When the kept speech does not sound like a voice, or is too short to judge, the whole `audio` is
    heard too, and the higher verdict counts: the VAD's cuts take a voice out of its flow (of 1,639
    Common Voice clips of real speakers, 9 were refused on what the VAD kept, 6 on the higher of the
    two; one scored 0.13 kept and 0.69 whole), while a DC offset leaves a tenth of a second of
    "speech" that is no voice at all, and sounds that are not speech stay so whole.
    """
    probability = speech_probability(speech)
    if probability is None or probability < MIN_SPEECH_PROBABILITY:
        whole = speech_probability(audio)
        probability = whole if probability is None else max(probability, whole or 0.0)
    if probability is not None and probability < MIN_SPEECH_PROBABILITY:
        raise AudioError(
            "No voice was heard: the clip sounds like a tone, noise or music, not speech "
            f"(a speech detector rated it {100 * probability:.0f}% like speech; speech rates "
            f"{100 * MIN_SPEECH_PROBABILITY:.0f}% or more). Use a clip of someone speaking."
        )
