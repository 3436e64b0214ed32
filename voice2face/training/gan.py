"""Stage 'gan': Wen et al.'s objective, with two optional L1 pulls of ours.

The voice encoder is frozen; its embedding gets N(0, noise_std) noise and is
re-normalised; the generator makes a face; one face embedder feeds a
real/fake discriminator (Ld) and an identity classifier (Lc). Loss weights:
`adversarial_weight` and `identity_weight` (the paper's, 1 and 1),
`reconstruction_weight` (L1 to a real face of the voice's identity) and
`attribute_weight` (L1 to the mean face of the voice's attribute group).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from ..datasets.paired import CropCollate, EmbeddingFaceDataset, Identity, VoiceFaceDataset, load_face
from ..errors import Voice2FaceError
from ..models import FaceCritic, build_generator
from .config import TrainConfig
from .loop import Batches, Runtime, Stage, wrap
from .samples import sample_sheet
from .sources import check_cached_features, describe_data, embed_crops, frozen_voice_encoder, with_identities


class GanStage(Stage):
    kind = "voice-to-face"

    def __init__(self, config: TrainConfig, rt: Runtime, train_ids: list[Identity], test_ids: list[Identity]):
        self.encoder, config = frozen_voice_encoder(config)
        self.config = config = dataclasses.replace(config, model=with_identities(config.model, len(train_ids)))
        self.rt, self.train_ids = rt, train_ids
        self.encoder = self.encoder.to(rt.device)
        check_cached_features(config)
        self.generator = build_generator(config.model.generator, self.encoder.output_dim)
        self.critic = FaceCritic(config.model, len(train_ids))
        self.networks = {"voice_encoder": self.encoder, "generator": self.generator, "face_embedder": self.critic.embedder,
                         "discriminator": self.critic.discriminator, "classifier": self.critic.classifier}  # fmt: skip
        self.optimizers = {
            "opt_g": torch.optim.Adam(self.generator.parameters(), lr=config.lr, betas=config.betas),
            "opt_d": torch.optim.Adam(self.critic.parameters(), lr=config.lr, betas=config.betas),
        }
        self.trained_on = describe_data(config, train_ids, test_ids)
        self.g, self.c = wrap(self.generator, rt), wrap(self.critic, rt)
        self.precomputed = config.embedding_crops > 0
        if self.precomputed:
            voices = [(label, v) for label, ident in enumerate(train_ids) for v in ident.voices]
            embeddings, owners = embed_crops(self.encoder, [v for _, v in voices], config, rt.device, rt.main)
            self.dataset = EmbeddingFaceDataset(embeddings, [voices[o][0] for o in owners], train_ids)
            self.batches = Batches(self.dataset, config, rt, torch.utils.data.default_collate)
        else:
            dataset = VoiceFaceDataset(train_ids, config.front_end)
            self.batches = Batches(dataset, config, rt, CropCollate(config.crop_min, config.crop_max))
        self.attribute_faces = (
            attribute_group_faces(train_ids, config.attribute_columns).to(rt.device) if config.attribute_weight else None
        )
        self.sample_ids = test_ids or train_ids  # held-out voices when there are any

    def start(self, resumed: bool) -> None:
        if self.config.model.generator.standardise_input and not resumed:
            self.generator.standardise.fit(self.input_statistics_sample())

    @torch.no_grad()
    def input_statistics_sample(self, n_batches: int = 20) -> torch.Tensor:
        """Training voice embeddings to standardise the generator's input: all precomputed ones, or a few batches."""
        device = self.rt.device
        if self.precomputed:
            embeddings = self.dataset.embeddings.to(device)
        else:
            batches = [next(self.batches) for _ in range(n_batches)]
            embeddings = torch.cat([self.encoder(f.to(device), n.to(device)) for f, n, *_ in batches])
        if self.rt.world > 1:  # every process must start from the same statistics
            torch.distributed.broadcast(embeddings, src=0)
        return embeddings

    def step(self) -> dict[str, float]:
        batch = [t.to(self.rt.device) for t in next(self.batches)]
        if self.precomputed:
            embedding, real, labels = batch
        else:
            features, lengths, real, labels = batch
            with torch.no_grad():
                embedding = self.encoder(features, lengths)
        opt = self.optimizers
        return gan_step(self.g, self.c, opt["opt_g"], opt["opt_d"], embedding, real, labels, self.config, self.attribute_faces)

    def after_step(self, step: int, last: bool) -> None:
        if self.rt.main and (step % self.config.sample_every == 0 or last):
            sample_sheet(self.encoder, self.generator, self.sample_ids, Path(self.config.out) / "samples" / f"step_{step:06d}.png")

    def close(self) -> None:
        self.batches.close()


