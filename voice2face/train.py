"""Training, read top to bottom: config, data, models, the loop; three stages.

    python -m voice2face train --stage embedder --data DATA --out runs/emb
    python -m voice2face train --stage gan --data DATA --out runs/gan --set voice_encoder=runs/emb
    python -m voice2face train --stage face-eval --data DATA --out runs/evaluator
    torchrun --nproc_per_node 4 -m voice2face train ...      # DistributedDataParallel

- embedder: the paper's VoiceEmbedder plus a linear speaker head, cross-entropy;
  reports speaker-ID top-1 on held-out utterances of the training speakers.
- gan: Wen et al.'s objective. The voice encoder is frozen; its embedding gets
  N(0, 0.05) noise and is re-normalised; the generator makes a face; one face
  embedder feeds a real/fake discriminator and an identity classifier.
- face-eval: a separate face embedder with an identity head, trained on the
  training identities' real faces, used only to grade generated faces.

Every stage writes checkpoints the pipeline loads, resumes from `<out>/`
after a kill, saves on Ctrl-C, and logs losses to `<out>/log.csv`.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler
from tqdm import tqdm

from .audio import FrontEndConfig, cmvn, pad_features
from .checkpoint import CheckpointInfo, _from_json, load_training_state, load_weights, read_info, save_checkpoint
from .data import CropCollate, Identity, VoiceFaceDataset, load_identities, load_face, split_identities, voice_features
from .errors import Voice2FaceError
from .images import image_grid, to_pil
from .models import (
    Discriminator,
    FaceEmbedder,
    GE2E_CONFIG,
    GE2E_FRONT_END,
    FaceEmbedderConfig,
    GE2EEncoder,
    Generator,
    GeneratorConfig,
    IdentityClassifier,
    ModelConfig,
    VoiceEncoder,
    VoiceEncoderConfig,
    build_voice_encoder,
    pretrained_ge2e_state,
)

STAGES = ("embedder", "gan", "face-eval")

# --------------------------------------------------------------------------- config


@dataclass
class TrainConfig:
    """Every knob of a run. Defaults are the paper's (batch 128, 50k iterations, Adam 2e-4, (0.5, 0.999))."""

    stage: str = "gan"
    data: str = ""  # dataset root (any layout of voice2face.data)
    layout: str = "auto"
    meta: str | None = None  # vox1_meta.csv for the voxceleb/processed layouts
    faces: str | None = None  # face folder for the voxceleb/processed layouts
    split: str = "paper"  # 'paper' (A-E test) or a file listing test identities
    out: str = "runs/voice2face"
    voice_encoder: str | None = None  # gan stage: embedder run dir, or 'ge2e-pretrained' (resemblyzer's weights)
    trained_on: str = ""  # what config.json says the model learned from; default: the data path
    seed: int = 0
    steps: int = 50_000
    batch_size: int = 128
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    crop_min: int = 300  # random voice crops of 300-800 frames (3-8 s)
    crop_max: int = 800
    noise_std: float = 0.05  # gan: noise on the unit voice embedding
    adversarial_weight: float = 1.0  # gan: weight of the generator's real/fake loss (paper: 1)
    identity_weight: float = 1.0  # gan: weight of the generator's identity loss (paper: 1)
    reconstruction_weight: float = 0.0  # gan: L1 of the fake face to a real face of the voice's identity (paper: 0)
    attribute_weight: float = 0.0  # gan: L1 of the fake face to the mean face of its attribute group (paper: 0)
    attribute_columns: tuple[str, ...] = ("gender",)  # gan: metadata columns that define the attribute groups
    embedding_crops: int = 0  # gan: >0 embeds this many random crops per utterance once, up front (frozen encoder)
    val_fraction: float = 0.1  # embedder: utterances per speaker held out for top-1
    num_workers: int = 2
    log_every: int = 50
    sample_every: int = 1000
    checkpoint_every: int = 1000
    device: str = "auto"
    model: ModelConfig = field(default_factory=ModelConfig)
    front_end: FrontEndConfig = field(default_factory=FrontEndConfig)


