"""Shared test material: speech made with espeak-ng (installed by .ci/run; tests that need it skip without it)."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from voice2face.checkpoint import CheckpointInfo, build_network, save_checkpoint
from voice2face.models import GeneratorConfig, ModelConfig

#: Real speech beside the repository (../shared), on the team's machines and in CI; tests that read it skip without it.
EMODB = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "emodb"
LABELLED_VOICES = EMODB.parent / "voices_labelled"


def run_main(capsys, *args: str) -> subprocess.CompletedProcess:
    """`python -m voice2face ARGS` through its `main` in this process (no second start of Python and PyTorch):
    an exception it let out fails the test here as a traceback would print there."""
    from voice2face.cli import main

    returncode = main(list(args))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, returncode, out, err)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now, for a test's own server."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


TEXT = (
    "The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore, "
    "and the shells she sells are surely sea shells. A journey of a thousand miles begins with a single step, "
    "so pack light and leave early."
)


def speak(path: Path, text: str = TEXT, voice: str = "en", pitch: int = 50, speed: int = 160) -> Path:
    """Write espeak-ng speech to `path` (22.05 kHz mono wav)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed: apt-get install espeak-ng (.ci/run does)")
    subprocess.run(
        ["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "-w", str(path), text], check=True
    )
    return path


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory) -> Path:
    """About 12 s of English speech (11 s after silence removal)."""
    return speak(tmp_path_factory.mktemp("speech") / "speech.wav")


@pytest.fixture(scope="session")
def speech(speech_wav) -> tuple[np.ndarray, int]:
    data, rate = soundfile.read(speech_wav, dtype="float32")
    return data, rate


def write_random_checkpoint(path: Path, seed: int = 0) -> Path:
    """A small random checkpoint, independent of the one shipped in checkpoints/."""
    import torch

    torch.manual_seed(seed)
    config = ModelConfig(generator=GeneratorConfig(channels=(128, 64, 32, 16, 8)))
    info = CheckpointInfo(model=config)
    networks = {name: build_network(info, name) for name in info.networks}
    return save_checkpoint(path, info, networks)


@pytest.fixture(scope="session")
def random_checkpoint(tmp_path_factory) -> Path:
    return write_random_checkpoint(tmp_path_factory.mktemp("ckpt") / "random")


# (name, espeak voice, pitch, gender): A-E names are the paper split's test identities
TINY_IDENTITIES = [
    ("Alice", "en+f2", 70, "f"), ("Bruno", "en+m1", 35, "m"), ("Chloe", "en+f4", 80, "f"), ("Dmitri", "en+m3", 25, "m"),
    ("Fiona", "en+f3", 75, "f"), ("George", "en+m2", 30, "m"), ("Hannah", "en+f1", 65, "f"), ("Ivan", "en+m4", 40, "m"),
    ("Julia", "en+f5", 85, "f"), ("Karl", "en+m5", 20, "m"),
]  # fmt: skip
TINY_TEXTS = ["One two three four five six seven.", "The cat sat on the warm mat today.", "Please call me back after lunch."]


def write_tiny_dataset(root: Path) -> Path:
    """The generic layout: root/<name>/voice/*.wav, root/<name>/face/*.png, root/meta.csv."""
    from PIL import Image

    rng = np.random.default_rng(0)
    rows = ["identity,gender,age"]
    for k, (name, voice, pitch, gender) in enumerate(TINY_IDENTITIES):
        (root / name / "voice").mkdir(parents=True)
        (root / name / "face").mkdir()
        for n, text in enumerate(TINY_TEXTS):
            speak(root / name / "voice" / f"{n}.wav", text, voice, pitch)
        base = rng.uniform(0, 255, size=3)
        stripes = (np.arange(64) // (4 + k) % 2)[None, :, None] * 60
        for n in range(4):
            face = np.clip(base + stripes + rng.normal(0, 12, size=(64, 64, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(face).save(root / name / "face" / f"{n}.png")
        rows.append(f"{name},{gender},adult")
    (root / "meta.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny") / "data")


# --------------------------------------------------------------------------- tiny training runs

TINY_SETTINGS = ["steps=6", "batch_size=4", "crop_min=40", "crop_max=120", "log_every=1", "checkpoint_every=3", "sample_every=3"]


def tiny_config(stage: str, data: Path, out: Path, *extra: str):
    from voice2face.training import load_config

    return load_config("cpu-tiny", None, [f"stage={stage}", f"data={data}", f"out={out}", *TINY_SETTINGS, *extra])


def losses(run: Path) -> list[dict[str, float]]:
    import csv

    with open(run / "log.csv") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


@pytest.fixture(scope="session")
def embedder_run(tiny_dataset, tmp_path_factory) -> Path:
    from voice2face.training import train

    out = tmp_path_factory.mktemp("runs") / "embedder"
    train(tiny_config("embedder", tiny_dataset, out))
    return out


@pytest.fixture(scope="session")
def gan_run(tiny_dataset, embedder_run, tmp_path_factory) -> Path:
    from voice2face.training import train

    out = tmp_path_factory.mktemp("runs") / "gan"
    train(tiny_config("gan", tiny_dataset, out, f"voice_encoder={embedder_run}"))
    return out


@pytest.fixture(scope="session")
def grader_run(tiny_dataset, tmp_path_factory) -> Path:
    from voice2face.training import train

    out = tmp_path_factory.mktemp("runs") / "grader"
    train(tiny_config("grader", tiny_dataset, out, "steps=10"))
    return out
