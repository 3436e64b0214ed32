"""How seconds are written: one rounding rule for the page, the API, the CLI and the strip.

Python's own rounding of 9.55 gives 9.6 in one place and 9.5 in another
(`round` rounds half to even, and 9.55 is stored as 9.5499...); a visitor
who sees both thinks one of them is wrong. Every figure of seconds shown
goes through `round_seconds`, which rounds half up at a tenth of a second.
"""

from __future__ import annotations

import math


def round_seconds(seconds: float) -> float:
    """`seconds` to the nearest 0.1 s, halves up (a tiny offset absorbs float error: 9.55 -> 9.6)."""
    return math.floor(seconds * 10 + 0.5 + 1e-9) / 10


def seconds_text(seconds: float) -> str:
    """'9.6 s': how every length of audio or speech is written."""
    return f"{round_seconds(seconds):.1f} s"
