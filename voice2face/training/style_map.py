"""Stage 'style-map': voices mapped into the photographic StyleGAN face space (the default model).

    python -m voice2face train --stage style-map --data VOICES --split TEST_LIST --out runs/style-map \
        --set voice_encoder=ge2e-pretrained face_space=runs/face-space real_voices=EMODB real_pairs=PAIRS

The frozen voice encoder's embedding is read by the three linear heads of
`StyleVoiceMap` (gender, age, identity coordinates); the face space's fitted
directions and the frozen MobileStyleGAN synthesis network turn that into a
face. Nothing is rendered while training: the face space was surveyed once
(`voice2face face-space`), so the losses act on the numbers that place the face.

- gender (`attribute_weight`): cross-entropy with the speaker's gender; synthetic
  voices count `synthetic_gender_weight` times as much as real ones (the shipped
  model: 0, since espeak-ng's voices taught the head cues that mislead it on real
  speech: in leave-one-speaker-out checks on real speakers its errors fell when
  they were left out);
- age (`attribute_weight`): the age must fall in the speaker's range
  (synthetic: its age band; EmoDB: the actor's age +- 6; talking pairs: the
  age judged from their face +- 10, a noisy estimate);
- diversity, consistency, prior (as in voice-map): speakers' coordinates keep
  the proportions of their voices' distances, one speaker's clips land
  together, and coordinates stay distributed as N(0, I) in units of the
  region's spread, where the generator draws good faces;
- gender_offset, correlation (`prior_weight`): each gender of each recording
  set is centred, so the coordinates do not carry gender (its own direction
  does), and the coordinates are uncorrelated, so speakers do not differ along
  one direction only.

Voices: synthetic (espeak-ng) speakers from `data`, EmoDB (`real_voices`,
`real_holdout` kept out) and talking pairs (`real_pairs`, `pairs_holdout` kept
out). The real ones are few, so `real_share` of each batch's speakers are real.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import torch
import torch.nn.functional as F

from ..checkpoint import load_network, read_info, require_kind
from ..errors import Voice2FaceError
from ..images import image_grid, to_pil
from ..labelled import read_talking_pairs
from ..models import StyleVoiceMap
from ..models.style_map import AGE_CENTRE, YEARS_PER_UNIT
from .config import TrainConfig
from .loop import Runtime, Stage
from .sources import embed_crops, frozen_voice_encoder
from .voice_map import VoiceSpeaker, geometry_losses, sample_embeddings, sample_path, speaker_batch, training_speakers

#: Talking pairs' ages are judged from their faces, often 10-20 years off: a wide range.
PAIR_AGE_SLACK = 10.0
#: Clip embeddings are kept here in the run folder, so a resumed run or a re-run with other loss settings
#: (copy the file into the new run folder) skips the slowest part.
EMBEDDINGS_FILE = "voice_embeddings.pt"
#: Sample sheets are drawn at this size.
SAMPLE_SIZE = 128


def paired_speakers(config: TrainConfig) -> tuple[list[VoiceSpeaker], list[VoiceSpeaker]]:
    """(training, held-out) speakers of the talking-pairs folder, if one is set."""
    if not config.real_pairs:
        return [], []
    train, test = [], []
    for p in read_talking_pairs(config.real_pairs):
        speaker = VoiceSpeaker(f"pair-{p.name}", p.clips, p.gender == "f", (p.age - PAIR_AGE_SLACK, p.age + PAIR_AGE_SLACK), "pairs")
        (test if p.name in config.pairs_holdout else train).append(speaker)
    return train, test


def within_speaker_variance(values: torch.Tensor, owners: torch.Tensor) -> torch.Tensor:
    """Mean squared distance of each row's value from its speaker's mean value."""
    _, index = torch.unique(owners, return_inverse=True)
    counts = torch.bincount(index).float()
    means = torch.zeros(len(counts), device=values.device).index_add_(0, index, values) / counts
    return (values - means[index]).square().mean()


def weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean of `values` weighted by `weights`; 0 where every weight is 0 (a batch with nothing to learn from)."""
    return (values * weights).sum() / weights.sum().clamp_min(1e-6)


