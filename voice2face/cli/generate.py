"""`generate`: faces from a clip, one per length of speech, and the strip of them all."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

from ..errors import Voice2FaceError
from ..lengths import DEFAULT_DURATIONS, durations_text
from ..limits import MAX_AUDIO_SECONDS, MAX_SIZE, MIN_SIZE
from ..paths import DEFAULT_CHECKPOINT


def register(commands: argparse._SubParsersAction) -> None:
    gen = commands.add_parser(
        "generate",
        help="faces from a clip, one per length of speech",
        description="Write one PNG per length of speech and a captioned side-by-side strip (strip.png).",
    )
    gen.add_argument("audio", type=Path, help="speech clip: wav, flac, ogg, mp3, webm, m4a")
    gen.add_argument("--durations", nargs="+", default=DEFAULT_DURATIONS, metavar="SECONDS",
                     help=f"seconds of speech to use from the start of the clip; 'full' is the whole clip "
                     f"(default: {durations_text(DEFAULT_DURATIONS)})")  # fmt: skip
    gen.add_argument("-o", "--output", type=Path, default=Path("faces"), help="output directory (default: faces/)")
    gen.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="checkpoint directory (default: %(default)s)")
    gen.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    gen.add_argument("--size", type=int, default=256, help="pixel size of the saved faces and the strip, 64 to 1024 (default: 256)")
    gen.add_argument("--max-seconds", type=float, default=MAX_AUDIO_SECONDS, help="read at most this much of the file (default: %(default)s)")
    gen.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..lengths import parse_durations

    # every argument is checked before any work: a mistake costs no decoding and no drawing, and those
    # that need no PyTorch to check are answered before it is imported (a second sooner)
    if not MIN_SIZE <= args.size <= MAX_SIZE:
        raise Voice2FaceError(f"--size must be {MIN_SIZE} to {MAX_SIZE} pixels, not {args.size}.")
    if not math.isfinite(args.max_seconds) or args.max_seconds <= 0:
        raise Voice2FaceError(f"--max-seconds must be a positive number of seconds, not {args.max_seconds}.")
    durations = parse_durations(args.durations)
    from ..pipeline import Voice2Face, resolve_device

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
