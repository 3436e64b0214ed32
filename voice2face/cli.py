"""The command line: `python -m voice2face COMMAND --help`.

Every command reports a user error (bad audio, missing checkpoint, ...) as
one line on stderr and exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from .checkpoint import CheckpointInfo, save_checkpoint
from .errors import Voice2FaceError
from .models import Generator, ModelConfig, build_voice_encoder
from .pipeline import DEFAULT_CHECKPOINT, DEFAULT_DURATIONS, Voice2Face
from .audio import MAX_AUDIO_SECONDS, parse_durations


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except Voice2FaceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m voice2face", description="Draw faces from voices.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    gen = commands.add_parser(
        "generate",
        help="faces from a clip, one per length of speech",
        description="Write one PNG per duration and a captioned side-by-side strip (strip.png).",
    )
    gen.add_argument("audio", type=Path, help="speech clip: wav, flac, ogg, mp3, webm, m4a")
    gen.add_argument(
        "--durations",
        nargs="+",
        default=["1", "2", "4", "8", "full"],
        metavar="SECONDS",
        help="seconds of speech to use from the start of the clip; 'full' is the whole clip (default: 1 2 4 8 full)",
    )
    gen.add_argument("-o", "--output", type=Path, default=Path("faces"), help="output directory (default: faces/)")
    gen.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="checkpoint directory (default: %(default)s)")
    gen.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    gen.add_argument("--size", type=int, default=256, help="pixel size of the saved faces; the model draws 64x64 (default: 256)")
    gen.add_argument(
        "--max-seconds", type=float, default=MAX_AUDIO_SECONDS, help="read at most this much of the file (default: %(default)s)"
    )
    gen.set_defaults(run=run_generate)

    init = commands.add_parser(
        "init-random",
        help="write an untrained, randomly initialised checkpoint",
        description="A placeholder so the pipeline runs before any training; its config says it was trained on nothing.",
    )
    init.add_argument("output", type=Path, help="checkpoint directory to write")
    init.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    init.add_argument(
        "--generator-channels",
        type=int,
        nargs=5,
        default=None,
        metavar="C",
        help="generator widths (default: the paper's 1024 512 256 128 64)",
    )
    init.add_argument("--fp16", action="store_true", help="store weights as float16 (half the size)")
    init.set_defaults(run=run_init_random)
    return parser


def run_generate(args: argparse.Namespace) -> int:
    from .images import upscale

    durations = parse_durations(args.durations)
    model = Voice2Face.from_pretrained(args.checkpoint, device=args.device)
    result = model.faces_for_durations(args.audio, durations, max_seconds=args.max_seconds)
    args.output.mkdir(parents=True, exist_ok=True)
    for cut, image in zip(result.cuts, result.images):
        name = "face_full.png" if cut.requested is None else f"face_{cut.requested:g}s.png"
        upscale(image, args.size).save(args.output / name)
        print(f"{args.output / name}: {cut.label}")
    result.strip(size=min(args.size, 192)).save(args.output / "strip.png")
    print(f"{args.output / 'strip.png'}: all {len(result.images)} faces side by side")
    for note in result.notes:
        print(f"note: {note}")
    if model.info.trained_on.startswith("nothing"):
        print(f"note: {args.checkpoint} is an untrained random model; its faces do not depend on the voice in any learned way.")
    return 0


def run_init_random(args: argparse.Namespace) -> int:
    torch.manual_seed(args.seed)
    config = ModelConfig()
    if args.generator_channels:
        config.generator.channels = tuple(args.generator_channels)
    info = CheckpointInfo(model=config, training={"stage": "none", "steps": 0, "seed": args.seed})
    networks = {
        "voice_encoder": build_voice_encoder(config.voice, info.front_end),
        "generator": Generator(config.generator),
    }
    save_checkpoint(args.output, info, networks, dtype=torch.float16 if args.fp16 else torch.float32)
    print(f"wrote an untrained checkpoint to {args.output}")
    return 0
