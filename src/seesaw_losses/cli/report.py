"""``seesaw report``: the report of a comparison from its study alone, without training."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_out_options, prepare_output, print_files, require_extras
from .errors import InputError, in_flags


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="write the report of a finished comparison from its study, training nothing",
        description="Write the report of the comparison in an Optuna storage (seesaw compare --storage, or the "
                    "study.db of a report folder) from what its study holds: every tuning trial and final run, "
                    "their metrics, per-sample scores and plot inputs. Nothing is trained.")
    parser.add_argument("--storage", required=True, metavar="URL",
                        help="Optuna database URL of the comparison, e.g. sqlite:///out/study.db or postgresql://...")
    parser.add_argument("--artifacts", type=Path, default=None, metavar="DIR",
                        help="folder of the final runs' outcomes (default: beside a SQLite file)")
    parser.add_argument("--metric", default=None,
                        help="the comparison's ranking metric, when the storage holds several comparisons")
    add_out_options(parser, "seesaw-report", "report folder")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    require_extras("compare")
    from ..experiments import DataError
    from ..experiments.api import report

    prepare_output(args.out, args.force)
    try:
        result = report(args.storage, metric=args.metric, artifacts=args.artifacts, out=args.out)
    except DataError as error:
        raise InputError(in_flags(str(error).removeprefix("report: "))) from None
    print(str(result))
    print_files(args.out, result.files, [result])
    return 0
