"""Is there a voice in this clip? A second opinion after WebRTC VAD, from Silero VAD.

WebRTC VAD (which cuts the silence out) calls almost any steady sound speech:
a 440 Hz tone, white noise and a DC offset all pass it. A face drawn from a
tone means nothing, so before drawing we ask Silero VAD (MIT; its network
ships inside the `silero-vad` wheel, nothing is downloaded), a neural speech
detector, whether the kept audio sounds like a voice.

To stay cheap on long clips it listens to at most `SEGMENTS` windows of
0.38 s spread over the speech, all in one batch (about 11 ms on 2 cores).
On the 535 EmoDB clips at least 28% of the windows' frames read as speech
(1st percentile 47%); a 440 Hz tone, white noise, DC, a sweep, an
amplitude-modulated tone, chords and plucked strings all read 0%.
"""

from __future__ import annotations

import importlib.util
import threading
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from .errors import AudioError

SAMPLE_RATE = 16000
CHUNK = 512  # samples per Silero frame at 16 kHz (32 ms)
CHUNKS_PER_SEGMENT = 12  # 0.38 s windows
WARM_UP_CHUNKS = 2  # the recurrent state needs a couple of frames before its answers mean anything
SEGMENTS = 8
#: A clip holds speech when at least this share of the frames listened to does.
MIN_SPEECH_SHARE = 0.15
SPEECH_PROBABILITY = 0.5


@lru_cache(maxsize=1)
def _detector() -> tuple[torch.nn.Module, threading.Lock]:
    # Found, not imported: importing the silero_vad package calls torch.set_num_threads(1) for the
    # whole process, which halved the speed of every network after it.
    spec = importlib.util.find_spec("silero_vad")
    weights = Path(spec.origin).parent / "data" / "silero_vad.jit"
    with warnings.catch_warnings():  # Silero ships TorchScript, which torch 2.13 marks deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        model = torch.jit.load(str(weights), map_location="cpu").eval()
    return model, threading.Lock()  # the model keeps state between calls: one caller at a time


def speech_share(samples: np.ndarray) -> float | None:
    """The share of sampled 32 ms frames of 16 kHz `samples` that Silero VAD hears as speech.

    None when the clip is too short to judge (under about 0.2 s).
    """
    chunks = min(CHUNKS_PER_SEGMENT, len(samples) // CHUNK)
    if chunks < WARM_UP_CHUNKS + 4:
        return None
    length = chunks * CHUNK
    starts = np.linspace(0, len(samples) - length, max(1, min(SEGMENTS, len(samples) // length))).astype(int)
    x = torch.from_numpy(np.stack([samples[s : s + length] for s in starts]).astype(np.float32))
    model, lock = _detector()
    with lock, torch.inference_mode():
        model.reset_states()
        probs = torch.stack([model(x[:, i * CHUNK : (i + 1) * CHUNK], SAMPLE_RATE).reshape(-1) for i in range(chunks)], 1)
    return float((probs[:, WARM_UP_CHUNKS:] > SPEECH_PROBABILITY).float().mean())


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
            f"(a speech detector heard a voice in {100 * share:.0f}% of it). Record or upload someone speaking."
        )