def with_noise(embedding: torch.Tensor, noise_std: float) -> torch.Tensor:
    """The paper's input to G: unit embedding + N(0, sigma) noise, normalised again."""
    return F.normalize(embedding + noise_std * torch.randn_like(embedding), dim=1)


def gan_step(
    generator, critic, opt_g, opt_d, voice_embedding, real, labels, config: TrainConfig, attribute_faces: torch.Tensor | None = None
) -> dict[str, float]:
    """One iteration: update the face embedder and both heads, then the generator.

    `attribute_faces[label]` is the mean face of identity `label`'s attribute
    group (see `attribute_group_faces`); needed when `attribute_weight` is set.

    When the generator ignores the critic (adversarial and identity weights 0),
    the critic is skipped altogether: it would cost two thirds of the step for nothing.
    """
    fake = generator(with_noise(voice_embedding, config.noise_std))
    loss_g = fake.new_zeros(())
    losses: dict[str, float] = {}
    if config.adversarial_weight or config.identity_weight:
        n = real.shape[0]
        ones, zeros = torch.ones(n, device=real.device), torch.zeros(n, device=real.device)  # float labels

        # critic: both real and fake faces through one face-embedder pass
        real_fake_logit, identity_logits = critic(torch.cat([real, fake.detach()]))
        loss_real = F.binary_cross_entropy_with_logits(real_fake_logit[:n], ones)
        loss_fake = F.binary_cross_entropy_with_logits(real_fake_logit[n:], zeros)
        loss_id = F.cross_entropy(identity_logits[:n], labels)  # the classifier learns on real faces only
        opt_d.zero_grad(set_to_none=True)
        (loss_real + loss_fake + loss_id).backward()
        opt_d.step()

        # generator: look real, and look like the voice's identity
        fake_logit, fake_identity = critic(fake)
        loss_g_adv = F.binary_cross_entropy_with_logits(fake_logit, ones)
        loss_g_id = F.cross_entropy(fake_identity, labels)
        loss_g = config.adversarial_weight * loss_g_adv + config.identity_weight * loss_g_id
        losses = {"d_real": loss_real.item(), "d_fake": loss_fake.item(), "c_real": loss_id.item(),
                  "g_adv": loss_g_adv.item(), "g_id": loss_g_id.item()}  # fmt: skip
    if config.reconstruction_weight:  # an addition to the paper: pull towards a face of the same identity
        loss_rec = F.l1_loss(fake, real)
        loss_g = loss_g + config.reconstruction_weight * loss_rec
        losses["g_rec"] = loss_rec.item()
    if config.attribute_weight:  # an addition to the paper: pull towards what the voice's attributes predict
        loss_attr = F.l1_loss(fake, attribute_faces[labels])
        loss_g = loss_g + config.attribute_weight * loss_attr
        losses["g_attr"] = loss_attr.item()
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    return losses


def attribute_group_faces(identities: list[Identity], columns: Sequence[str]) -> torch.Tensor:
    """Per identity, the mean (mirror-symmetric) real face of all identities sharing its `columns` values.

    Why: with synthetic pairs a voice cannot predict *which* face identity it was
    paired with, only its attributes. The L1 pull to one real face of the
    identity is then mostly noise (on the demo set, a view's L1 to the training
    median face is 0.342, to its gender's median 0.339, to its identity's 0.100),
    so the little the attributes explain drowns in it. This target is what the
    attributes do explain.
    """

    def group(identity: Identity) -> tuple[str | None, ...]:
        values = {"gender": identity.gender, **identity.extra}
        return tuple(values.get(c) or None for c in columns)

    keys = [group(i) for i in identities]
    if all(all(v is None for v in key) for key in keys):
        raise Voice2FaceError(f"attribute_weight needs metadata: no identity has any of the columns {', '.join(columns)}.")
    sums: dict[tuple, torch.Tensor] = {}
    counts: dict[tuple, int] = {}
    for key, identity in zip(keys, identities):
        for path in identity.faces:
            face = load_face(path)
            sums[key] = sums.get(key, 0) + face + face.flip(-1)
            counts[key] = counts.get(key, 0) + 2
    return torch.stack([sums[key] / counts[key] for key in keys])
