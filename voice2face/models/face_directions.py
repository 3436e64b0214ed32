"""Where things are in the StyleGAN face space: fitted once by `voice2face face-space`, stored as buffers.

- `gender`: a unit direction; men's faces sit at `male_at` along it (from
  `centre`), women's at `female_at`.
- `age`: a unit direction orthogonal to gender, `years_per_unit` years per unit,
  `age_at_centre` years at the centre.
- `axes` (k, 512) and `spread` (k): the principal axes and standard deviations
  of the region where the generator draws faces the detector finds, with
  gender and age taken out. A point `centre + axes.T @ (spread * c)` with
  moderate |c| stays in that region.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .stylegan import STYLE_DIM


class FaceSpaceDirections(nn.Module):
    def __init__(self, axes: int = 64, style_dim: int = STYLE_DIM):
        super().__init__()
        for name in ("w_mean", "centre", "gender", "age"):
            self.register_buffer(name, torch.zeros(style_dim))
        self.register_buffer("axes", torch.zeros(axes, style_dim))
        self.register_buffer("spread", torch.ones(axes))
        for name in ("male_at", "female_at", "age_at_centre", "years_per_unit"):
            self.register_buffer(name, torch.zeros(()))

    @classmethod
    def from_arrays(cls, **arrays: np.ndarray | float) -> "FaceSpaceDirections":
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