def preset(name: str) -> TrainConfig:
    """'paper': the paper's settings. 'cpu-tiny': narrow nets and small batches, to see losses move on 2 cores."""
    if name == "paper":
        return TrainConfig()
    if name == "cpu-tiny":
        model = ModelConfig(
            voice=VoiceEncoderConfig(channels=(64, 96, 128, 160)),
            generator=GeneratorConfig(channels=(256, 128, 64, 32, 16)),
            face=FaceEmbedderConfig(channels=(16, 32, 64, 128, 128)),
        )
        return TrainConfig(
            steps=300, batch_size=16, crop_min=100, crop_max=300, num_workers=0, log_every=10,
            sample_every=100, checkpoint_every=100, model=model,
        )  # fmt: skip
    raise Voice2FaceError(f"Unknown preset {name!r}; known: paper, cpu-tiny.")


def override(config: Any, key: str, value: Any) -> Any:
    """A copy of dataclass `config` with dotted `key` (e.g. 'model.generator.channels') set to `value`."""
    head, _, rest = key.partition(".")
    names = {f.name for f in dataclasses.fields(config)}
    if head not in names:
        raise Voice2FaceError(f"Unknown setting {key!r}; settings are: {', '.join(sorted(names))}.")
    if rest:
        return dataclasses.replace(config, **{head: override(getattr(config, head), rest, value)})
    current = getattr(config, head)
    if dataclasses.is_dataclass(current):
        value = _from_json(type(current), value)
    elif isinstance(current, tuple):
        value = (value,) if isinstance(value, str) else tuple(value)
    elif isinstance(current, str) and value is not None:
        value = str(value)
    elif isinstance(current, bool) or isinstance(current, (int, float)) and not isinstance(value, (int, float)):
        value = type(current)(value)
    return dataclasses.replace(config, **{head: value})


def parse_value(text: str) -> Any:
    """'300' -> 300, '[1,2]' -> [1, 2], 'runs/x' -> 'runs/x'."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def load_config(preset_name: str, config_file: str | None, settings: list[str]) -> TrainConfig:
    """A preset, then a JSON file of (nested) settings, then `key=value` overrides."""
    config = preset(preset_name)
    if config_file:
        for key, value in _flatten(json.loads(Path(config_file).read_text())):
            config = override(config, key, value)
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep:
            raise Voice2FaceError(f"--set takes key=value, got {item!r}.")
        config = override(config, key.strip(), parse_value(value))
    if config.stage not in STAGES:
        raise Voice2FaceError(f"stage must be one of {', '.join(STAGES)}, got {config.stage!r}.")
    if not (config.adversarial_weight or config.identity_weight or config.reconstruction_weight or config.attribute_weight):
        raise Voice2FaceError(
            "adversarial_weight, identity_weight, reconstruction_weight and attribute_weight are all 0: the generator would learn nothing."
        )
    return config


def _flatten(tree: dict, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


# --------------------------------------------------------------------------- processes and devices


@dataclass
class Runtime:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def start_runtime(device: str) -> Runtime:
    """One process, or one of `torchrun`'s: nccl on GPUs, gloo on CPUs."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if world == 1:
        return Runtime(device=torch.device("cuda" if use_cuda else "cpu"))
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(local)
    return Runtime(rank, world, torch.device(f"cuda:{local}" if use_cuda else "cpu"))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def wrap(module: nn.Module, rt: Runtime) -> nn.Module:
    module = module.to(rt.device)
    return DistributedDataParallel(module) if rt.world > 1 else module


def unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, DistributedDataParallel) else module


def endless_batches(dataset, config: TrainConfig, rt: Runtime, collate) -> Iterator:
    """Batches forever; each process sees its own shard (DistributedSampler) when distributed."""
    per_process = config.batch_size // rt.world
    if per_process < 1 or len(dataset) < config.batch_size:
        raise Voice2FaceError(
            f"The training set has {len(dataset)} items, fewer than one batch of {config.batch_size} "
            f"over {rt.world} process(es); lower batch_size."
        )
    if rt.world > 1:
        sampler = DistributedSampler(dataset, rt.world, rt.rank, shuffle=True, seed=config.seed, drop_last=True)
    else:
        sampler = RandomSampler(dataset)
    loader = DataLoader(
        dataset, batch_size=per_process, sampler=sampler, collate_fn=collate, drop_last=True,
        num_workers=config.num_workers, persistent_workers=config.num_workers > 0,
        worker_init_fn=_seed_worker,
    )  # fmt: skip
    epoch = 0
    while True:
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def _seed_worker(worker_id: int) -> None:
    random.seed(torch.initial_seed() % 2**32)


# --------------------------------------------------------------------------- logging and saving


