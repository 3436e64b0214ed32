"""What stages read: the frozen voice encoder, precomputed voice embeddings, and how data is described."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import torch
from tqdm import tqdm

from ..audio.front_end import pad_features
from ..checkpoint import load_network, read_info, require_kind
from ..datasets.paired import Identity, cached_front_end, voice_features
from ..errors import Voice2FaceError
from ..models import ModelConfig, VoiceEncoder
from ..paths import voice_encoder_checkpoint
from .config import TrainConfig


def describe_data(config: TrainConfig, train: list[Identity], test: list[Identity]) -> str:
    return config.trained_on or (
        f"{Path(config.data).name} ({config.layout} layout): {len(train)} training identities, "
        f"{len(test)} held out by the {Path(config.split).name!r} split"
    )


def frozen_voice_encoder(config: TrainConfig) -> tuple[VoiceEncoder, TrainConfig]:
    """The voice encoder named by `config.voice_encoder`, frozen, and the config completed with its
    front end and widths. A front end or voice model the user set that the encoder does not have is refused."""
    if not config.voice_encoder:
        raise Voice2FaceError(
            f"The {config.stage} stage needs a trained voice encoder: --set voice_encoder=<embedder run dir> or voice_encoder=ge2e-pretrained."
        )
    path = voice_encoder_checkpoint(config.voice_encoder)
    info = read_info(path)
    require_kind(path, info, "voice-encoder", "voice-to-face")
    encoder = load_network(path, "voice_encoder", info)
    for p in encoder.parameters():
        p.requires_grad_(False)
    for name, ours, theirs in (("front_end", config.front_end, info.front_end), ("model.voice", config.model.voice, info.model.voice)):
        if ours != theirs and any(key == name or key.startswith(name + ".") for key in config.explicit):
            raise Voice2FaceError(
                f"{name} was set, but the voice encoder {config.voice_encoder} fixes it ({theirs}); remove that setting."
            )
    model = dataclasses.replace(config.model, voice=info.model.voice)
    return encoder, dataclasses.replace(config, front_end=info.front_end, model=model)


def with_identities(model: ModelConfig, n: int) -> ModelConfig:
    return dataclasses.replace(model, n_identities=n)


@torch.no_grad()
def embed_crops(encoder: VoiceEncoder, voices: list[Path], config: TrainConfig, device: torch.device, show: bool) -> tuple[torch.Tensor, list[int]]:
    """Embed `embedding_crops` random crops (crop_min-crop_max frames) of every utterance once.

    With the encoder frozen, this is the same distribution of inputs the
    generator sees when crops are embedded every step, at a fraction of the
    cost. Returns the embeddings and, per row, the index of its utterance;
    an utterance without usable speech gets no rows.
    """
    embeddings, owners = [], []
    for index, voice in enumerate(tqdm(voices, desc="embedding voices", unit="clip", disable=not show)):
        try:
            features = voice_features(voice, encoder.front_end)
        except Voice2FaceError:
            continue
        crops = []
        for _ in range(config.embedding_crops):
            length = random.randint(config.crop_min, config.crop_max)
            start = random.randint(0, max(0, features.shape[1] - length))
            crops.append(features[:, start : start + length])
        batch, lengths = pad_features(crops)
        embeddings.append(encoder(batch.to(device), lengths.to(device)).cpu())
        owners += [index] * len(crops)
    if not embeddings:
        raise Voice2FaceError("No training clip holds usable speech.")
    return torch.cat(embeddings), owners


def check_cached_features(config: TrainConfig) -> None:
    """Refuse a feature cache built for another front end than the run's voice encoder reads."""
    cached = cached_front_end(config.data)
    if cached is not None and cached != config.front_end:
        differ = [f"{k}: cache {getattr(cached, k)}, encoder {getattr(config.front_end, k)}"
                  for k in vars(cached) if getattr(cached, k) != getattr(config.front_end, k)]  # fmt: skip
        raise Voice2FaceError(
            f"The feature cache {config.data} was built for another front end than this voice encoder reads "
            f"({'; '.join(differ[:3])}). Rebuild it for this encoder: python -m voice2face cache --data SOURCE "
            f"--out CACHE --voice-encoder {config.voice_encoder or 'RUN'}"
        )
