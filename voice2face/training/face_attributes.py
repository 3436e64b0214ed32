"""Stage 'face-attributes': gender and age of a 64x64 face, learned from labelled photos.

The voice-map stage steers faces through this net, so it must be
differentiable and ours; it is never used to grade (the judges in
`voice2face.judges` do that). A share `val_fraction` of the photos is held
out, and every save reports gender accuracy and age error on it.

    python -m voice2face train --stage face-attributes --data UTKFACE_FOLDER --out runs/face-attributes
"""

from __future__ import annotations

import random
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from ..datasets.labelled import FacePhoto, load_photos, read_utkface, to_unit_range
from ..models import FaceAttributeNet
from .config import TrainConfig
from .face_gan import face_space_config, mirror_some
from .loop import Batches, Runtime, Stage, wrap

#: Ages are regressed in decades, so the age and gender losses are of similar size.
AGE_SCALE = 10.0


class FaceAttributesStage(Stage):
    kind = "face-attributes"

    def __init__(self, config: TrainConfig, rt: Runtime):
        self.config = config = face_space_config(config)
        self.rt = rt
        photos = read_utkface(config.data, config.min_age)
        fit, self.val = split_photos(photos, config.val_fraction, config.seed)
        self.net = FaceAttributeNet()
        self.networks = {"face_attributes": self.net}
        self.optimizers = {"optimizer": torch.optim.Adam(self.net.parameters(), lr=config.lr, betas=config.betas)}
        self.trained_on = config.trained_on or (
            f"{len(fit)} labelled real face photos (aged {config.min_age}+) from {Path(config.data).name} "
            f"(UTKFace: non-commercial research licence); {len(self.val)} more held out for the reported accuracy"
        )
        self.ddp = wrap(self.net, rt)
        labels = torch.tensor([[float(p.gender == "f"), p.age / AGE_SCALE] for p in fit])
        self.batches = Batches(TensorDataset(load_photos(fit), labels), config, rt)
        self.val_pixels = load_photos(self.val)
        self.last: tuple[int, dict] | None = None

    def step(self) -> dict[str, float]:
        pixels, labels = (t.to(self.rt.device) for t in next(self.batches))
        female_logit, age = self.ddp(mirror_some(to_unit_range(pixels)))
        loss_gender = F.binary_cross_entropy_with_logits(female_logit, labels[:, 0])
        loss_age = F.smooth_l1_loss(age, labels[:, 1])
        opt = self.optimizers["optimizer"]
        opt.zero_grad(set_to_none=True)
        (loss_gender + loss_age).backward()
        opt.step()
        return {"gender": loss_gender.item(), "age": loss_age.item()}

    @torch.no_grad()
    def report(self, step: int) -> dict:
        if self.last is None or self.last[0] != step:
            self.net.eval()
            female_logit, age = self.net(to_unit_range(self.val_pixels).to(self.rt.device))
            self.net.train()
            female = torch.tensor([p.gender == "f" for p in self.val])
            years = torch.tensor([float(p.age) for p in self.val])
            figures = {
                "val_photos": len(self.val),
                "val_gender_accuracy": round(((female_logit.cpu() > 0) == female).float().mean().item(), 4),
                "val_age_mae_years": round((age.cpu() * AGE_SCALE - years).abs().mean().item(), 2),
            }
            self.last = (step, figures)
            print(f"step {step}: held-out photos: gender accuracy {figures['val_gender_accuracy']:.3f}, "
                  f"age error {figures['val_age_mae_years']:.1f} years")  # fmt: skip
        return self.last[1]

    def close(self) -> None:
        self.batches.close()


def split_photos(photos: list[FacePhoto], fraction: float, seed: int) -> tuple[list[FacePhoto], list[FacePhoto]]:
    """A seeded random share `fraction` of the photos held out, the rest to fit."""
    order = list(range(len(photos)))
    random.Random(seed).shuffle(order)
    n_val = int(len(photos) * fraction)
    return [photos[i] for i in order[n_val:]], [photos[i] for i in order[:n_val]]
