"""Where the shipped checkpoints live, and the names that stand for them (no heavy imports: the CLI's --help uses it)."""

from __future__ import annotations

import os
from pathlib import Path

CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"
DEFAULT_CHECKPOINT = CHECKPOINTS / "default"
#: The pretrained GE2E encoder that ships with voice2face (weights from the resemblyzer wheel, Apache-2.0).
GE2E_CHECKPOINT = CHECKPOINTS / "ge2e"
#: Where the app keeps its compiled face networks between starts: $VOICE2FACE_CACHE, else ~/.cache/voice2face.
OPENVINO_CACHE = Path(os.environ.get("VOICE2FACE_CACHE") or Path.home() / ".cache" / "voice2face") / "openvino"


def voice_encoder_checkpoint(name: str) -> Path:
    """A voice encoder setting as a directory: 'ge2e-pretrained' is the shipped GE2E, anything else a path."""
    return GE2E_CHECKPOINT if name == "ge2e-pretrained" else Path(name)
