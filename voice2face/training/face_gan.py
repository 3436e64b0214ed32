"""Stage 'face-gan': a decoder of real face photos, z ~ N(0, I) -> 64x64 face.

The decoder starts from the packaged DCGAN (`init_decoder=gan-face-generate`,
trained on DigiFace-1M renders, the same shape) and is fine-tuned on real,
aligned photos of adults (UTKFace, `min_age`) against a fresh DCGAN
discriminator, with the non-saturating GAN loss and random mirroring. Starting
from a face generator converges in minutes on 2 CPU cores where training from
scratch would take hours, and the renders' pose and framing carry over; the
photos teach skin, hair, light and real faces' variety.

    python -m voice2face train --stage face-gan --data UTKFACE_FOLDER --out runs/face-gan
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from ..datasets.labelled import load_photos, read_utkface, to_unit_range
from ..errors import Voice2FaceError
from ..images import image_grid, to_pil
from ..models import FaceDecoder, FaceDiscriminator, GeneratorConfig, packaged_decoder_state
from ..models.config import ModelConfig
from .config import TrainConfig
from .loop import Batches, Runtime, Stage, wrap

#: The decoder's shape: that of the packaged DCGAN it starts from.
DECODER_CONFIG = GeneratorConfig(backend="face-space", channels=(512, 256, 128, 64), latent_dim=100)


class FaceGanStage(Stage):
    kind = "face-decoder"

    def __init__(self, config: TrainConfig, rt: Runtime):
        self.config = config = face_space_config(config)
        self.rt = rt
        photos = read_utkface(config.data, config.min_age)
        if rt.main:
            print(f"face-gan: {len(photos)} photos aged {config.min_age}+ from {config.data}")
        self.decoder = FaceDecoder(DECODER_CONFIG.latent_dim, DECODER_CONFIG.channels)
        if config.init_decoder == "gan-face-generate":
            self.decoder.load_state_dict(packaged_decoder_state())
        elif config.init_decoder not in (None, "none"):
            raise Voice2FaceError(f"init_decoder must be 'gan-face-generate' or 'none', got {config.init_decoder!r}.")
        self.discriminator = FaceDiscriminator()
        self.networks = {"decoder": self.decoder, "face_discriminator": self.discriminator}
        self.optimizers = {
            "opt_g": torch.optim.Adam(self.decoder.parameters(), lr=config.lr, betas=config.betas),
            "opt_d": torch.optim.Adam(self.discriminator.parameters(), lr=config.lr, betas=config.betas),
        }
        women = sum(p.gender == "f" for p in photos)
        self.trained_on = config.trained_on or (
            f"{len(photos)} real face photos ({women} women, {len(photos) - women} men, aged {config.min_age}+) "
            f"from {Path(config.data).name} (UTKFace: non-commercial research licence)"
            + (", starting from the gan-face-generate DCGAN (trained on DigiFace-1M renders)" if config.init_decoder == "gan-face-generate" else "")
        )
        self.g, self.d = wrap(self.decoder, rt), wrap(self.discriminator, rt)
        self.batches = Batches(TensorDataset(load_photos(photos)), config, rt)
        self.fixed_z = torch.randn(16, DECODER_CONFIG.latent_dim, generator=torch.Generator().manual_seed(0)).to(rt.device)

    def step(self) -> dict[str, float]:
        (pixels,) = next(self.batches)
        real = mirror_some(to_unit_range(pixels.to(self.rt.device)))
        z = torch.randn(real.shape[0], DECODER_CONFIG.latent_dim, device=self.rt.device)
        fake = self.g(z)
        opt_g, opt_d = self.optimizers["opt_g"], self.optimizers["opt_d"]

        real_logit, fake_logit = self.d(real), self.d(fake.detach())
        loss_d = F.softplus(-real_logit).mean() + F.softplus(fake_logit).mean()  # -log D(x) - log(1 - D(G(z)))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()

        loss_g = F.softplus(-self.d(fake)).mean()  # non-saturating: -log D(G(z))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        return {"d": loss_d.item(), "g": loss_g.item(), "d_real": torch.sigmoid(real_logit).mean().item()}

    def after_step(self, step: int, last: bool) -> None:
        if self.rt.main and (step % self.config.sample_every == 0 or last):
            self.decoder.eval()
            with torch.no_grad():
                faces = to_pil(self.decoder(self.fixed_z))
            self.decoder.train()
            path = Path(self.config.out) / "samples" / f"step_{step:06d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            image_grid(faces, columns=8).save(path)

    def close(self) -> None:
        self.batches.close()


def face_space_config(config: TrainConfig) -> TrainConfig:
    """The run's config with the decoder's shape as its generator (what a face-space checkpoint records)."""
    import dataclasses

    return dataclasses.replace(config, model=ModelConfig(generator=DECODER_CONFIG))


def mirror_some(faces: torch.Tensor) -> torch.Tensor:
    """Each face mirrored with probability 1/2: a mirrored photo is as real as the original."""
    flip = torch.rand(faces.shape[0], device=faces.device) < 0.5
    return torch.where(flip[:, None, None, None], faces.flip(-1), faces)
