"""Training: one loop (`loop`), one module per stage, settings in `config`.

    embedder         the paper's voice embedder, speaker recognition      (embedder.py)
    gan              Wen et al.'s GAN on a frozen voice encoder            (gan.py)
    grader           a face embedder to grade generated faces              (grader.py)
    face-gan         a decoder of real face photos (DCGAN, fine-tuned)     (face_gan.py)
    face-attributes  gender and age of a face, from labelled photos        (face_attributes.py)
    voice-map        voices mapped into the decoder's face space           (voice_map.py)
    style-map        voices placed in the StyleGAN face space (default)    (style_map.py)
"""

from __future__ import annotations

import gc
import random
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from .config import STAGES, TrainConfig, load_config
from .loop import run, start_runtime

__all__ = ["STAGES", "TrainConfig", "load_config", "train"]


def train(config: TrainConfig) -> dict[str, Any]:
    """Run `config.stage`; returns a summary (steps, metrics, whether replicas agree)."""
    rt = start_runtime(config.device)
    try:
        summary = run(build_stage(config, rt), rt)
        if rt.world > 1:
            # The stage's DDP modules sit in reference cycles: freed now, while the group and the
            # interpreter are alive, not at interpreter exit with their gloo work still held (the
            # likely cause of one more abort like the one below, seen once in three suite runs).
            gc.collect()
            # Every process waits here until the main one has written its last checkpoint: a process
            # that tore the group down while another still used it aborted the same way in about one
            # run in four.
            dist.barrier()
        return summary
    finally:
        if rt.world > 1:
            dist.destroy_process_group()


def build_stage(config: TrainConfig, rt):
    """The stage object for `config.stage`, with its data loaded; seeds every random source first."""
    random.seed(config.seed + rt.rank)
    torch.manual_seed(config.seed + rt.rank)
    if rt.main:
        Path(config.out).mkdir(parents=True, exist_ok=True)
    if config.stage in ("face-gan", "face-attributes", "voice-map", "style-map"):
        from .face_attributes import FaceAttributesStage
        from .face_gan import FaceGanStage
        from .style_map import StyleMapStage
        from .voice_map import VoiceMapStage

        stage_class = {"face-gan": FaceGanStage, "face-attributes": FaceAttributesStage, "voice-map": VoiceMapStage,
                       "style-map": StyleMapStage}[config.stage]  # fmt: skip
        return stage_class(config, rt)
    from ..datasets.paired import load_identities, split_identities
    from .embedder import EmbedderStage
    from .gan import GanStage
    from .grader import GraderStage

    identities = load_identities(config.data, config.layout, config.meta, config.faces)
    train_ids, test_ids = split_identities(identities, config.split)
    if rt.main:
        print(f"{config.stage}: {len(train_ids)} training identities, {len(test_ids)} held out; {rt.world} process(es) on {rt.device}")
    stage_class = {"embedder": EmbedderStage, "gan": GanStage, "grader": GraderStage}[config.stage]
    return stage_class(config, rt, train_ids, test_ids)
