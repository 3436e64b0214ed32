"""voice2face: draw a face from a voice (Wen, Singh & Raj, NeurIPS 2019).

The names below load on first use, so `import voice2face.errors` or the
CLI's `--help` do not pull in torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .process import turn_off_telemetry
from .version import __version__

turn_off_telemetry()  # before any of our modules imports onnxruntime or OpenVINO

_EXPORTS = {
    "Voice2Face": "pipeline", "FacesResult": "pipeline", "DEFAULT_CHECKPOINT": "pipeline",
    "Voice2FaceError": "errors", "AudioError": "errors", "CheckpointError": "errors",
}  # fmt: skip

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
