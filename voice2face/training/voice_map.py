"""Stage 'voice-map': voices mapped into the face space of a decoder trained on real photos.

    python -m voice2face train --stage voice-map --data VOICES --split TEST_LIST --real-voices EMODB \
        --set voice_encoder=ge2e-pretrained decoder=runs/face-gan attribute_net=runs/face-attributes

A mapping network takes the frozen voice encoder's embedding to the latent of
the frozen face decoder (`face-gan`); every face is therefore one the decoder
draws from its photo-like space. No voice here has a face of its own, so
identity cannot be learned: what is learned is what the voice tells (gender,
roughly age), and the map is kept from collapsing so that each speaker gets a
face of their own, fixed but arbitrary. The loss, per batch of
`speakers_per_batch` speakers x `CLIPS_PER_SPEAKER` clip embeddings:

- attribute (`attribute_weight`): the frozen attribute net (`face-attributes`)
  must read the voice's gender from the face (cross-entropy), and an age in
  the voice's age range (hinge);
- diversity (`diversity_weight`): the speakers' distances to each other in
  the latent keep the proportions of their voice embeddings' distances;
- consistency (`consistency_weight`): one speaker's clips land close together
  compared with the distances between speakers;
- prior (`prior_weight`): latents stay distributed like the decoder's
  N(0, I), where its faces look like photos;
- adversarial (`adversarial_weight`, the paper's Ld; default 0 here): the
  face-gan's discriminator, frozen, must take the faces for photos.

Voices: synthetic speakers from `data` (generic layout, meta.csv with gender
and age_band; the `split` list held out) and real speakers from an EmoDB
folder (`real_voices`, `real_holdout` held out). Real speakers are few, so
each batch draws `real_share` of its speakers from them.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..checkpoint import load_network, read_info, require_kind
from ..datasets.labelled import AGE_BANDS, read_emodb
from ..datasets.paired import load_identities, split_identities, voice_features
from ..errors import Voice2FaceError
from ..images import image_grid, to_pil
from ..models import FaceSpaceGenerator
from .config import TrainConfig
from .face_attributes import AGE_SCALE
from .face_gan import DECODER_CONFIG
from .loop import Runtime, Stage, wrap
from .sources import embed_crops, frozen_voice_encoder

CLIPS_PER_SPEAKER = 4
#: Real speakers' faces are asked to look their age +- this many years (synthetic ones: `AGE_BANDS`).
REAL_AGE_SLACK = 6.0


@dataclass(frozen=True)
class VoiceSpeaker:
    """A training speaker: its clips, gender, the face ages that fit its voice, and the recording set
    it comes from ("synthetic", "emodb", "pairs")."""

    name: str
    clips: tuple[Path, ...]
    female: bool
    age_range: tuple[float, float]
    source: str
    language: str = ""  # the language its clips are in, where known ("de" for EmoDB)

    @property
    def real(self) -> bool:
        return self.source != "synthetic"


def require_both_genders(speakers: list[VoiceSpeaker], stage: str) -> None:
    if not speakers or all(s.female for s in speakers) or not any(s.female for s in speakers):
        raise Voice2FaceError(f"The {stage} stage needs training speakers of both genders.")


def training_speakers(config: TrainConfig, check: bool = True) -> tuple[list[VoiceSpeaker], list[VoiceSpeaker]]:
    """(training speakers, held-out speakers) from the synthetic set and the real EmoDB folder; with `check`,
    training speakers of both genders are required of these two alone."""
    synthetic_train, synthetic_test = [], []
    if config.data:
        identities = load_identities(config.data, config.layout, config.meta, config.faces, need_faces=False)
        train_ids, test_ids = split_identities(identities, config.split)
        for ids, out in ((train_ids, synthetic_train), (test_ids, synthetic_test)):
            out += [VoiceSpeaker(i.name, tuple(i.voices), i.gender == "f", AGE_BANDS.get(i.extra.get("age_band", ""), (20.0, 50.0)), "synthetic")
                    for i in ids if i.gender in ("m", "f")]  # fmt: skip
    real_train, real_test = [], []
    if config.real_voices:
        for s in read_emodb(config.real_voices):
            speaker = VoiceSpeaker(f"emodb-{s.name}", s.clips, s.gender == "f", (s.age - REAL_AGE_SLACK, s.age + REAL_AGE_SLACK), "emodb", "de")
            (real_test if s.name in config.real_holdout else real_train).append(speaker)
    train = synthetic_train + real_train
    if check:
        require_both_genders(train, "voice-map (--data and/or --real-voices)")
    return train, real_test + synthetic_test


class VoiceMapStage(Stage):
    kind = "voice-to-face"

    def __init__(self, config: TrainConfig, rt: Runtime):
        self.encoder, config = frozen_voice_encoder(config)
        for name, path in (("decoder", config.decoder), ("attribute_net", config.attribute_net)):
            if not path:
                raise Voice2FaceError(f"The voice-map stage needs --set {name}=<run dir> (see REPRODUCE.md).")
        if config.attribute_weight == 0 and rt.main:  # the paper's GAN defaults leave it 0: easy to forget here
            print("warning: attribute_weight is 0, so the faces are not steered to the voice's gender or age (set attribute_weight=1)")
        if config.embedding_crops < 1:
            raise Voice2FaceError("The voice-map stage embeds voice crops once, up front: set embedding_crops (e.g. 4).")
        decoder_info = read_info(config.decoder)
        require_kind(config.decoder, decoder_info, "face-decoder")
        require_kind(config.attribute_net, read_info(config.attribute_net), "face-attributes")
        generator_config = dataclasses.replace(config.model.generator, backend="face-space", channels=DECODER_CONFIG.channels,
                                               latent_dim=DECODER_CONFIG.latent_dim, standardise_input=True)  # fmt: skip
        self.config = config = dataclasses.replace(config, model=dataclasses.replace(config.model, generator=generator_config))
        self.rt = rt
        self.speakers, self.held_out = training_speakers(config)
        self.generator = FaceSpaceGenerator(generator_config, self.encoder.output_dim)
        self.generator.decoder.load_state_dict(load_network(config.decoder, "decoder", decoder_info).state_dict())
        self.generator.decoder.requires_grad_(False)
        self.attributes = load_network(config.attribute_net, "face_attributes").requires_grad_(False).to(rt.device)
        self.critic = (
            load_network(config.decoder, "face_discriminator", decoder_info).requires_grad_(False).to(rt.device)
            if config.adversarial_weight else None
        )
        self.networks = {"voice_encoder": self.encoder, "generator": self.generator}
        self.optimizers = {"optimizer": torch.optim.Adam(self.generator.mapping.parameters(), lr=config.lr, betas=config.betas)}
        n_real = sum(s.real for s in self.speakers)
        self.trained_on = config.trained_on or (
            f"voices of {len(self.speakers) - n_real} synthetic (espeak-ng) and {n_real} real (EmoDB) speakers, mapped into "
            f"the face space of a face decoder trained on {decoder_info.trained_on}; voices and faces paired by gender "
            "and age, not by identity"
        )
        self.encoder = self.encoder.to(rt.device)
        clips = [(k, clip) for k, s in enumerate(self.speakers) for clip in s.clips]
        embeddings, owners = embed_crops(self.encoder, [c for _, c in clips], config, rt.device, rt.main)
        self.embeddings = embeddings
        self.rows_of: list[list[int]] = [[] for _ in self.speakers]
        for row, owner in enumerate(owners):
            self.rows_of[clips[owner][0]].append(row)
        self.real_ids = [k for k, s in enumerate(self.speakers) if s.real and self.rows_of[k]]
        self.synthetic_ids = [k for k, s in enumerate(self.speakers) if not s.real and self.rows_of[k]]
        self.mapping = wrap(self.generator.mapping, rt)

    def start(self, resumed: bool) -> None:
        self.generator.to(self.rt.device)
        self.generator.decoder.eval()  # frozen: its batch norm uses the statistics it was trained with
        if not resumed:
            self.generator.standardise.fit(self.embeddings.to(self.rt.device))

    def batch(self) -> tuple[torch.Tensor, list[int]]:
        return speaker_batch(self, self.config)

    def step(self) -> dict[str, float]:
        embeddings, owners = self.batch()
        z = self.mapping(self.generator.standardise(embeddings))
        faces = self.generator.decoder(z)
        female_logit, age = self.attributes(faces)
        speakers = [self.speakers[k] for k in owners]
        device = self.rt.device
        female = torch.tensor([float(s.female) for s in speakers], device=device)
        low, high = (torch.tensor([s.age_range[i] / AGE_SCALE for s in speakers], device=device) for i in (0, 1))
        losses = {
            "gender": F.binary_cross_entropy_with_logits(female_logit, female),
            "age": (F.relu(low - age) + F.relu(age - high)).mean(),
            **geometry_losses(self.generator.standardise(embeddings), z, torch.tensor(owners, device=device)),
        }
        c = self.config
        total = (c.attribute_weight * (losses["gender"] + losses["age"]) + c.diversity_weight * losses["diversity"]
                 + c.consistency_weight * losses["consistency"] + c.prior_weight * losses["prior"])  # fmt: skip
        if self.critic is not None:
            losses["adversarial"] = F.softplus(-self.critic(faces)).mean()
            total = total + c.adversarial_weight * losses["adversarial"]
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
        image_grid(to_pil(self.generator(embeddings)), columns=columns).save(sample_path(self.config, step))

    def report(self, step: int) -> dict:
        return {"speakers": len(self.speakers), "real_speakers": len(self.real_ids), "held_out_speakers": [s.name for s in self.held_out]}


def sample_embeddings(stage) -> tuple[int, torch.Tensor]:
    """For a sample sheet: up to 8 held-out speakers (else training ones), two clips each, one above the
    other (the same face twice is the aim); the number of columns and the clips' embeddings."""
    shown = stage.held_out[:8] or stage.speakers[:8]
    clips = [s.clips[0] for s in shown] + [s.clips[-1] for s in shown]
    embeddings = torch.cat([stage.encoder(voice_features(c, stage.encoder.front_end)[None].to(stage.rt.device)) for c in clips])
    return len(shown), embeddings


