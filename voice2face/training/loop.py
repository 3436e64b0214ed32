"""The one training loop every stage runs: processes, resume, steps, logging, saving, Ctrl-C.

A stage (see `Stage`) says which networks it trains and what one step does;
`run` does the rest the same way for all of them:

    python -m voice2face train --stage STAGE --data DATA --out RUN
    torchrun --nproc_per_node 4 -m voice2face train ...      # DistributedDataParallel

Re-running with the same `--out` resumes; Ctrl-C saves and exits; losses go
to `<out>/log.csv`; with several processes, the end of a run checks and
records that every process holds the same weights.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler
from tqdm import tqdm

from ..checkpoint import CheckpointInfo, load_training_state, load_weights, read_info, save_checkpoint
from ..errors import Voice2FaceError
from .config import TrainConfig


@dataclass(frozen=True)
class Runtime:
    """This process's place among the training processes, and its device."""

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


def wrap(module: nn.Module, rt: Runtime) -> nn.Module:
    module = module.to(rt.device)
    return DistributedDataParallel(module) if rt.world > 1 else module


def unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, DistributedDataParallel) else module


class Batches:
    """Batches forever from `dataset`; each process sees its own shard when distributed.

    `close()` stops the loader's worker processes: a run must end them before
    the process group goes, or a worker can outlive it.
    """

    def __init__(self, dataset: Dataset, config: TrainConfig, rt: Runtime, collate=None):
        per_process = config.batch_size // rt.world
        if per_process < 1 or len(dataset) < config.batch_size:
            raise Voice2FaceError(
                f"The training set has {len(dataset)} items, fewer than one batch of {config.batch_size} "
                f"over {rt.world} process(es); lower batch_size."
            )
        if rt.world > 1:
            self.sampler = DistributedSampler(dataset, rt.world, rt.rank, shuffle=True, seed=config.seed, drop_last=True)
        else:
            self.sampler = RandomSampler(dataset)
        self.loader = DataLoader(
            dataset, batch_size=per_process, sampler=self.sampler, collate_fn=collate, drop_last=True,
            num_workers=config.num_workers, persistent_workers=config.num_workers > 0, worker_init_fn=_seed_worker,
        )  # fmt: skip
        self.iterator: Iterator | None = None
        self.epoch = 0

    def __next__(self):
        while True:
            if self.iterator is None:
                if isinstance(self.sampler, DistributedSampler):
                    self.sampler.set_epoch(self.epoch)
                self.iterator = iter(self.loader)
            try:
                return next(self.iterator)
            except StopIteration:
                self.iterator, self.epoch = None, self.epoch + 1

    def close(self) -> None:
        shutdown = getattr(self.iterator, "_shutdown_workers", None)
        if shutdown:
            shutdown()
        self.iterator = None


def _seed_worker(worker_id: int) -> None:
    random.seed(torch.initial_seed() % 2**32)


class Stage:
    """What one stage trains. Subclasses set these in `__init__` and write `step`:

    - `kind`: the checkpoint kind it writes (see `checkpoint.KINDS`);
    - `networks`: name -> module, saved in the checkpoint and restored on resume;
    - `optimizers`: name -> optimiser, saved for resuming;
    - `config`: the run's config as the stage completed it (e.g. the model widths it read);
    - `trained_on`: what config.json will say the networks learned from.
    """

    kind: str
    networks: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    config: TrainConfig
    trained_on: str

    def start(self, resumed: bool) -> None:
        """After the weights are loaded or fresh, before the first step (e.g. fit input statistics)."""

    def step(self) -> dict[str, float]:
        """One training step; returns the losses to log."""
        raise NotImplementedError

    def after_step(self, step: int, last: bool) -> None:
        """After each step on every process (e.g. a sample sheet every `sample_every` steps)."""

    def report(self, step: int) -> dict[str, Any]:
        """Figures to record in config.json at each save (e.g. held-out accuracy); main process only."""
        return {}

    def close(self) -> None:
        """Release what the stage holds (data loader workers)."""


class RunLog:
    """CSV of losses per logged step, appended across resumes."""

    def __init__(self, out: Path, enabled: bool):
        self.path, self.enabled = out / "log.csv", enabled

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


