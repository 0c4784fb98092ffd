"""Options and checks shared by the subcommands."""

from __future__ import annotations

import argparse
import importlib.util
import os
from pathlib import Path
from typing import List

from ..experiments import InputError

EXTRAS = ("numpy", "matplotlib", "tqdm", "PIL", "rich")


def require_extras(command: str) -> None:
    """Fail with an install hint when the ``cli`` extra is missing."""
    missing = [name for name in EXTRAS if importlib.util.find_spec(name) is None]
    if missing:
        names = ", ".join("pillow" if name == "PIL" else name for name in missing)
        raise InputError(f"`seesaw {command}` needs {names}: pip install 'seesaw-losses[cli]'")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {value}")
    return value


def add_run_options(parser: argparse.ArgumentParser, default_out: str) -> None:
    """``--out/--force/--seed/--device/--threads/--no-progress``."""
    parser.add_argument("--out", type=Path, default=Path(default_out),
                        help=f"report folder (default: {default_out}); must be empty or new unless --force")
    parser.add_argument("--force", action="store_true", help="write into a non-empty --out folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of data, initialisation and order (default 0)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="auto = cuda when available, else cpu")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="CPU threads for torch (default: the idle cores, at most 8)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bars")


def prepare_output(out: Path, force: bool) -> None:
    """Refuse a non-empty output folder without ``--force``; create it otherwise."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {str(out)!r} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise InputError(f"output folder {str(out)!r} is not empty; pass --force to overwrite its report files, "
                         "or choose another --out")
    out.mkdir(parents=True, exist_ok=True)


def configure_torch(args: argparse.Namespace) -> str:
    """Set the thread count and return the device to train on."""
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    # Threads beyond the idle cores make small convolutions many times slower (they spin waiting for each other).
    busy = int(os.getloadavg()[0] + 0.5) if hasattr(os, "getloadavg") else 0
    torch.set_num_threads(args.threads or max(1, min(cores - busy, 8)))
    if args.device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for but torch sees no CUDA device; use --device cpu")
    if args.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return args.device


def print_files(out: Path, paths: List[Path]) -> None:
    print(f"\nReport written to {out}/:")
    for path in paths:
        print(f"  {path.name}")


def train_each(kind: str, title: str, dataset, built, train_one, settings, notes=()):
    """Print the notes on the data and on the data-derived loss settings, train one model per built loss, and
    return the runs as a ``report.Comparison``."""
    from ..experiments import report

    notes = list(notes) + [note for loss in built for note in loss.notes]
    for note in notes:
        print(f"  {note}")
    runs = [train_one(dataset, loss, settings) for loss in built]
    return report.Comparison(kind, title, dataset.description, runs, notes)