def offset_from_centre(values: torch.Tensor, groups: list[torch.Tensor]) -> torch.Tensor:
    """Mean over the non-empty groups (row masks) of the squared distance of the group's mean row from 0,
    per coordinate."""
    means = [values[g].mean(0) for g in groups if g.any()]
    return torch.stack(means).square().mean()


def off_diagonal_covariance(values: torch.Tensor) -> torch.Tensor:
    """Mean squared covariance between different coordinates (0 for uncorrelated coordinates)."""
    centred = values - values.mean(0)
    cov = centred.T @ centred / max(len(values) - 1, 1)
    return (cov - torch.diag(torch.diagonal(cov))).square().sum() / max(cov.shape[0] * (cov.shape[0] - 1), 1)


class StyleMapStage(Stage):
    kind = "voice-to-face"

    def __init__(self, config: TrainConfig, rt: Runtime):
        self.encoder, config = frozen_voice_encoder(config)
        if not config.face_space:
            raise Voice2FaceError("The style-map stage needs --set face_space=<dir made by 'python -m voice2face face-space'>.")
        if config.embedding_crops < 1:
            raise Voice2FaceError("The style-map stage embeds voice crops once, up front: set embedding_crops (e.g. 4).")
        space_info = read_info(config.face_space)
        require_kind(config.face_space, space_info, "face-space")
        generator_config = dataclasses.replace(config.model.generator, backend="stylegan", standardise_input=True,
                                               synthesis_widths=space_info.model.generator.synthesis_widths)  # fmt: skip
        self.config = config = dataclasses.replace(config, model=dataclasses.replace(config.model, generator=generator_config))
        self.rt = rt
        self.generator = StyleVoiceMap(generator_config, self.encoder.embedding_dim)
        self.generator.synthesis.load_state_dict(load_network(config.face_space, "synthesis", space_info).state_dict())
        directions = load_network(config.face_space, "face_space", space_info).state_dict()
        k = generator_config.identity_axes
        self.generator.directions.load_state_dict({n: v[:k] if n in ("axes", "spread") else v for n, v in directions.items()})
        self.generator.synthesis.requires_grad_(False)
        speakers, held_out = training_speakers(config)
        pairs, pairs_held_out = paired_speakers(config)
        self.speakers, self.held_out = speakers + pairs, held_out + pairs_held_out
        heads = [*self.generator.gender.parameters(), *self.generator.age.parameters(), *self.generator.identity.parameters()]
        self.networks = {"voice_encoder": self.encoder, "generator": self.generator}
        self.optimizers = {"optimizer": torch.optim.Adam(heads, lr=config.lr, betas=config.betas)}
        n_real = sum(s.real for s in self.speakers)
        self.trained_on = config.trained_on or (
            f"voices of {len(self.speakers) - n_real} synthetic (espeak-ng) and {n_real} real (EmoDB, talking pairs) speakers, "
            f"placed in the face space of {space_info.trained_on}; voices and faces paired by gender and age, not by identity"
        )
        self.encoder = self.encoder.to(rt.device)
        clips = [(k, clip) for k, s in enumerate(self.speakers) for clip in s.clips]
        self.embeddings, owners = self.embed(clips)
        # Embedding draws random crops; reading the file draws none. Batches start from the seed either
        # way, so a run that reuses the file trains the same model as the run that made it.
        random.seed(config.seed + rt.rank)
        self.rows_of: list[list[int]] = [[] for _ in self.speakers]
        for row, owner in enumerate(owners):
            self.rows_of[clips[owner][0]].append(row)
        self.real_ids = [k for k, s in enumerate(self.speakers) if s.real and self.rows_of[k]]
        self.synthetic_ids = [k for k, s in enumerate(self.speakers) if not s.real and self.rows_of[k]]

    def embed(self, clips: list[tuple[int, Path]]) -> tuple[torch.Tensor, list[int]]:
        """Every clip's crop embeddings (see `embed_crops`), from the run folder's file when it holds these clips."""
        names = [str(c) for _, c in clips]
        file = Path(self.config.out) / EMBEDDINGS_FILE
        if file.is_file():
            saved = torch.load(file, weights_only=True)
            if saved["clips"] == names and saved["crops"] == self.config.embedding_crops:
                return saved["embeddings"], saved["owners"]
        embeddings, owners = embed_crops(self.encoder, [c for _, c in clips], self.config, self.rt.device, self.rt.main)
        if self.rt.main:
            torch.save({"clips": names, "crops": self.config.embedding_crops, "embeddings": embeddings, "owners": owners}, file)
        return embeddings, owners

    def start(self, resumed: bool) -> None:
        self.generator.to(self.rt.device)
        if not resumed:
            self.generator.standardise.fit(self.embeddings.to(self.rt.device))

    def batch(self) -> tuple[torch.Tensor, list[int]]:
        return speaker_batch(self, self.config)

    def step(self) -> dict[str, float]:
        embeddings, owners = self.batch()
        g = self.generator
        x = g.standardise(embeddings)
        speakers = [self.speakers[k] for k in owners]
        device = self.rt.device
        female = torch.tensor([float(s.female) for s in speakers], device=device)
        gender_weight = torch.tensor([1.0 if s.real else self.config.synthetic_gender_weight for s in speakers], device=device)
        # ages in the head's units (decades around AGE_CENTRE), so the age loss has the scale of the others
        low, high = (torch.tensor([(s.age_range[i] - AGE_CENTRE) / YEARS_PER_UNIT for s in speakers], device=device) for i in (0, 1))
        age = g.age(x)[:, 0]
        identity = g.identity(x)
        owner = torch.tensor(owners, device=device)
        losses = {
            "gender": weighted_mean(F.binary_cross_entropy_with_logits(g.gender(x)[:, 0], female, reduction="none"), gender_weight),
            "age": (F.relu(low - age) + F.relu(age - high)).mean(),
            **geometry_losses(x, identity, owner),
            # one speaker's clips should read as one age: an age that wanders from clip to clip
            # changes the face more than anything else (measured on validation speakers)
            "age_consistency": within_speaker_variance(age, owner),
        }
        # The speakers of one recording set (EmoDB's studio, the talking pairs, espeak-ng) sit close together
        # in the voice space; held to N(0, I) within each set, they spread over the whole region instead
        # of sharing a corner of it (one face for all of EmoDB's men).
        sources = [s.source for s in speakers]
        parts = [torch.tensor([x == name for x in sources], device=device) for name in sorted(set(sources))]
        losses["prior"] = sum(geometry_losses(x[p], identity[p], owner[p])["prior"] for p in parts) / len(parts)
        # The prior holds each coordinate's variance, which speakers all on one line also meet: they then
        # differ along one direction only. Coordinates are kept uncorrelated too.
        losses["correlation"] = sum(off_diagonal_covariance(identity[p]) for p in parts) / len(parts)
        # Gender has its own direction. Left free, the identity coordinates carried it too (one offset for
        # every man, another for every woman), which moved validation speakers' faces 7-12 years off their
        # ages and drew more of them alike: each gender of each recording set is centred instead.
        losses["gender_offset"] = offset_from_centre(identity, [p & g for p in parts for g in (female > 0.5, female < 0.5)])
        c = self.config
        total = (c.attribute_weight * (losses["gender"] + losses["age"]) + c.diversity_weight * losses["diversity"]
                 + c.consistency_weight * (losses["consistency"] + losses["age_consistency"])
                 + c.prior_weight * (losses["prior"] + losses["gender_offset"] + losses["correlation"]))  # fmt: skip
        opt = self.optimizers["optimizer"]
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        return {k: v.item() for k, v in losses.items()}

    @torch.no_grad()
    def after_step(self, step: int, last: bool) -> None:
        if not (self.rt.main and (step % self.config.sample_every == 0 or last)):
            return
        columns, embeddings = sample_embeddings(self)
        faces = [f.resize((SAMPLE_SIZE, SAMPLE_SIZE)) for e in embeddings for f in to_pil(self.generator(e[None]))]
        image_grid(faces, columns=columns).save(sample_path(self.config, step))

    def report(self, step: int) -> dict:
        return {"speakers": len(self.speakers), "real_speakers": len(self.real_ids), "held_out_speakers": [s.name for s in self.held_out]}
