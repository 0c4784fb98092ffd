"""The study behind a comparison: where it lives (:class:`StudyPlan`), how a trial proposes hyperparameters,
how the storage is opened, and the local worker processes that share it. The jobs themselves (tuning trials and
final runs) are in :mod:`.jobs`.

Each loss has its own tuning study (``seesaw-compare:<metric>:<loss>``) in one storage (by default a SQLite file
in the report folder). A trial is scored on the user's validation split, never the held-out set; a trial pruned
by the pruner (``run.report``) or whose loss diverges (:class:`Diverged`) ends as *pruned* and counts in the
budget.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ..registry import Hyperparameter
from . import DataError

HEARTBEAT_SECONDS, GRACE_SECONDS = 5, 20
STUDY_FILE = "study.db"
PRUNERS = ("median", "hyperband")


@dataclass(frozen=True)
class StudyPlan:
    """One comparison in a storage: its losses (those with something to tune in ``tunable``), ``trials`` finished
    tuning trials per tunable loss, the final runs' ``seeds``, the metric and its direction, the pruner, and the
    folder of the final runs' artifacts."""

    storage: str
    trials: int
    seed: int = 0
    direction: str = "maximize"
    pruner: Optional[str] = None
    prefix: str = "seesaw-compare"
    metric: str = "score"
    losses: Tuple[str, ...] = ()
    tunable: Tuple[str, ...] = ()
    seeds: Tuple[int, ...] = (0,)
    artifacts: str = ""

    def study_name(self, loss: str) -> str:
        return f"{self.prefix}:{loss}"

    def finals_name(self, loss: str) -> str:
        return f"{self.prefix}:{loss}/finals"

    @property
    def settings_name(self) -> str:
        return f"{self.prefix}/settings"

    def settings(self) -> Dict[str, Any]:
        """What a process joining the comparison must agree on, by ``compare``'s parameter names."""
        return {"direction": self.direction, "tune": self.trials, "losses": list(self.losses),
                "seeds": len(self.seeds), "seed": self.seed, "pruner": self.pruner}


def sqlite_url(folder: Path) -> str:
    return f"sqlite:///{(folder / STUDY_FILE).resolve()}"


def default_artifacts(url: str) -> Optional[str]:
    """The artifact folder of a SQLite storage: ``<file>-artifacts`` beside its file; None for other storages."""
    if not url.startswith("sqlite:///"):
        return None
    return str(Path(url[len("sqlite:///"):]).with_suffix("")) + "-artifacts"


def _round(value: float) -> float:
    return float(f"{value:.4g}")


def suggest(trial, space: Dict[str, Hyperparameter]) -> Dict[str, Any]:
    """One value per hyperparameter (floats rounded to 4 significant digits, so that what is printed is what
    was trained)."""
    values: Dict[str, Any] = {}
    for name, h in space.items():
        if h.choices:
            values[name] = trial.suggest_categorical(name, list(h.choices))
        elif h.integer:
            values[name] = trial.suggest_int(name, int(h.low), int(h.high), log=h.log)
        else:
            values[name] = _round(trial.suggest_float(name, h.low, h.high, log=h.log))
    return values


def _quiet(optuna) -> None:
    """No per-trial log lines, no warnings about the heartbeat API being experimental, no traceback of a failed
    trial (its exception reaches the caller, which explains it)."""
    import warnings

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def open_storage(url: str, retries: int = 0):
    """The Optuna storage at ``url`` with heartbeats; a trial whose heartbeat stopped is enqueued again up to
    ``retries`` times (Optuna's retry callback); :class:`DataError` when it cannot be opened."""
    import importlib.util

    import optuna
    from sqlalchemy.exc import IntegrityError

    engine_url = url  # SQLAlchemy reads postgresql:// as psycopg2; the postgres extra installs psycopg 3
    if url.startswith("postgresql://") and importlib.util.find_spec("psycopg2") is None \
            and importlib.util.find_spec("psycopg") is not None:
        engine_url = "postgresql+psycopg://" + url[len("postgresql://"):]
    options = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {}
    if hasattr(optuna.storages, "RetryHeartbeatStaleTrialCallback"):  # its name since Optuna 4.9
        retry = {"heartbeat_stale_trial_callback": optuna.storages.RetryHeartbeatStaleTrialCallback(retries)}
    else:
        retry = {"failed_trial_callback": optuna.storages.RetryFailedTrialCallback(retries)}
    for attempt in range(3):
        try:
            storage = optuna.storages.RDBStorage(engine_url, heartbeat_interval=HEARTBEAT_SECONDS,
                                                 grace_period=GRACE_SECONDS, engine_kwargs=options, **retry)
        except Exception as error:  # SQLAlchemy raises many types for a bad URL or an unreachable database
            # Processes creating the tables of an empty database at once: the loser's error (IntegrityError on a
            # catalogue row, or "table/relation ... already exists") comes once the winner has committed them, so
            # another attempt finds them.
            if attempt < 2 and (isinstance(error, IntegrityError) or "already exists" in str(error)):
                continue
            raise DataError(f"storage={url!r} cannot be opened as an Optuna database: {type(error).__name__}: "
                            f"{str(error).splitlines()[0]}") from None
        if storage.engine.name == "sqlite":
            _immediate_transactions(storage.engine)
        return storage


