"""Untrusted audio in: `load_audio` checks the source and decodes it in a worker process.

It sits above both the decoder (`decode.py`, which knows nothing of processes)
and the worker pool (`decoder_process.py`, which runs the decoder), so neither
imports the other's caller.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import AudioError
from ..limits import MAX_AUDIO_SECONDS
from .decode import Audio, AudioSource, decode_array, decode_file
from .decoder_process import decode_in_worker


def load_audio(
    source: AudioSource,
    sample_rate: int = 16000,
    max_seconds: float = MAX_AUDIO_SECONDS,
    isolate: bool = True,
) -> Audio:
    """Decode `source` to float32 mono at `sample_rate`, reading at most `max_seconds`.

    `source` is a file path, the bytes of a file, or a `(sample_rate, samples)`
    pair as `gr.Audio(type="numpy")` gives it (int16/int32/float, any channels).
    With `isolate` (the default) files are decoded in a worker process; turn it
    off only for your own files, where a few milliseconds per file matter.
    """
    if isinstance(source, tuple):
        audio = decode_array(source, sample_rate, max_seconds)
    elif isinstance(source, (bytes, bytearray, str, Path)):
        if isinstance(source, (str, Path)):
            _check_path(Path(source))
        elif len(source) == 0:
            raise AudioError("The audio file is empty (0 bytes).")
        if isolate:
            audio = decode_in_worker(source, sample_rate, max_seconds)
        else:
            audio = decode_file(source, sample_rate, max_seconds)
    else:
        raise AudioError(f"Cannot read audio from a {type(source).__name__}; give a path, bytes or (rate, samples).")
    if audio.samples.size == 0:
        raise AudioError("The audio holds no samples.")
    if not np.isfinite(audio.samples).all():
        bad = int((~np.isfinite(audio.samples)).sum())
        raise AudioError(f"The audio holds {bad} NaN or infinite samples; it is damaged and cannot be used.")
    return audio


def _check_path(path: Path) -> None:
    if not path.is_file():
        raise AudioError(f"No audio file named {path.name!r} was found.")  # the name only: a server's folders stay its own
    if path.stat().st_size == 0:
        raise AudioError(f"The audio file {path.name} is empty (0 bytes).")