class RunLog:
    """CSV of losses per logged step, appended across resumes."""

    def __init__(self, out: Path, enabled: bool):
        self.path, self.enabled, self.writer = out / "log.csv", enabled, None

    def write(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        row = {"step": step, "time": round(time.time(), 1), **{k: round(v, 5) for k, v in values.items()}}
        new = not self.path.exists()
        with open(self.path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)


def describe_data(config: TrainConfig, train: list[Identity], test: list[Identity]) -> str:
    return config.trained_on or (
        f"{config.data} ({config.layout} layout): {len(train)} training identities, "
        f"{len(test)} held out by the {config.split!r} split"
    )


def run_settings(config: TrainConfig) -> dict[str, Any]:
    """Every training knob except the model and front end (saved beside it), as JSON: how to rerun it."""
    skip = {"model", "front_end", "trained_on"}
    return {f.name: list(v) if isinstance(v := getattr(config, f.name), tuple) else v for f in dataclasses.fields(config) if f.name not in skip}


def save_run(config: TrainConfig, rt: Runtime, step: int, networks: dict[str, nn.Module], state: dict, extra: dict, trained_on: str) -> None:
    """Checkpoint `<out>/` (rank 0 only), in the format `Voice2Face.from_pretrained` reads."""
    if not rt.main:
        return
    info = CheckpointInfo(
        model=config.model,
        front_end=config.front_end,
        trained_on=trained_on,
        training={"stage": config.stage, "steps": step, "seed": config.seed, "world_size": rt.world,
                  "batch_size": config.batch_size, "data": config.data, "split": config.split, **extra,
                  "settings": run_settings(config)},
    )  # fmt: skip
    save_checkpoint(config.out, info, {k: unwrap(v) for k, v in networks.items()}, training_state={"step": step, **state})


def resume_state(config: TrainConfig, networks: dict[str, nn.Module]) -> dict | None:
    """If `<out>/` holds this stage's checkpoint, load its weights and return the optimiser state."""
    state = load_training_state(config.out)
    if state is None:
        return None
    info = read_info(config.out)
    if info.training.get("stage") != config.stage:
        raise Voice2FaceError(f"{config.out} holds a {info.training.get('stage')!r} run; use another --out.")
    for name, module in networks.items():
        load_weights(config.out, name, unwrap(module))
    return state


def replicas_in_sync(networks: dict[str, nn.Module], rt: Runtime) -> bool:
    """Do all processes hold the same weights? (DDP's promise, checked at the end of a run.)"""
    if rt.world == 1:
        return True
    flat = torch.cat([p.detach().flatten().double() for m in networks.values() for p in unwrap(m).parameters()])
    gathered = [torch.zeros_like(flat) for _ in range(rt.world)]
    dist.all_gather(gathered, flat)
    return all(torch.equal(gathered[0], g) for g in gathered[1:])


def finish(networks: dict[str, nn.Module], rt: Runtime, save) -> dict:
    """After the last step: with several processes, check and record that their weights agree."""
    if rt.world == 1:
        return {}
    in_sync = replicas_in_sync(networks, rt)
    save(replicas_in_sync=in_sync)
    return {"replicas_in_sync": in_sync}


def run_steps(config: TrainConfig, rt: Runtime, step: int, train_step, save, after_step=None) -> int:
    """The loop every stage shares: steps from `step` to `config.steps` with a tqdm bar, the CSV
    log, periodic `save(step)`, and a save on Ctrl-C. `train_step()` returns the step's losses."""
    log = RunLog(Path(config.out), rt.main)
    bar = tqdm(total=config.steps, initial=step, disable=not rt.main, desc=config.stage, unit="step", dynamic_ncols=True)
    try:
        while step < config.steps:
            losses = train_step()
            step += 1
            bar.update(1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()})
            last = step == config.steps
            if step % config.log_every == 0 or last:
                log.write(step, losses)
            if after_step:
                after_step(step, last)
            if step % config.checkpoint_every == 0 or last:
                save(step)
    except KeyboardInterrupt:
        save(step)
        bar.write(f"interrupted: saved step {step} to {config.out}")
    bar.close()
    return step


# --------------------------------------------------------------------------- stage 1: voice embedder


class SpeakerHead(nn.Module):
    """Scaled linear classifier on the unit voice embedding (speaker recognition pre-training)."""

    def __init__(self, embedding_dim: int, n_speakers: int, scale: float = 16.0):
        super().__init__()
        self.linear, self.scale = nn.Linear(embedding_dim, n_speakers), scale

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.linear(embedding * self.scale)


