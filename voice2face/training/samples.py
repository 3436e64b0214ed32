"""Sample sheets: fixed held-out voices drawn as faces, to look at during and after training."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..datasets.paired import Identity, load_face, voice_features
from ..images import image_grid, to_pil
from ..models import VoiceEncoder


@torch.no_grad()
def sample_sheet(encoder: VoiceEncoder, generator: nn.Module, identities: list[Identity], path: Path, n: int = 8) -> None:
    """The first voice of each of `n` identities -> faces (top row), their real faces (bottom row)."""
    chosen = identities[:n]
    if not chosen:
        return
    device = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    embeddings = torch.cat([encoder(voice_features(i.voices[0], encoder.front_end)[None].to(device)) for i in chosen])
    fakes = to_pil(generator(embeddings))
    generator.train(was_training)
    reals = to_pil(torch.stack([load_face(i.faces[0]) for i in chosen]))
    path.parent.mkdir(parents=True, exist_ok=True)
    image_grid(fakes + reals, columns=len(chosen)).save(path)
