"""The ``seesaw`` command."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from .._version import __version__
from . import bench


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seesaw",
        description="Losses for class-imbalanced segmentation and classification: train, compare, plot, bench.",
    )
    parser.add_argument("--version", action="version", version=f"seesaw-losses {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    bench.add_parser(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