class EmbedderWithHead(nn.Module):
    def __init__(self, encoder: VoiceEncoder, head: SpeakerHead):
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, features, lengths):
        return self.head(self.encoder(features, lengths))


def hold_out_utterances(identities: list[Identity], fraction: float) -> tuple[list[Identity], list[Identity]]:
    """Per speaker, the last `fraction` of utterances (at least one, if it has two) for validation."""
    fit, val = [], []
    for ident in identities:
        k = max(1, round(len(ident.voices) * fraction)) if len(ident.voices) > 1 else 0
        fit.append(dataclasses.replace(ident, voices=ident.voices[: len(ident.voices) - k]))
        val.append(dataclasses.replace(ident, voices=ident.voices[len(ident.voices) - k :]))
    return fit, val


@torch.no_grad()
def speaker_top1(model: EmbedderWithHead, identities: list[Identity], config: TrainConfig, rt: Runtime) -> float:
    model.eval()
    correct = total = 0
    for label, ident in enumerate(identities):
        for voice in ident.voices:
            features = voice_features(voice, config.front_end)
            logits = model(cmvn(features)[None].to(rt.device), None)
            correct += int(logits.argmax(1).item() == label)
            total += 1
    model.train()
    return correct / max(total, 1)


def train_embedder(config: TrainConfig, rt: Runtime, train_ids: list[Identity], test_ids: list[Identity]) -> dict:
    fit_ids, val_ids = hold_out_utterances(train_ids, config.val_fraction)
    encoder = build_voice_encoder(config.model.voice, config.front_end)
    model = EmbedderWithHead(encoder, SpeakerHead(encoder.embedding_dim, len(train_ids)))
    networks = {"voice_encoder": model.encoder}
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, betas=config.betas)
    state = resume_state(config, networks)
    if state:
        model.head.load_state_dict(state["head"])
        opt.load_state_dict(state["optimizer"])
    step = state["step"] if state else 0
    ddp = wrap(model, rt)
    batches = endless_batches(
        VoiceFaceDataset(fit_ids, config.front_end, with_faces=False), config, rt,
        CropCollate(config.crop_min, config.crop_max, config.front_end.normalise),
    )  # fmt: skip
    top1 = float("nan")

    def train_step() -> dict[str, float]:
        features, lengths, labels = (t.to(rt.device) for t in next(batches))
        loss = F.cross_entropy(ddp(features, lengths), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    def save(step: int, **extra) -> None:
        nonlocal top1
        if rt.main and not extra:
            top1 = speaker_top1(model, val_ids, config, rt)
            print(f"step {step}: speaker-ID top-1 on held-out utterances = {top1:.3f}")
        save_run(config, rt, step, networks, {"head": model.head.state_dict(), "optimizer": opt.state_dict()},
                 {"speaker_top1": top1, "n_speakers": len(train_ids), **extra}, describe_data(config, train_ids, test_ids))  # fmt: skip

    step = run_steps(config, rt, step, train_step, save)
    return {"steps": step, "speaker_top1": top1, **finish(networks, rt, lambda **extra: save(step, **extra))}


# --------------------------------------------------------------------------- stage 2: the GAN


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


def frozen_voice_encoder(config: TrainConfig) -> tuple[VoiceEncoder, FrontEndConfig, ModelConfig]:
    """The stage-1 voice encoder, loaded and frozen; its config carries over into the GAN's."""
    if not config.voice_encoder:
        raise Voice2FaceError(
            "The gan stage needs a trained voice encoder: --set voice_encoder=<embedder run dir> or voice_encoder=ge2e-pretrained."
        )
    if config.voice_encoder == "ge2e-pretrained":
        encoder: VoiceEncoder = GE2EEncoder(GE2E_CONFIG, GE2E_FRONT_END)
        encoder.load_state_dict(pretrained_ge2e_state())
        voice_config = GE2E_CONFIG
    else:
        info = read_info(config.voice_encoder)
        encoder = load_weights(config.voice_encoder, "voice_encoder", build_voice_encoder(info.model.voice, info.front_end))
        voice_config = info.model.voice
    for p in encoder.parameters():
        p.requires_grad_(False)
    generator = dataclasses.replace(config.model.generator, embedding_dim=encoder.embedding_dim)
    return encoder.eval(), encoder.front_end, dataclasses.replace(config.model, voice=voice_config, generator=generator)


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


class EmbeddingFaceDataset(torch.utils.data.Dataset):
    """(precomputed voice embedding, a random face of the speaker, identity index)."""

    def __init__(self, embeddings: torch.Tensor, labels: list[int], identities: list[Identity]):
        self.embeddings, self.labels, self.identities = embeddings, labels, identities

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        label = self.labels[index]
        face = load_face(random.choice(self.identities[label].faces))
        return self.embeddings[index], (face.flip(-1) if random.random() < 0.5 else face), label


@torch.no_grad()
def precompute_embeddings(encoder: VoiceEncoder, identities: list[Identity], config: TrainConfig, rt: Runtime) -> EmbeddingFaceDataset:
    """Embed `embedding_crops` random crops (300-800 frames) of every utterance once.

    With the encoder frozen, this is the same distribution of inputs the
    generator sees when crops are embedded every step, at a fraction of the cost.
    """
    front_end = encoder.front_end
    embeddings, labels = [], []
    for label, ident in enumerate(tqdm(identities, desc="embedding voices", unit="identity", disable=not rt.main)):
        for voice in ident.voices:
            features = voice_features(voice, front_end)
            crops = []
            for _ in range(config.embedding_crops):
                length = random.randint(config.crop_min, config.crop_max)
                start = random.randint(0, max(0, features.shape[1] - length))
                crop = features[:, start : start + length]
                crops.append(cmvn(crop) if front_end.normalise else crop)
            batch, lengths = pad_features(crops)
            embeddings.append(encoder(batch.to(rt.device), lengths.to(rt.device)).cpu())
            labels += [label] * len(crops)
    return EmbeddingFaceDataset(torch.cat(embeddings), labels, identities)


@torch.no_grad()
def input_statistics_sample(dataset: EmbeddingFaceDataset | None, batches, encoder: VoiceEncoder, rt: Runtime, n_batches: int = 20) -> torch.Tensor:
    """Training voice embeddings to standardise the generator's input: all precomputed ones, or a few batches."""
    if dataset is not None:
        embeddings = dataset.embeddings.to(rt.device)
    else:
        embeddings = torch.cat([encoder(f.to(rt.device), n.to(rt.device)) for f, n, *_ in (next(batches) for _ in range(n_batches))])
    if rt.world > 1:  # every process must start from the same statistics
        dist.broadcast(embeddings, src=0)
    return embeddings


def sample_sheet(encoder, generator, identities: list[Identity], front_end: FrontEndConfig, device, path: Path, n: int = 8) -> None:
    """Fixed held-out voices -> faces (top row), their real faces (bottom row)."""
    chosen = identities[:n]
    if not chosen:
        return
    generator.eval()
    with torch.no_grad():
        def features(identity: Identity) -> torch.Tensor:
            f = voice_features(identity.voices[0], front_end)
            return (cmvn(f) if front_end.normalise else f)[None].to(device)

        embeddings = torch.cat([encoder(features(i), None) for i in chosen])
        fakes = to_pil(generator(embeddings))
    generator.train()
    reals = to_pil(torch.stack([load_face(i.faces[0]) for i in chosen]))
    path.parent.mkdir(parents=True, exist_ok=True)
    image_grid(fakes + reals, columns=len(chosen)).save(path)


def train_gan(config: TrainConfig, rt: Runtime, train_ids: list[Identity], test_ids: list[Identity]) -> dict:
    encoder, front_end, model_config = frozen_voice_encoder(config)
    config = dataclasses.replace(config, front_end=front_end, model=dataclasses.replace(model_config, n_identities=len(train_ids)))
    encoder = encoder.to(rt.device)
    generator, critic = Generator(config.model.generator), FaceCritic(config.model, len(train_ids))
    networks = {"voice_encoder": encoder, "generator": generator, "face_embedder": critic.embedder,
                "discriminator": critic.discriminator, "classifier": critic.classifier}  # fmt: skip
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.lr, betas=config.betas)
    opt_d = torch.optim.Adam(critic.parameters(), lr=config.lr, betas=config.betas)
    state = resume_state(config, networks)
    if state:
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
    step = state["step"] if state else 0
    g, c = wrap(generator, rt), wrap(critic, rt)
    precomputed = config.embedding_crops > 0
    dataset = None
    if precomputed:
        dataset = precompute_embeddings(encoder, train_ids, config, rt)
        batches = endless_batches(dataset, config, rt, torch.utils.data.default_collate)
    else:
        batches = endless_batches(
            VoiceFaceDataset(train_ids, front_end), config, rt,
            CropCollate(config.crop_min, config.crop_max, front_end.normalise),
        )  # fmt: skip
    if config.model.generator.standardise_input and not state:
        generator.fit_input_statistics(input_statistics_sample(dataset if precomputed else None, batches, encoder, rt))
    sample_ids = test_ids or train_ids  # held-out voices when there are any
    attribute_faces = attribute_group_faces(train_ids, config.attribute_columns).to(rt.device) if config.attribute_weight else None

    def train_step() -> dict[str, float]:
        batch = [t.to(rt.device) for t in next(batches)]
        if precomputed:
            embedding, real, labels = batch
        else:
            features, lengths, real, labels = batch
            with torch.no_grad():
                embedding = encoder(features, lengths)
        return gan_step(g, c, opt_g, opt_d, embedding, real, labels, config, attribute_faces)

    def samples(step: int, last: bool) -> None:
        if rt.main and (step % config.sample_every == 0 or last):
            sample_sheet(encoder, generator, sample_ids, front_end, rt.device, Path(config.out) / "samples" / f"step_{step:06d}.png")

    def save(step: int, **extra) -> None:
        save_run(config, rt, step, networks, {"opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict()},
                 {"voice_encoder_from": str(config.voice_encoder), **extra}, describe_data(config, train_ids, test_ids))  # fmt: skip

    step = run_steps(config, rt, step, train_step, save, samples)
    return {"steps": step, **finish(networks, rt, lambda **extra: save(step, **extra))}


# --------------------------------------------------------------------------- stage 3: the evaluator


class FaceEvaluator(nn.Module):
    """A face embedder with an identity head, trained on real faces only, to grade generated ones."""

    def __init__(self, config: FaceEmbedderConfig, n_identities: int):
        super().__init__()
        self.embedder = FaceEmbedder(config)
        self.classifier = IdentityClassifier(config.embedding_dim, n_identities)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embedder(faces))


