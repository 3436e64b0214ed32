"""Is there a voice in this clip? A second opinion after WebRTC VAD, from Silero VAD.

WebRTC VAD (which cuts the silence out) calls almost any steady sound speech:
a 440 Hz tone, white noise and a DC offset all pass it. A face drawn from a
tone means nothing, so before drawing we ask Silero VAD (MIT; its network
ships inside the `silero-vad` wheel, nothing is downloaded), a neural speech
detector, whether the kept audio sounds like a voice.

To stay cheap on long clips it listens to at most `SEGMENTS` windows of
0.38 s spread over the speech, each in one ONNX Runtime call of Silero's
"sequence" export (about 12 ms in all on 2 cores, at the two levels below;
the TorchScript model, fed 32 ms at a time from Python, took 11-14 ms for
one level). It listens twice, to the speech as recorded and scaled to a
speaking level, and a voice heard at either counts: Silero hears little in a
quiet recording.

Measured on the 535 EmoDB clips (tests/test_hostile_input.py has the table):
none is refused as recorded, at -45 dBFS or with white noise at 10 dB SNR;
in telephone band (8 kHz, 300-3400 Hz) 2 are, at 5 dB SNR 6, at 0 dB about
30 (shouted or joyful clips, mostly); before this, 8, 4, 23, 78 and 15 at
-45 dBFS. A 440 Hz tone, white and pink noise,
DC, hum, a sweep, an amplitude-modulated tone, chords and plucked strings,
as they are, quiet, in telephone band or in noise, are all refused.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import AudioError

SAMPLE_RATE = 16000
CHUNK = 512  # samples per Silero frame at 16 kHz (32 ms)
CONTEXT = 64  # samples of the previous frame that Silero sees before each frame
CHUNKS_PER_SEGMENT = 12  # 0.38 s windows
WARM_UP_CHUNKS = 2  # the recurrent state needs a couple of frames before its answers mean anything
SEGMENTS = 8
STATE_SIZE = 128
#: A clip holds speech when at least this share of the frames listened to does, a frame counting
#: as speech from this probability (0.5 refused 8 of 535 EmoDB clips in telephone band, 0.3 two).
MIN_SPEECH_SHARE = 0.15
SPEECH_PROBABILITY = 0.3
#: The speech is also heard scaled to this RMS level: at -45 dBFS Silero heard too little in 15 of 535.
LISTENING_LEVEL_DBFS = -26.0


@lru_cache(maxsize=1)
def _detector():
    """Silero VAD's sequence export in ONNX Runtime: a whole window of frames per call.

    Found by path inside the wheel, not imported: importing the silero_vad package
    calls torch.set_num_threads(1) for the whole process. One thread: the model
    is small, and the networks after it get both cores. The session holds no
    state between calls (the recurrent state is passed in), so callers on
    several threads may share it.
    """
    import onnxruntime

    spec = importlib.util.find_spec("silero_vad")
    weights = Path(spec.origin).parent / "data" / "silero_vad_16k_sequence.onnx"
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(weights), options, providers=["CPUExecutionProvider"])


def frame_probabilities(window: np.ndarray) -> np.ndarray:
    """Silero's speech probability for each 32 ms frame of `window` (a whole number of frames, 16 kHz),
    starting from a fresh state, as the streaming model would give them one frame at a time."""
    frames = window.reshape(-1, CHUNK).astype(np.float32, copy=False)
    context = np.zeros((len(frames), CONTEXT), np.float32)
    context[1:] = frames[:-1, -CONTEXT:]
    state = np.zeros((1, 1, STATE_SIZE), np.float32)
    (probabilities,) = _detector().run(["speech_probs"], {"input": np.concatenate([context, frames], 1), "h": state, "c": state})
    return probabilities.reshape(-1)


def speech_share(samples: np.ndarray) -> float | None:
    """The share of sampled 32 ms frames of 16 kHz `samples` that Silero VAD hears as speech.

    None when the clip is too short to judge (under about 0.2 s).
    """
    chunks = min(CHUNKS_PER_SEGMENT, len(samples) // CHUNK)
    if chunks < WARM_UP_CHUNKS + 4:
        return None
    length = chunks * CHUNK
    starts = np.linspace(0, len(samples) - length, max(1, min(SEGMENTS, len(samples) // length))).astype(int)
    windows = [samples[s : s + length] for s in starts]
    shares = []
    for gain in listening_gains(windows):
        heard = np.concatenate([frame_probabilities(w * gain)[WARM_UP_CHUNKS:] for w in windows])
        shares.append(float((heard > SPEECH_PROBABILITY).mean()))
    return max(shares)


def listening_gains(windows: list[np.ndarray]) -> tuple[float, float]:
    """The speech is heard as recorded, and scaled to a speaking level: Silero misses quiet voices."""
    rms = float(np.sqrt(np.mean(np.concatenate(windows).astype(np.float64) ** 2)))
    return 1.0, 10 ** (LISTENING_LEVEL_DBFS / 20) / max(rms, 1e-9)


def require_speech(speech: np.ndarray, audio: np.ndarray) -> None:
    """Raise an AudioError when 16 kHz `speech` (what the VAD kept of `audio`) does not sound like a voice.

    When the VAD kept too little to judge, the whole `audio` is judged instead:
    a DC offset leaves a tenth of a second of "speech" that is no voice at all.
    """
    share = speech_share(speech)
    if share is None:
        share = speech_share(audio)
    if share is not None and share < MIN_SPEECH_SHARE:
        raise AudioError(
            "No voice was heard: the clip sounds like a tone, noise or music, not speech "
            f"(a speech detector heard a voice in {100 * share:.0f}% of it). Use a clip of someone speaking."
        )
