"""`evaluate`: score a checkpoint on held-out speakers, graded by packaged judges we never train."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import Voice2FaceError
from ..paths import DEFAULT_CHECKPOINT
from .data import add_data_args


def register(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser(
        "evaluate", help="score a checkpoint on held-out speakers: packaged face judges, and 1:2 matching where faces exist",
        description="Judged protocol (face found, gender, age, dlib diversity and consistency, and how well the faces and "
        "the voice embeddings tell same-gender speakers apart) on held-out real speakers (--real-voices) and held-out "
        "identities of --data (its --split); the paper's 1:2 matching and retrieval too when --grader is given and the "
        "identities have faces. Prints tables, writes results.json, plots and face sheets.",
    )  # fmt: skip
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
    evaluate.add_argument("--face-space", type=Path,
                          help="the face-space checkpoint the model was fitted in: the face network's own faces are judged beside")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--out", type=Path, default=Path("evaluation"), help="directory for results.json, plots, face sheets")
    evaluate.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..evaluate.run import evaluate_checkpoint
    from ..lengths import parse_durations
    from ..pipeline import Voice2Face

    model = Voice2Face.from_pretrained(args.checkpoint)
    judged, paired = held_out_speakers(args, model.info.training.get("settings", {}))
    if not judged:
        raise Voice2FaceError("Say which held-out speakers to judge: --real-voices EMODB, --pairs PAIRS, --labelled VOICES and/or --data DATA --split LIST.")
    evaluate_checkpoint(model, args.out, judged, parse_durations(args.durations), paired, args.photos,
                        args.clips_per_speaker, args.trials, args.seed, args.face_space)  # fmt: skip
    return 0


def held_out_speakers(args: argparse.Namespace, settings: dict) -> tuple[dict, tuple | None]:
    """The sets to judge, by name, and the identities (with their grader) for 1:2 matching, if asked for."""
    from ..datasets.paired import load_identities, split_identities
    from ..evaluate import FaceGrader, emodb_speakers, identity_speakers
    from ..evaluate.judged import labelled_speakers, pair_speakers
    from ..training.config import TrainConfig

    judged, paired = {}, None
    if args.real_voices:
        judged["real"] = emodb_speakers(args.real_voices, args.speakers)
    if args.pairs:
        judged["pairs"] = pair_speakers(args.pairs, args.pair_ids or TrainConfig.pairs_holdout)
    if args.labelled:
        judged["labelled"] = labelled_speakers(args.labelled, settings.get("labelled_holdout", TrainConfig.labelled_holdout))
    if args.data:
        identities = load_identities(args.data, args.layout, args.meta, args.faces, need_faces=args.grader is not None)
        _, test = split_identities(identities, args.split)
        judged["synthetic"] = identity_speakers(test)
        if args.grader:
            paired = (FaceGrader(args.grader), test)
    return judged, paired
