"""The face networks of Wen, Singh & Raj, "Reconstructing faces from voices" (NeurIPS 2019).

voice embedding --Generator--> 64x64 RGB face
face --FaceEmbedder--> 64-d --Discriminator (real/fake, loss Ld) / IdentityClassifier (who, loss Lc)

`FaceCritic` runs one face-embedder pass for both heads; `GraderNetwork` is
the same embedder with an identity head, trained on real faces only, to
grade generated faces in evaluation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import FaceEmbedderConfig, GeneratorConfig, ModelConfig
from .generator import EmbeddingReading, FaceGenerator, one_size_only


class InputStandardiser(nn.Module):
    """Per-dimension mean and spread of the training voices, subtracted and divided out.

    See `GeneratorConfig.standardise_input`; an identity map when `enabled` is False.
    """

    def __init__(self, width: int, enabled: bool):
        super().__init__()
        self.enabled = enabled
        if enabled:
            self.register_buffer("input_mean", torch.zeros(width))
            self.register_buffer("input_std", torch.ones(width))

    @torch.no_grad()
    def fit(self, embeddings: torch.Tensor) -> None:
        self.input_mean.copy_(embeddings.mean(0))
        self.input_std.copy_(embeddings.std(0).clamp_min(1e-4))

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return (embedding - self.input_mean) / self.input_std if self.enabled else embedding


class Generator(FaceGenerator):
    """Embedding -> 64x64 RGB in [-1, 1]: six transposed convs (the last 1x1), ReLU between.

    `standardise_input` is off by default, as in the paper.
    """

    def __init__(self, config: GeneratorConfig = GeneratorConfig(), embedding_dim: int = 64):
        super().__init__()
        self.config = config
        c = config.channels
        layers: list[nn.Module] = [nn.ConvTranspose2d(embedding_dim, c[0], 4, 1, 0), nn.ReLU(inplace=True)]
        for cin, cout in zip(c[:-1], c[1:]):
            layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1), nn.ReLU(inplace=True)]
        layers += [nn.ConvTranspose2d(c[-1], config.image_channels, 1, 1, 0), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.standardise = InputStandardiser(embedding_dim, config.standardise_input)

    def draw(self, reading: EmbeddingReading, small: bool = False) -> torch.Tensor:
        one_size_only(self, small)
        return self.net(self.standardise(reading.embedding)[:, :, None, None])


class FaceEmbedder(nn.Module):
    """64x64 face -> 64-d vector, shared by the discriminator and the identity classifier."""

    def __init__(self, config: FaceEmbedderConfig = FaceEmbedderConfig()):
        super().__init__()
        self.config = config
        c, slope = config.channels, config.negative_slope
        layers: list[nn.Module] = [nn.Conv2d(config.image_channels, c[0], 1, 1, 0), nn.LeakyReLU(slope, inplace=True)]
        for cin, cout in zip(c[:-1], c[1:]):
            layers += [nn.Conv2d(cin, cout, 4, 2, 1), nn.LeakyReLU(slope, inplace=True)]
        layers += [nn.Conv2d(c[-1], config.embedding_dim, 4, 1, 0)]
        self.net = nn.Sequential(*layers)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return self.net(faces).flatten(1)


class Discriminator(nn.Module):
    """Face embedding -> one real/fake logit."""

    def __init__(self, embedding_dim: int = 64):
        super().__init__()
        self.linear = nn.Linear(embedding_dim, 1)

    def forward(self, face_embedding: torch.Tensor) -> torch.Tensor:
        return self.linear(F.relu(face_embedding)).squeeze(1)


class IdentityClassifier(nn.Module):
    """Face embedding -> logits over the training identities."""

    def __init__(self, embedding_dim: int, n_identities: int):
        super().__init__()
        self.linear = nn.Linear(embedding_dim, n_identities)

    def forward(self, face_embedding: torch.Tensor) -> torch.Tensor:
        return self.linear(F.relu(face_embedding))


class FaceCritic(nn.Module):
    """One face embedding pass, read by both heads: real/fake logit and identity logits."""

    def __init__(self, config: ModelConfig, n_identities: int):
        super().__init__()
        self.embedder = FaceEmbedder(config.face)
        self.discriminator = Discriminator(config.face.embedding_dim)
        self.classifier = IdentityClassifier(config.face.embedding_dim, n_identities)

    def forward(self, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.embedder(faces)
        return self.discriminator(embedding), self.classifier(embedding)


class GraderNetwork(nn.Module):
    """A face embedder with an identity head, trained on real faces only, to grade generated ones."""

    def __init__(self, config: FaceEmbedderConfig, n_identities: int):
        super().__init__()
        self.embedder = FaceEmbedder(config)
        self.classifier = IdentityClassifier(config.embedding_dim, n_identities)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embedder(faces))
