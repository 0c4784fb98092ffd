"""Options and checks shared by the subcommands."""

from __future__ import annotations

import argparse
import importlib.util
import os
import textwrap
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Sequence

from .errors import InputError, in_flags

EXTRAS = ("numpy", "matplotlib", "PIL", "rich", "torchmetrics", "scipy", "optuna", "skimage")


PACKAGES = {"PIL": "pillow", "skimage": "scikit-image"}  #: the package to install for a module of EXTRAS


def require_extras(command: str) -> None:
    """Fail with an install hint when the ``cli`` extra is missing."""
    missing = [name for name in EXTRAS if importlib.util.find_spec(name) is None]
    if missing:
        names = ", ".join(PACKAGES.get(name, name) for name in missing)
        raise InputError(f"`seesaw {command}` needs {names}: pip install 'seesaw-losses[cli]'")


def whole_number(minimum: int):
    """An argparse ``type`` for whole numbers of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, got {value}")
        return value

    return parse


positive_int = whole_number(1)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {value}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def add_out_options(parser: argparse.ArgumentParser, default_out: str, what: str = "report folder") -> None:
    """``--out/--force``: the folder a command writes, new or empty unless forced."""
    parser.add_argument("--out", type=Path, default=Path(default_out),
                        help=f"{what} (default: {default_out}); must be empty or new unless --force")
    parser.add_argument("--force", action="store_true", help="write into a non-empty --out folder")


def add_run_options(parser: argparse.ArgumentParser, default_out: str,
                    seed_help: str = "seed of data, initialisation and order (default 0)") -> None:
    """``--out/--force/--seed/--device/--threads/--no-progress``."""
    add_out_options(parser, default_out)
    parser.add_argument("--seed", type=whole_number(0), default=0, help=seed_help)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="auto = cuda when available, else cpu")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="CPU threads for torch (default: the cores this process may use that no other process "
                             "keeps busy, less the loader processes)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bars")


def prepare_output(out: Path, force: bool) -> None:
    """Refuse a non-empty output folder without ``--force``, and one that cannot hold a report; create it
    otherwise."""
    from ..experiments.reporting.report import check_report_folder

    if out.exists() and not out.is_dir():
        raise InputError(f"--out {str(out)!r} exists and is not a folder")
    check_report_folder(out)
    if out.is_dir() and any(out.iterdir()) and not force:
        raise InputError(f"output folder {str(out)!r} is not empty; pass --force to overwrite its report files, "
                         "or choose another --out")
    out.mkdir(parents=True, exist_ok=True)


def refuse_output_inside(out: Path, folders: Sequence[Path]) -> None:
    """``--out`` may not be (inside) an input folder: its PNGs would be read as data by the next run."""
    target = out.resolve()
    for folder in folders:
        if folder is not None and (target == folder.resolve() or folder.resolve() in target.parents):
            raise InputError(f"--out {str(out)!r} is inside the input folder {str(folder)!r}; the report's files "
                             "would be read as data next time; choose an --out outside the data folders")


@contextmanager
def output_folder(out: Path, *, force: bool, resume: bool = False) -> Iterator[None]:
    """The report folder for the run's block: created when needed, removed again if the run fails before
    writing anything into it. ``resume`` accepts a non-empty folder (a previous run's study)."""
    existed = out.exists()
    prepare_output(out, force or resume)
    try:
        yield
    except BaseException:
        if not existed and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise


def add_comparison_options(parser: argparse.ArgumentParser, seeds: int) -> None:
    """``--seeds/--tune/--pruner/--resume/--storage/--workers``."""
    parser.add_argument("--seeds", type=positive_int, default=seeds,
                        help=f"trainings per loss, other initialisation and data order, same splits (default {seeds}); "
                             "the tables show means with 95%% intervals and which losses tie with the best")
    parser.add_argument("--tune", type=whole_number(0), default=0, metavar="TRIALS",
                        help="Optuna TPE trials per loss over its registry search space, each trained on the "
                             "training split and scored on the validation split (default 0: the defaults)")
    parser.add_argument("--pruner", choices=("median", "hyperband"), default=None,
                        help="stop clearly worse tuning trials early from their per-epoch validation score "
                             "(Optuna's MedianPruner or HyperbandPruner; pruned trials count in the budget)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the study of an interrupted run in --out (or --storage)")
    parser.add_argument("--storage", metavar="URL",
                        help="Optuna database URL for the study (e.g. postgresql://...), shared by every machine "
                             "that runs the same command: each tuning trial and final run is trained once, by "
                             "whichever process claims it; default: study.db (SQLite) in --out")
    parser.add_argument("--artifacts", type=Path, default=None, metavar="DIR",
                        help="folder every process of the comparison reaches, for the final runs' per-sample "
                             "scores and plot inputs (needed with a --storage that is not SQLite; default: beside "
                             "the SQLite file)")
    parser.add_argument("--margin", type=non_negative_float, default=None,
                        help="practical-equivalence margin on the ranking metric: a loss whose 95 %% upper bound "
                             "on its deficit to the best is within it is 'equivalent' to the best (default 0.005)")
    parser.add_argument("--workers", type=positive_int, default=1,
                        help="local worker processes that train the comparison's jobs (tuning trials and final "
                             "runs), spread over the visible GPUs with --device cuda (default 1)")


def check_losses(losses, class_counts, **options):
    """The parsed losses, built once with ``class_counts``: a loss that does not fit is an :class:`InputError`
    before any folder is made or model trained."""
    from ..experiments.api import check_losses as check

    try:
        return check(losses, class_counts, **options)
    except (TypeError, ValueError) as error:
        raise InputError(in_flags(str(error))) from None


def run_comparison(train, losses, args: argparse.Namespace, *, seeds: int, tune: int, device: str,
                   title: str, description: str = "", notes=(), out=None, storage=None, **options):
    """:func:`~seesaw_losses.experiments.api.compare` with the command's options (the study in ``--storage`` or
    ``--out``, or ``storage``; ``--force`` without ``--resume`` starts a fresh one; with ``out`` it writes the
    report there);
    prints the ``notes`` before training and the comparison's own notes after it, and returns the result."""
    notes = [in_flags(note) for note in notes]
    for note in notes:
        print(f"  {note}")
    from ..experiments.api import compare
    from ..experiments.reporting.report import ReportError

    if args.workers > 1:
        print(f"  {args.workers} worker processes on the study {args.storage or args.out / 'study.db'}")
    try:
        result = compare(train, losses, seeds=seeds, tune=tune, storage=storage or args.storage,
                         resume=args.resume, artifacts=args.artifacts, fresh=args.force and not args.resume,
                         workers=args.workers, pruner=args.pruner, seed=args.seed, progress=args.progress,
                         device=device, title=title, notes=notes, description=description, out=out,
                         **({"margin": args.margin} if args.margin is not None else {}), **options)
    except ReportError as error:  # every run trained and is kept in the study: show the tables, say what next
        print("\n" + str(error.result))
        raise InputError(in_flags(f"the comparison finished, but {error.failure}; the tables are above; free "
                                  "space (or choose another --out) and run the same command with --resume: "
                                  "it trains nothing and writes the report")) from None
    except (TypeError, ValueError) as error:  # the API's own messages ("compare: ..."): said as flags
        if not str(error).startswith("compare: "):
            raise
        raise InputError(in_flags(str(error))) from None
    for note in result.notes[len(notes):]:
        print(f"  {in_flags(note)}")
    return result


def configure_torch(args: argparse.Namespace, loader_workers: int = 0) -> str:
    """Set the thread count (``--threads``, default: the usable cores no other process keeps busy, less the
    ``loader_workers`` processes, at least one) and return the device to train on. Processes started from here
    on (tuning workers) wait for work without spinning (``OMP_WAIT_POLICY=PASSIVE`` unless set), so that they
    leave the cores to the processes that have work."""
    import torch

    from ..experiments.trainers.fit import idle_cores

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    torch.set_num_threads(args.threads or max(1, idle_cores() - loader_workers))
    if args.device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for but torch sees no CUDA device; use --device cpu")
    if args.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return args.device


def device_text(device: str) -> str:
    """Where the runs train, for the command's header: ``"on cpu, 2 threads"`` or
    ``"on cuda (NVIDIA H100 80GB HBM3)"``."""
    import torch

    if device.startswith("cuda"):
        return f"on {device} ({torch.cuda.get_device_name(torch.device(device))})"
    threads = torch.get_num_threads()
    return f"on {device}, {threads} thread{'s' if threads != 1 else ''}"


def print_files(out: Path, paths: List[Path], comparisons=()) -> None:
    """The files written, then (last, to copy) the line that builds each comparison's recommended loss."""
    from ..experiments.reporting.report import paste_line

    print(f"\nReport written to {out}/:")
    for path in paths:
        print(f"  {path.name}")
    for comparison in comparisons:
        print(f"\nPaste into training code ({comparison.title}):\n{textwrap.indent(paste_line(comparison), '    ')}")
