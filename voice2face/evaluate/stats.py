"""Intervals for every reported number: Wilson for rates, normal for means, bootstrap over speakers."""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a rate; sound near 0 and 1, unlike the normal one."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # min/max with p: at p = 0 or 1 rounding can leave the bound a hair inside the rate itself
    return (max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half)))


def rate(hits: np.ndarray) -> dict:
    hits = np.asarray(hits, dtype=bool)
    lo, hi = wilson_interval(int(hits.sum()), len(hits))
    return {"value": float(hits.mean()) if len(hits) else float("nan"), "ci95": [lo, hi], "n": int(len(hits))}


def mean_interval(values: np.ndarray, clip: tuple[float, float] = (-1.0, 1.0)) -> dict:
    """Mean and 95% normal interval; values clipped to `clip` (cosines: float error can pass 1)."""
    values = np.clip(np.asarray(values, dtype=float), *clip)
    half = 1.96 * values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return {"value": float(values.mean()), "ci95": [float(values.mean() - half), float(values.mean() + half)], "n": int(len(values))}


def bootstrap(statistic: Callable[[np.ndarray], float], n_units: int, seed: int = 0, resamples: int = 1000) -> dict:
    """`statistic(units)` on all `n_units` units (speakers), with a 95% percentile interval from
    resampling the units with replacement: pairs of faces share speakers, so they are not independent."""
    rng = np.random.default_rng(seed)
    value = statistic(np.arange(n_units))
    draws = [statistic(rng.integers(0, n_units, n_units)) for _ in range(resamples)]
    draws = [d for d in draws if np.isfinite(d)]
    lo, hi = (np.percentile(draws, [2.5, 97.5]) if draws else (float("nan"), float("nan")))
    return {"value": float(value), "ci95": [float(lo), float(hi)], "n": int(n_units)}


def correlation(x: Sequence[float], y: Sequence[float]) -> dict:
    """Pearson r with a 95% interval by Fisher's z."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = len(x)
    if n < 4 or x.std() == 0 or y.std() == 0:
        return {"value": float("nan"), "ci95": [float("nan"), float("nan")], "n": int(n)}
    r = float(np.corrcoef(x, y)[0, 1])
    z, half = math.atanh(max(min(r, 0.999999), -0.999999)), 1.96 / math.sqrt(n - 3)
    return {"value": r, "ci95": [math.tanh(z - half), math.tanh(z + half)], "n": int(n)}