def sample_path(config: TrainConfig, step: int) -> Path:
    path = Path(config.out) / "samples" / f"step_{step:06d}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def speaker_batch(stage, config: TrainConfig) -> tuple[torch.Tensor, list[int]]:
    """Clip embeddings of `speakers_per_batch` speakers, CLIPS_PER_SPEAKER each, and each row's speaker,
    from a stage's `embeddings`, `rows_of`, `real_ids` and `synthetic_ids` (voice-map and style-map)."""
    size = config.speakers_per_batch
    n_real = round(size * config.real_share) if stage.synthetic_ids else size
    # drawn with replacement: a real speaker drawn twice is one speaker with twice the clips
    if config.even_sources and stage.real_ids:
        # each recording set as often as any other: EmoDB's six actors, each in seven emotions, teach what
        # an emotion changes in a voice and must not drown among a thousand speakers of one clip or two
        by_source: dict[str, list[int]] = {}
        for k in stage.real_ids:
            by_source.setdefault(stage.speakers[k].source, []).append(k)
        groups = sorted(by_source.values())
        chosen = [random.choice(random.choice(groups)) for _ in range(n_real)]
    else:
        chosen = random.choices(stage.real_ids, k=n_real) if stage.real_ids else []
    chosen += random.sample(stage.synthetic_ids, min(size - len(chosen), len(stage.synthetic_ids)))
    rows, owners = [], []
    for k in chosen:
        rows += random.choices(stage.rows_of[k], k=CLIPS_PER_SPEAKER)
        owners += [k] * CLIPS_PER_SPEAKER
    return stage.embeddings[rows].to(stage.rt.device), owners