class FaceDataset(torch.utils.data.Dataset):
    """(face, identity index) over every face of every identity, mirrored half the time."""

    def __init__(self, identities: list[Identity]):
        self.items = [(f, label) for label, ident in enumerate(identities) for f in ident.faces]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        path, label = self.items[index]
        face = load_face(path)
        return (face.flip(-1) if random.random() < 0.5 else face), label


def train_face_evaluator(config: TrainConfig, rt: Runtime, train_ids: list[Identity], test_ids: list[Identity]) -> dict:
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, n_identities=len(train_ids)))
    model = FaceEvaluator(config.model.face, len(train_ids))
    networks = {"face_embedder": model.embedder, "classifier": model.classifier}
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, betas=config.betas)
    state = resume_state(config, networks)
    if state:
        opt.load_state_dict(state["optimizer"])
    step = state["step"] if state else 0
    ddp = wrap(model, rt)
    batches = endless_batches(FaceDataset(train_ids), config, rt, torch.utils.data.default_collate)

    def train_step() -> dict[str, float]:
        faces, labels = (t.to(rt.device) for t in next(batches))
        loss = F.cross_entropy(ddp(faces), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"identity": loss.item()}

    def save(step: int, **extra) -> None:
        save_run(config, rt, step, networks, {"optimizer": opt.state_dict()}, {"role": "evaluator", **extra},
                 config.trained_on or "real faces of the training identities of " + describe_data(config, train_ids, test_ids))  # fmt: skip

    step = run_steps(config, rt, step, train_step, save)
    return {"steps": step, **finish(networks, rt, lambda **extra: save(step, **extra))}


# --------------------------------------------------------------------------- entry point


def train(config: TrainConfig) -> dict:
    """Run `config.stage`; returns a summary (steps, metrics, whether replicas agree)."""
    rt = start_runtime(config.device)
    try:
        seed_everything(config.seed + rt.rank)
        identities = load_identities(config.data, config.layout, config.meta, config.faces)
        train_ids, test_ids = split_identities(identities, config.split)
        if rt.main:
            Path(config.out).mkdir(parents=True, exist_ok=True)
            print(f"{config.stage}: {len(train_ids)} training identities, {len(test_ids)} held out; "
                  f"{rt.world} process(es) on {rt.device}")  # fmt: skip
        stage = {"embedder": train_embedder, "gan": train_gan, "face-eval": train_face_evaluator}[config.stage]
        return stage(config, rt, train_ids, test_ids)
    finally:
        if rt.world > 1:
            dist.destroy_process_group()
