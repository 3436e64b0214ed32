"""Errors that carry a message meant for the person using voice2face.

Every problem with user input (audio, durations, checkpoints) is raised as a
subclass of `Voice2FaceError`, so the CLI and the app can show its text as is
instead of a traceback.
"""


class Voice2FaceError(ValueError):
    """A problem the user can fix; `str(err)` says what and how."""


class AudioError(Voice2FaceError):
    """The audio could not be read or holds no usable speech."""


class CheckpointError(Voice2FaceError):
    """A checkpoint directory is missing, damaged or does not fit the code."""