def geometry_losses(voices: torch.Tensor, z: torch.Tensor, owners: torch.Tensor) -> dict[str, torch.Tensor]:
    """Diversity, consistency and prior terms of a batch of (standardised) voice embeddings and their latents."""
    speakers, index = torch.unique(owners, return_inverse=True)
    counts = torch.bincount(index, minlength=len(speakers)).float()[:, None]
    voice_means = torch.zeros(len(speakers), voices.shape[1], device=z.device).index_add_(0, index, voices) / counts
    z_means = torch.zeros(len(speakers), z.shape[1], device=z.device).index_add_(0, index, z) / counts
    upper = torch.triu_indices(len(speakers), len(speakers), offset=1, device=z.device)
    d_voice = torch.cdist(voice_means, voice_means)[upper[0], upper[1]]
    d_latent = torch.cdist(z_means, z_means)[upper[0], upper[1]]
    diversity = (d_latent / d_latent.mean().clamp_min(1e-6) - d_voice / d_voice.mean().clamp_min(1e-6)).square().mean()
    within = (z - z_means[index]).square().sum(1).mean()
    consistency = within / d_latent.square().mean().clamp_min(1e-6)
    dim = z.shape[1]
    prior = z.mean(0).square().mean() + (z.var(0) - 1).square().mean() + (z.square().sum(1) / dim - 1).square().mean()
    return {"diversity": diversity, "consistency": consistency, "prior": prior}
