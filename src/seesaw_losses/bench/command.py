"""The benchmark's command line, shared by ``seesaw bench`` and ``python -m seesaw_losses.bench``."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from .workloads import WORKLOADS

DEFAULT_JSON = "bench-results/bench.json"

DESCRIPTION = ("Forward + backward median time and peak memory of each loss (as a module in training mode and "
               "as its function), as ratios to PyTorch's native binary_cross_entropy_with_logits / cross_entropy "
               "measured in the same run, and to the bandwidth floor (the bytes that must move at the device's "
               "measured copy bandwidth).")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workload", action="append", choices=list(WORKLOADS), dest="workloads",
                        help="workload to run (repeatable; default: all)")
    parser.add_argument("--quick", action="store_true", help="small shapes and 3 rounds (a smoke test)")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (default 11, or 3 with --quick)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--no-memory", dest="memory", action="store_false", help="skip the peak-memory pass")
    parser.add_argument("--json", default=DEFAULT_JSON, help=f"where to write the results (default {DEFAULT_JSON})")
    parser.add_argument("--markdown", metavar="PATH", help="also write the tables to this Markdown file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark of ``args``; a bad argument is one line on stderr and exit status 2."""
    from .runner import format_table, run_benchmark, write_json, write_markdown
    try:
        if args.repeats is not None and args.repeats < 1:
            raise ValueError(f"--repeats must be >= 1, got {args.repeats}")
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        check_device(args.device)
        result = run_benchmark(args.workloads, quick=args.quick, repeats=args.repeats, threads=args.threads,
                               device=args.device, memory=args.memory)
    except ValueError as error:
        print(f"seesaw bench: error: {error}", file=sys.stderr)
        return 2
    print(format_table(result))
    write_json(result, args.json)
    print(f"\nwrote {args.json}")
    if args.markdown:
        write_markdown(result, args.markdown)
        print(f"wrote {args.markdown}")
    return 0


def check_device(device: str) -> None:
    """``--device`` is ``cpu``, or ``cuda`` with a CUDA device that torch sees."""
    import torch

    if device not in ("cpu", "cuda"):
        raise ValueError(f"--device must be cpu or cuda, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but torch sees no CUDA device; use --device cpu")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``python -m seesaw_losses.bench``."""
    parser = argparse.ArgumentParser(prog="python -m seesaw_losses.bench", description=DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(argv))
