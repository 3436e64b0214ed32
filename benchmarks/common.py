"""Helpers shared by the benchmark scripts: test speech, timing, memory."""

from __future__ import annotations

import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile

PASSAGE = (
    "It was a bright cold day in April, and the clocks were striking thirteen. "
    "Outside, even through the shut window pane, the world looked cold. "
    "Down in the street little eddies of wind were whirling dust and torn paper into spirals. "
)


def speech_clip(seconds: float, folder: Path | None = None) -> Path:
    """A wav of about `seconds` of espeak-ng speech (the passage repeated), at 22.05 kHz."""
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is needed: apt-get install espeak-ng")
    folder = folder or Path(tempfile.mkdtemp())
    one = folder / "passage.wav"
    subprocess.run(["espeak-ng", "-w", str(one), PASSAGE], check=True)
    data, rate = soundfile.read(one, dtype="float32")
    repeats = int(np.ceil(seconds * rate / len(data)))
    clip = np.tile(data, repeats)[: int(seconds * rate)]
    path = folder / f"speech_{seconds:g}s.wav"
    soundfile.write(path, clip, rate)
    return path


def median_seconds(fn: Callable[[], object], repeats: int = 7, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
