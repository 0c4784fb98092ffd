"""The ``seesaw`` command.

Each subcommand lives in its own module with ``add_parser(subparsers)``, which registers its parser and sets
``func`` to the function that runs it (``args -> exit status``); :data:`SUBCOMMANDS` lists those modules.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional, Sequence

from .._version import __version__

#: Subcommand modules of this package, in the order ``seesaw --help`` lists them.
SUBCOMMANDS = ("demo", "compare", "report", "losses", "plot", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seesaw",
        description="Losses for class-imbalanced segmentation and classification: train, compare, plot, bench.",
    )
    parser.add_argument("--version", action="version", version=f"seesaw-losses {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    from ..experiments import DataError, Diverged
    from .errors import InputError, in_flags

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except InputError as error:
        print(f"seesaw {args.command}: error: {error}", file=sys.stderr)
        return 2
    except DataError as error:  # the experiments name parameters: said as the command's flags
        print(f"seesaw {args.command}: error: {in_flags(str(error))}", file=sys.stderr)
        return 2
    except Diverged as error:
        print(f"seesaw {args.command}: training diverged: {in_flags(str(error))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"seesaw {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
