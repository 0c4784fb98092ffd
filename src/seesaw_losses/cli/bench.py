"""`seesaw bench`: speed and peak memory of the losses against plain autograd, native PyTorch and peers."""

from __future__ import annotations

import argparse

from ..bench.command import DESCRIPTION, add_arguments


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "bench", help="time and measure the losses against plain autograd, native PyTorch and peers",
        description=DESCRIPTION)
    add_arguments(parser)
    return parser
