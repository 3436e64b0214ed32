"""Helpers shared by the benchmark scripts: test speech, timing, memory."""

from __future__ import annotations

import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import soundfile

if TYPE_CHECKING:  # torch and the package are imported where used: bench_app's own process stays without them
    from voice2face import Voice2Face


PASSAGE = (
    "It was a bright cold day in April, and the clocks were striking thirteen. "
    "Outside, even through the shut window pane, the world looked cold. "
    "Down in the street little eddies of wind were whirling dust and torn paper into spirals. "
)


def speech_clip(seconds: float, folder: Path | None = None, voice: str = "en") -> Path:
    """A wav of about `seconds` of espeak-ng speech (the passage repeated), at 22.05 kHz."""
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is needed: apt-get install espeak-ng")
    folder = folder or Path(tempfile.mkdtemp())
    one = folder / "passage.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(one), PASSAGE], check=True)
    data, rate = soundfile.read(one, dtype="float32")
    repeats = int(np.ceil(seconds * rate / len(data)))
    clip = np.tile(data, repeats)[: int(seconds * rate)]
    path = folder / f"speech_{seconds:g}s.wav"
    soundfile.write(path, clip, rate)
    return path


def clips_of_new_lengths(clip: Path, count: int) -> list[Path]:
    """`count` copies of `clip`, each 23 ms shorter than the one before: as visitors' clips are, each of a length of its
    own (a compiled graph with a dynamic length prepares itself again for every length it has not seen)."""
    data, rate = soundfile.read(clip, dtype="float32")
    folder = Path(tempfile.mkdtemp())
    for k in range(1, count + 1):
        soundfile.write(folder / f"shorter_{k}.wav", data[: len(data) - int(0.023 * k * rate)], rate)
    return [folder / f"shorter_{k}.wav" for k in range(1, count + 1)]


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


VOICES = ["en+m1", "en+f2", "en+m3", "en+f4", "en-us+m2", "en-us+f3", "en+m4", "en+f1"]
SENTENCES = [
    "The early train leaves the station at seven, so we should pack tonight.",
    "A quiet river runs past the old mill, where children feed the ducks.",
    "Bright colours and loud music filled the hall during the festival.",
    "Please remember to water the plants and feed the cat while I am away.",
]


def paired_dataset(root: Path, identities: int = 16, utterances: int = 4) -> Path:
    """A generic-layout dataset of espeak-ng voices and random-pattern faces, for timing only."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for k in range(identities):
        name = f"Speaker{k:02d}"  # F-Z names: all training identities under the paper split
        (root / name / "voice").mkdir(parents=True, exist_ok=True)
        (root / name / "face").mkdir(exist_ok=True)
        for n in range(utterances):
            text = " ".join(SENTENCES[(n + j) % len(SENTENCES)] for j in range(2))
            subprocess.run(["espeak-ng", "-v", VOICES[k % len(VOICES)], "-p", str(20 + 5 * k % 70), "-w",
                            str(root / name / "voice" / f"{n}.wav"), text], check=True)  # fmt: skip
        for n in range(4):
            face = rng.integers(0, 255, size=(64, 64, 3), dtype=np.uint8)
            Image.fromarray(face).save(root / name / "face" / f"{n}.png")
    return root


def reference_seconds(repeats: int = 9) -> float:
    """A fixed yardstick for this machine's speed, timed beside each figure: six 3x3 convolutions of 64
    channels over 128x128, batch 1, on 2 threads (median). Figures given as multiples of it can be
    compared between runs on a machine whose speed drifts, and between machines."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        torch.manual_seed(0)
        stack = torch.nn.Sequential(*(torch.nn.Conv2d(64, 64, 3, padding=1) for _ in range(6))).eval()
        x = torch.randn(1, 64, 128, 128)
        with torch.inference_mode():
            return median_seconds(lambda: stack(x), repeats, warmup=2)
    finally:
        torch.set_num_threads(threads)


def served_with_faces_in(model: Voice2Face, precision: str) -> Voice2Face:
    """`model` served through OpenVINO with both face graphs computing in `precision`."""
    from voice2face.models import stylegan_openvino

    shipped = stylegan_openvino.GRAPH_PRECISION
    stylegan_openvino.GRAPH_PRECISION = dict.fromkeys(shipped, precision)
    try:
        model.serve_with_openvino()
    finally:
        stylegan_openvino.GRAPH_PRECISION = shipped
    return model