def portable_path(path: str | None) -> str | None:
    """A path as config.json records it: relative to where training ran, never the machine's absolute path."""
    if not path:
        return path
    relative = os.path.relpath(Path(path).resolve())
    return Path(path).name if relative.startswith("..") else relative


def run_settings(config: TrainConfig) -> dict[str, Any]:
    """Every training knob except the model and front end (saved beside it), as JSON: how to rerun it."""
    paths = {"data", "meta", "faces", "split", "out", "voice_encoder", "decoder", "attribute_net", "real_voices", "real_pairs", "labelled_voices", "face_space"}
    settings = {}
    for f in dataclasses.fields(config):
        if f.name in ("model", "front_end", "trained_on"):
            continue
        value = getattr(config, f.name)
        settings[f.name] = portable_path(value) if f.name in paths and value not in ("ge2e-pretrained", "paper") else (list(value) if isinstance(value, tuple) else value)
    return settings


def save(stage: Stage, rt: Runtime, step: int, **extra: Any) -> None:
    """Checkpoint `<out>/` (main process only), in the format the pipeline and later stages read."""
    if not rt.main:
        return
    config = stage.config
    info = CheckpointInfo(
        kind=stage.kind, model=config.model, front_end=config.front_end, trained_on=stage.trained_on,
        training={"stage": config.stage, "steps": step, "seed": config.seed, "world_size": rt.world,
                  "batch_size": config.batch_size, **stage.report(step), **extra, "settings": run_settings(config)},
    )  # fmt: skip
    state = {"step": step, **{name: opt.state_dict() for name, opt in stage.optimizers.items()}}
    save_checkpoint(config.out, info, {k: unwrap(v) for k, v in stage.networks.items()}, training_state=state)


def resume(stage: Stage) -> int:
    """If `<out>/` holds this stage's checkpoint, load its weights and optimisers; the step to go on from."""
    out = stage.config.out
    state = load_training_state(out)
    if state is None:
        return 0
    info = read_info(out)
    if info.training.get("stage") != stage.config.stage:
        raise Voice2FaceError(f"{out} holds a {info.training.get('stage')!r} run; use another --out.")
    for name, module in stage.networks.items():
        load_weights(out, name, unwrap(module))
    for name, opt in stage.optimizers.items():
        opt.load_state_dict(state[name])
    return int(state["step"])


def replicas_in_sync(networks: dict[str, nn.Module], rt: Runtime) -> bool:
    """Do all processes hold the same weights? (DDP's promise, checked at the end of a run.)"""
    flat = torch.cat([p.detach().flatten().double() for m in networks.values() for p in unwrap(m).parameters()])
    gathered = [torch.zeros_like(flat) for _ in range(rt.world)]
    dist.all_gather(gathered, flat)
    return all(torch.equal(gathered[0], g) for g in gathered[1:])


def run(stage: Stage, rt: Runtime) -> dict[str, Any]:
    """Steps from where `<out>/` left off to `config.steps`, with a tqdm bar, the CSV log,
    periodic saves and a save on Ctrl-C. Returns the steps done and what the stage reports."""
    config = stage.config
    step = resume(stage)
    stage.start(resumed=step > 0)
    log = RunLog(Path(config.out), rt.main)
    bar = tqdm(total=config.steps, initial=step, disable=not rt.main, desc=config.stage, unit="step", dynamic_ncols=True)
    try:
        if step == config.steps == 0:  # a stage whose weights are all solved in `start` (style-map with steps=0)
            save(stage, rt, step)
        while step < config.steps:
            losses = stage.step()
            step += 1
            bar.update(1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()})
            last = step == config.steps
            if step % config.log_every == 0 or last:
                log.write(step, losses)
            stage.after_step(step, last)
            if step % config.checkpoint_every == 0 or last:
                save(stage, rt, step)
    except KeyboardInterrupt:
        save(stage, rt, step)
        bar.write(f"interrupted: saved step {step} to {config.out}")
    finally:
        bar.close()
        stage.close()
    summary: dict[str, Any] = {"steps": step, **(stage.report(step) if rt.main else {})}
    if rt.world > 1:
        summary["replicas_in_sync"] = replicas_in_sync(stage.networks, rt)
        save(stage, rt, step, replicas_in_sync=summary["replicas_in_sync"])
    return summary
