"""Where things are in the StyleGAN face space: fitted once by `voice2face face-space`, stored as buffers.

- `gender`: a unit direction; men's faces sit at `male_at` along it (from
  `centre`), women's at `female_at`.
- `age`: a unit direction orthogonal to gender, `years_per_unit` years per unit,
  `age_at_centre` years at the centre.
- `older`: a unit direction orthogonal to gender along which adults age, fitted
  on adults' faces only (the `age` direction's young end is children); the
  page's age slider moves a face along it. How many years a judge sees at each
  step along it (`older_steps`, `older_years`) is measured by moving faces and
  judging them: the response is not linear (faces age faster the further they go).
- `axes` (k, 512) and `spread` (k): the principal axes and standard deviations
  of the region where the generator draws faces the detector finds, with
  gender and age taken out. A point `centre + axes.T @ (spread * c)` with
  moderate |c| stays in that region.
- `skin` and `skin_reach`: a unit direction fitted on rendered faces' skin tone (ITA), and how far along
  it the page's slider goes; it moves the style of the synthesis network's fine layers only, so the
  face's shape stays.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .stylegan import STYLE_DIM

#: The steps along `older` (in style units) at which the judge's view of a face's age is measured.
OLDER_STEPS = (-2.0, -1.5, -1.0, -0.5, 0.0, 1.0, 2.0, 3.0)


class FaceSpaceDirections(nn.Module):
    def __init__(self, axes: int = 64, style_dim: int = STYLE_DIM):
        super().__init__()
        for name in ("w_mean", "centre", "gender", "age", "older", "skin"):
            self.register_buffer(name, torch.zeros(style_dim))
        self.register_buffer("axes", torch.zeros(axes, style_dim))
        self.register_buffer("spread", torch.ones(axes))
        for name in ("older_steps", "older_years"):
            self.register_buffer(name, torch.zeros(len(OLDER_STEPS)))
        for name in ("male_at", "female_at", "age_at_centre", "years_per_unit", "skin_reach"):
            self.register_buffer(name, torch.zeros(()))

    @classmethod
    def from_arrays(cls, **arrays: np.ndarray | float) -> "FaceSpaceDirections":
        """Directions from arrays by name; without `skin` and `skin_reach`, a face space with no skin-tone direction."""
        arrays = {"skin": np.zeros(len(arrays["centre"])), "skin_reach": 0.0, **arrays}
        directions = cls(axes=len(arrays["axes"]))
        directions.load_state_dict({k: torch.as_tensor(np.asarray(v), dtype=torch.float32) for k, v in arrays.items()})
        return directions

    def style(self, female: torch.Tensor, age: torch.Tensor, coordinates: torch.Tensor) -> torch.Tensor:
        """Styles (B, 512) for a probability of a woman's face (B), an age in years (B) and
        coordinates along the region's axes in units of its spread (B, k)."""
        along_gender = self.male_at + female * (self.female_at - self.male_at)
        along_age = (age - self.age_at_centre) / self.years_per_unit
        rest = (coordinates * self.spread[: coordinates.shape[1]]) @ self.axes[: coordinates.shape[1]]
        return self.centre + along_gender[:, None] * self.gender + along_age[:, None] * self.age + rest

    def with_skin_at(self, styles: torch.Tensor, coordinate: torch.Tensor) -> torch.Tensor:
        """`styles` (B, 512) moved along `skin` so that each lies `coordinate` (B) from the centre along it."""
        return styles + (coordinate - (styles - self.centre) @ self.skin)[:, None] * self.skin

    def lighter_by(self, share: torch.Tensor) -> torch.Tensor:
        """Offsets (B, 512) of the fine layers' style that make faces' skin lighter by `share` (B) of the slider's
        reach (-1: darkest, 1: lightest)."""
        return (share.clamp(-1, 1) * self.skin_reach)[:, None] * self.skin

    def older_by(self, years: torch.Tensor) -> torch.Tensor:
        """Offsets (B, 512) that make faces `years` (B) older as a judge sees them (negative: younger),
        interpolated in the measured table and held at its ends."""
        knots, steps = self.older_years, self.older_steps
        years = years.clamp(knots[0], knots[-1])
        right = torch.searchsorted(knots, years.contiguous()).clamp(1, len(knots) - 1)
        left = right - 1
        share = (years - knots[left]) / (knots[right] - knots[left]).clamp_min(1e-6)
        return (steps[left] + share * (steps[right] - steps[left]))[:, None] * self.older


def random_people(count: int, axes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(female, age, coordinates) of `count` random adults of a face space: any gender, ages 25-60, identity
    N(0, I) on each of its `axes` person axes. What fitting the face space renders, and what `evaluate`
    measures the faces for voices against."""
    rng = torch.Generator().manual_seed(seed)
    return ((torch.rand(count, generator=rng) < 0.5).float(), 25 + 35 * torch.rand(count, generator=rng),
            torch.randn(count, axes, generator=rng))  # fmt: skip
