"""What the pipeline and training ask of every face generator: read a voice, draw its face.

A generator reads each voice embedding into a `Reading` (the numbers that place its face) and draws
faces from readings. The StyleGAN map's reading says gender and age in numbers (`VoiceReading`, which
the page shows and its sliders change); the paper's generator and the DCGAN map draw straight from
the embedding (`EmbeddingReading`). Generators that can draw a quarter-size face cheaply say so in
`small_size`; those with a graph compiled for the CPU switch to it in `compile_for_cpu`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn


@dataclass(frozen=True)
class Reading:
    """What a generator took from each voice (rows) to draw its face."""

    #: Whether the reading says gender and age in numbers (`VoiceReading`): the page shows them, and sliders change them.
    describes_voice = False

    def row(self, i: int) -> "Reading":
        """The reading of voice `i` alone (a batch of one)."""
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError


@dataclass(frozen=True)
class EmbeddingReading(Reading):
    """The voice embedding itself: generators that draw straight from it read nothing more."""

    embedding: torch.Tensor  # (B, embedding_dim)

    def row(self, i: int) -> "EmbeddingReading":
        return EmbeddingReading(self.embedding[i : i + 1])

    def __len__(self) -> int:
        return len(self.embedding)


class FaceGenerator(nn.Module):
    """Voice embeddings in, faces in [-1, 1] out, through a reading."""

    def read(self, embedding: torch.Tensor) -> Reading:
        return EmbeddingReading(embedding)

    def draw(self, reading: Reading, small: bool = False) -> torch.Tensor:
        """(B, 3, S, S) faces for readings; with `small`, (B, 3, small_size, small_size)."""
        raise NotImplementedError

    def forward(self, embedding: torch.Tensor, small: bool = False) -> torch.Tensor:
        return self.draw(self.read(embedding), small)

    @property
    def small_size(self) -> int | None:
        """Side of the faces `draw(..., small=True)` gives (None: this generator draws one size only)."""
        return None

    @property
    def has_skin_tone(self) -> bool:
        """Whether `VoiceReading.changed(..., lighter)` moves its faces' skin tone (a face space with that direction)."""
        return False

    #: Whether it has a graph to compile for the CPU (`compile_for_cpu`).
    has_cpu_graph = False

    def compile_for_cpu(self, cache_dir: str | Path | None = None) -> bool:
        """Draw through a graph compiled for the CPU from now on, kept in `cache_dir`; False, and nothing
        changed, for a generator that has none."""
        return False

    def release_full_size(self) -> None:
        """Let the compiled full-size graph go, where it can be read back (after a download); nothing otherwise."""


def one_size_only(generator: FaceGenerator, small: bool) -> None:
    """Refuse `small` for a generator without a small head."""
    if small:
        raise ValueError(f"{type(generator).__name__} draws one size only")
