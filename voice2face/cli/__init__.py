"""The command line: `python -m voice2face COMMAND --help`.

Each command is a module of this package that declares its own arguments beside the code that runs
them (`register`). Every command reports a user error (bad audio, missing checkpoint, ...) as one
line on stderr and exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import Voice2FaceError
from . import checkpoints, data, evaluate, generate, train

#: In the order `--help` lists them.
COMMANDS = (generate, checkpoints, data, train, evaluate)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except Voice2FaceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m voice2face", description="Draw faces from voices.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(commands)
    return parser
