"""Lengths of speech: how they are asked for, where a clip is cut for each, and how seconds are written.

One place for every length the page, the API, the CLI and the library take or show:

- `parse_durations` turns what a user typed or ticked into seconds (None for the whole clip), once:
  its answer, a `Lengths`, passes through it again unchanged;
- `plan_cuts` and `distinct_cuts` say how many frames of speech stand for each length;
- `seconds_text` writes every figure of seconds the same way. Python's own rounding of 9.55 gives
  9.6 in one place and 9.5 in another (`round` rounds half to even, and 9.55 is stored as
  9.5499...); a visitor who sees both thinks one of them is wrong, so every figure goes through
  `round_seconds`, which rounds half up at a tenth of a second.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, Union

from .errors import Voice2FaceError
from .limits import MAX_DURATIONS, MIN_FACE_SPEECH_SECONDS

Durations = Sequence[Union[float, None]]
#: The lengths drawn when none are asked for: the first 1, 2, 4 and 8 s of speech and the whole clip.
DEFAULT_DURATIONS: tuple[float | None, ...] = (1.0, 2.0, 4.0, 8.0, None)
#: Words that stand for the whole clip, and how the page and the captions name it.
WHOLE_CLIP_WORDS = {"full", "whole", "all", "none"}
WHOLE_CLIP = "whole clip"
#: A length within this many seconds of all the speech is the whole clip: a 1.04 s clip drew two faces,
#: "1.0 s" and "whole clip, 1.0 s", that differed only by chance.
SAME_AS_WHOLE_SECONDS = 0.25


def round_seconds(seconds: float) -> float:
    """`seconds` to the nearest 0.1 s, halves up (a tiny offset absorbs float error: 9.55 -> 9.6)."""
    return math.floor(seconds * 10 + 0.5 + 1e-9) / 10


def seconds_text(seconds: float) -> str:
    """'9.6 s': how every length of audio or speech is written."""
    return f"{round_seconds(seconds):.1f} s"


def choice_label(duration: float | None) -> str:
    """A length as the page's check boxes name it: "4 s", "whole clip"."""
    return WHOLE_CLIP if duration is None else f"{duration:g} s"


def durations_text(durations: Durations) -> str:
    """Lengths as the command line takes them: "1 2 4 8 full"."""
    return " ".join("full" if d is None else f"{d:g}" for d in durations)


class Lengths(tuple):
    """Lengths already parsed (seconds, or None for the whole clip): `parse_durations` returns them as they are."""


def parse_durations(values: object) -> Lengths:
    """Turn user lengths (numbers, or 'full' for the whole clip) into seconds or None.

    One number or word counts as a list of one. Raises `Voice2FaceError` for
    zero, negative or non-numeric lengths, or more than MAX_DURATIONS. A length
    past the end of the speech is not an error: it stands for all of it.
    """
    if isinstance(values, Lengths):
        return values
    if values is None or isinstance(values, (str, bytes, int, float)):
        values = [values]
    elif not isinstance(values, Iterable):
        raise Voice2FaceError(f"Lengths must be a list of seconds or 'full', got a {type(values).__name__}.")
    values = list(values)
    if len(values) > MAX_DURATIONS:
        raise Voice2FaceError(f"Ask for at most {MAX_DURATIONS} lengths at once, not {len(values)}.")
    if not values:
        raise Voice2FaceError("Give at least one length.")
    return Lengths(parse_length(value) for value in values)


def parse_length(value: object) -> float | None:
    """One length: seconds of at least MIN_FACE_SPEECH_SECONDS, or None for a word that means the whole clip."""
    if value is None or (isinstance(value, str) and value.strip().lower() in WHOLE_CLIP_WORDS):
        return None
    if isinstance(value, bool):
        raise Voice2FaceError(f"Length {value!r} is not a number of seconds or 'full'.")
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise Voice2FaceError(f"Length {str(value)[:40]!r} is not a number of seconds or 'full'.") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise Voice2FaceError(f"Lengths must be positive numbers of seconds, got {str(value)[:40]!r}.")
    if seconds < MIN_FACE_SPEECH_SECONDS:
        raise Voice2FaceError(f"Lengths must be at least {MIN_FACE_SPEECH_SECONDS:g} s (a face needs that much speech), got {str(value)[:40]!r}.")
    return seconds


@dataclass(frozen=True)
class Cut:
    """The first `frames` frames of speech, standing for a requested duration."""

    requested: float | None  # seconds asked for; None = whole clip
    frames: int
    seconds: float  # seconds of speech the cut really holds
    capped: bool  # asked for more speech than the clip has: all of it was used

    @property
    def label(self) -> str:
        if self.requested is None:
            return f"{WHOLE_CLIP}, {seconds_text(self.seconds)} of speech"
        if self.capped:
            return f"asked {self.requested:g} s, clip has {seconds_text(self.seconds)} of speech"
        return f"first {seconds_text(self.seconds)} of speech"

    @property
    def short_label(self) -> str:
        """A caption that fits under a small thumbnail, worded as `label` is ("whole clip, 11.3 s")."""
        return f"{WHOLE_CLIP}, {seconds_text(self.seconds)}" if self.requested is None or self.capped else seconds_text(self.seconds)


class FrameClock(Protocol):
    """What cutting needs of a front end: its hop between frames (`audio.front_end.FrontEndConfig`)."""

    hop_ms: float


def plan_cuts(n_frames: int, durations: Durations, clock: FrameClock) -> list[Cut]:
    """Where to cut `n_frames` of speech for each duration (None = all of it)."""
    cuts = []
    for d in durations:
        if d is None:
            cuts.append(Cut(None, n_frames, n_frames * clock.hop_ms / 1000, False))
            continue
        wanted = max(1, round(min(d * 1000 / clock.hop_ms, n_frames + 1)))  # any length past the speech is all of it
        frames = min(wanted, n_frames)
        cuts.append(Cut(d, frames, frames * clock.hop_ms / 1000, wanted > n_frames))
    return cuts


def distinct_cuts(cuts: list[Cut], hop_ms: float = 10.0) -> list[Cut]:
    """One cut per distinct number of frames; where lengths past (or within SAME_AS_WHOLE_SECONDS of) the
    end of the speech meet the whole clip, the whole-clip cut stands for them all, else the longest of them does."""
    longest, all_seconds = max(c.frames for c in cuts), max(c.seconds for c in cuts)
    near = max(1, round(SAME_AS_WHOLE_SECONDS * 1000 / hop_ms))
    cuts = [dataclasses.replace(c, frames=longest, seconds=all_seconds) if longest - c.frames < near else c for c in cuts]
    by_frames: dict[int, Cut] = {}
    for cut in cuts:
        if cut.frames not in by_frames or cut.requested is None:
            by_frames[cut.frames] = cut
    return [c for c in cuts if by_frames[c.frames] is c]
