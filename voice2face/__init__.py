"""voice2face: draw a face from a voice (Wen, Singh & Raj, NeurIPS 2019)."""

__version__ = "0.1.0"

from .errors import AudioError, CheckpointError, Voice2FaceError  # noqa: E402
from .pipeline import DEFAULT_CHECKPOINT, FacesResult, Voice2Face  # noqa: E402

__all__ = ["Voice2Face", "FacesResult", "DEFAULT_CHECKPOINT", "Voice2FaceError", "AudioError", "CheckpointError"]