def _immediate_transactions(engine) -> None:
    """SQLite: every transaction takes the write lock when it begins (``BEGIN IMMEDIATE``), so that reading a
    waiting trial and marking it running is one step that no other process interleaves (Python's ``sqlite3``
    otherwise begins a transaction only at its first write, after the read)."""
    from sqlalchemy import event

    event.listen(engine, "connect", lambda connection, record: setattr(connection, "isolation_level", None))
    event.listen(engine, "begin", lambda connection: connection.exec_driver_sql("BEGIN IMMEDIATE"))
    engine.dispose()  # connections opened while the tables were made begin the old way


def _pruner(name: Optional[str]):
    import optuna

    if name is None:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner() if name == "median" else optuna.pruners.HyperbandPruner()


def _alive(pid: int) -> bool:
    if pid <= 0:  # os.kill(0 or -1, 0) would ask about a whole process group
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child its parent has not waited for yet answers the signal, but it is gone
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):  # no /proc here, or the process ended just now
        return True


@dataclass
class Tuned:
    """The outcome of one loss's study: the best completed trial's hyperparameters (``{}`` when none completed),
    the finished trials and how many of them were pruned."""

    hyperparameters: Dict[str, Any]
    trials: int = 0
    pruned: int = 0


def assign_devices(workers: int, device: str, visible: Sequence[str]) -> List[str]:
    """The device of each worker process: round robin over the ``visible`` CUDA devices (the entries of
    ``CUDA_VISIBLE_DEVICES``, or the indices of every GPU torch sees) when ``device`` is ``"cuda"``, else
    ``device`` for all. Inside a process the visible devices are numbered from 0, so these are ordinals.

    Shape:
        - output: ``(workers,)`` device strings, e.g. ``["cuda:0", "cuda:1", "cuda:0"]``.
    """
    if device != "cuda" or not visible:
        return [device] * workers
    return [f"cuda:{k % len(visible)}" for k in range(workers)]


def visible_gpus() -> List[str]:
    """The GPUs this process may use: ``CUDA_VISIBLE_DEVICES``'s entries, or every GPU torch sees."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [entry for entry in listed.split(",") if entry.strip()]
    import torch

    return [str(k) for k in range(torch.cuda.device_count())]


def run_workers(target: Callable[..., None], args: tuple, workers: int, device: str, threads: int,
                poll: Callable[[], None]) -> int:
    """Run ``target(*args, device)`` in ``workers`` spawned processes, each on its own device from
    :func:`assign_devices` and with ``threads // workers`` torch threads; call ``poll()`` whenever one ends and
    at least every second until all have ended. Returns how many were killed by a signal (their jobs are
    retried by whoever claims next); raises ``RuntimeError`` when one failed."""
    import multiprocessing
    from multiprocessing.connection import wait

    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(workers)
    devices = assign_devices(workers, device, visible_gpus() if device == "cuda" else [])
    processes = [context.Process(target=_worker, args=(target, args, device_k, max(1, threads // workers), barrier))
                 for device_k in devices]
    for process in processes:
        process.start()
    running = {process.sentinel: process for process in processes}
    while running:
        for sentinel in wait(list(running), timeout=1.0):
            running.pop(sentinel).join()
        poll()
    failed = [p.exitcode for p in processes if p.exitcode and p.exitcode > 0]
    if failed:
        raise RuntimeError(f"{len(failed)} worker process(es) failed (exit status {failed[0]}); see their output "
                           "above")
    return sum(1 for p in processes if p.exitcode and p.exitcode < 0)


def _worker(target: Callable[..., None], args: tuple, device: str, threads: int, barrier) -> None:
    import torch

    torch.set_num_threads(threads)
    if device.startswith("cuda:"):
        torch.cuda.set_device(device)  # before anything touches CUDA: every allocation lands on this GPU
    barrier.wait()
    target(*args, device)
