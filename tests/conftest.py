"""Shared test material: speech made with espeak-ng (installed by .ci/run)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from voice2face.checkpoint import CheckpointInfo, save_checkpoint
from voice2face.models import Generator, ModelConfig, GeneratorConfig, build_voice_encoder

TEXT = (
    "The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore, "
    "and the shells she sells are surely sea shells. A journey of a thousand miles begins with a single step, "
    "so pack light and leave early."
)


def speak(path: Path, text: str = TEXT, voice: str = "en", pitch: int = 50, speed: int = 160) -> Path:
    """Write espeak-ng speech to `path` (22.05 kHz mono wav)."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is needed for the tests: apt-get install espeak-ng (.ci/run does this)")
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
    networks = {"voice_encoder": build_voice_encoder(config.voice, info.front_end), "generator": Generator(config.generator)}
    return save_checkpoint(path, info, networks)


@pytest.fixture(scope="session")
def random_checkpoint(tmp_path_factory) -> Path:
    return write_random_checkpoint(tmp_path_factory.mktemp("ckpt") / "random")
