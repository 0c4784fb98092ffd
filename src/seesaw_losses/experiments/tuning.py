"""Hyperparameter search per loss with Optuna, on a study that survives a killed run and serves several workers.

Each loss has its own study (``seesaw-compare:<metric>:<loss>``) in one storage (by default a SQLite file in the
report folder). A trial is scored on the user's validation split, never the held-out set. Every loss gets exactly
``trials`` finished trials, completed or pruned:

- The TPE sampler of trial ``k`` (``k`` trials finished before it) is seeded with ``seed`` and ``k``, so a run
  that is killed and resumed proposes the same hyperparameters as one that was not.
- A trial claims a slot when it starts; a claim beyond the budget (two workers starting the last slot at once) ends
  as *pruned* without training, marked ``surplus`` and not counted, so every finished trial counts once.
- A trial pruned by the pruner (``run.report``) or whose loss diverges (:class:`Diverged`) ends as *pruned*.
- Trials left running by a dead process are marked failed before new ones start: at once when the process ran on
  this machine (its pid is recorded), after Optuna's heartbeat grace period otherwise.
"""

from __future__ import annotations

import datetime
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from ..registry import Hyperparameter
from . import DataError, Diverged

HEARTBEAT_SECONDS, GRACE_SECONDS = 5, 20
STUDY_FILE = "study.db"
PRUNERS = ("median", "hyperband")


@dataclass(frozen=True)
class StudyPlan:
    """Where the studies live, how many finished trials each loss gets, in which direction, with which pruner."""

    storage: str
    trials: int
    seed: int = 0
    direction: str = "maximize"
    pruner: Optional[str] = None
    prefix: str = "seesaw-compare"

    def study_name(self, loss: str) -> str:
        return f"{self.prefix}:{loss}"


def sqlite_url(folder: Path) -> str:
    return f"sqlite:///{(folder / STUDY_FILE).resolve()}"


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


def open_storage(url: str):
    """The Optuna storage at ``url`` with heartbeats; :class:`DataError` when it cannot be opened."""
    import importlib.util

    import optuna
    from sqlalchemy.exc import IntegrityError

    engine_url = url  # SQLAlchemy reads postgresql:// as psycopg2; the postgres extra installs psycopg 3
    if url.startswith("postgresql://") and importlib.util.find_spec("psycopg2") is None \
            and importlib.util.find_spec("psycopg") is not None:
        engine_url = "postgresql+psycopg://" + url[len("postgresql://"):]
    options = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {}
    for attempt in range(3):
        try:
            return optuna.storages.RDBStorage(engine_url, heartbeat_interval=HEARTBEAT_SECONDS,
                                              grace_period=GRACE_SECONDS, engine_kwargs=options)
        except Exception as error:  # SQLAlchemy raises many types for a bad URL or an unreachable database
            # Processes creating the tables of an empty database at once: the loser's error (IntegrityError on a
            # catalogue row, or "table/relation ... already exists") comes once the winner has committed them, so
            # another attempt finds them.
            if attempt < 2 and (isinstance(error, IntegrityError) or "already exists" in str(error)):
                continue
            raise DataError(f"storage={url!r} cannot be opened as an Optuna database: {type(error).__name__}: "
                            f"{str(error).splitlines()[0]}") from None


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
    return True


def _fail_dead_trials(study) -> None:
    """Mark failed the trials still running for a process of this machine that no longer exists, and those whose
    heartbeat stopped longer than the grace period ago."""
    import optuna
    from optuna.trial import TrialState

    host, now = socket.gethostname(), datetime.datetime.now()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if "pid" in trial.user_attrs:
            dead = trial.user_attrs.get("host") == host and not _alive(int(trial.user_attrs["pid"]))
        else:  # killed before it recorded its process (and maybe before its first heartbeat)
            started = trial.datetime_start or now
            dead = (now - started).total_seconds() > GRACE_SECONDS
        if dead:
            study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
    optuna.storages.fail_stale_trials(study)


def finished(study) -> list:
    """The trials that count in the budget: completed and pruned (surplus claims left out)."""
    from optuna.trial import TrialState

    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
            if not t.user_attrs.get("surplus")]


@dataclass
class Tuned:
    """The outcome of one loss's study: the best completed trial's hyperparameters (``{}`` when none completed),
    the finished trials and how many of them were pruned."""

    hyperparameters: Dict[str, Any]
    trials: int = 0
    pruned: int = 0


Objective = Callable[[Any, Dict[str, Any]], float]
"""``objective(trial, hyperparameters) -> validation value``; raises ``optuna.TrialPruned`` to prune."""


WORKER_SEED_STEP = 7_919  #: between the sampler seeds of two workers: more than any study's trials


def tune(loss: str, space: Dict[str, Hyperparameter], plan: StudyPlan, objective: Objective, worker: int = 0
         ) -> Tuned:
    """Run trials of ``loss`` over ``space`` until its study has ``plan.trials`` finished ones; return the best
    completed trial's hyperparameters (the earliest among equals). Each sampler is seeded by the plan, the trials
    finished and ``worker`` (0 in the comparing process, 1, 2, ... in worker processes), so that workers that
    start a trial at the same moment propose different hyperparameters, and one process stays reproducible."""
    import optuna
    from optuna.trial import TrialState

    _quiet(optuna)
    storage = open_storage(plan.storage)
    name = plan.study_name(loss)
    study = optuna.create_study(study_name=name, storage=storage, direction=plan.direction, load_if_exists=True)
    while space:
        _fail_dead_trials(study)
        done = len(finished(study))
        if done >= plan.trials:
            break
        if done + len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))) >= plan.trials:
            time.sleep(1.0)  # the remaining trials are running elsewhere: wait for them (or for them to die)
            continue
        sampler = optuna.samplers.TPESampler(seed=plan.seed * 1_000_003 + done + WORKER_SEED_STEP * worker,
                                             n_startup_trials=max(1, min(10, plan.trials // 2)))
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=_pruner(plan.pruner))

        def counted(trial) -> float:
            trial.set_user_attr("host", socket.gethostname())
            trial.set_user_attr("pid", os.getpid())
            claimed = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED,
                                                                            TrialState.RUNNING))
                       if t.number <= trial.number and not t.user_attrs.get("surplus")]
            if len(claimed) > plan.trials:
                trial.set_user_attr("surplus", True)
                raise optuna.TrialPruned("the study already has its trials")
            values = suggest(trial, space)
            trial.set_user_attr("hyperparameters", values)
            try:
                return objective(trial, values)
            except Diverged as error:  # these hyperparameters diverge: pruned, and the search goes on
                trial.set_user_attr("diverged", str(error))
                raise optuna.TrialPruned(str(error)) from None

        study.optimize(counted, n_trials=1)
    trials = finished(study)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    pruned = len(trials) - len(complete)
    if not complete:
        return Tuned({}, len(trials), pruned)
    sign = 1 if plan.direction == "maximize" else -1
    best = max(complete, key=lambda t: (sign * t.value, -t.number))
    return Tuned(dict(best.user_attrs["hyperparameters"]), len(trials), pruned)


def delete_studies(losses: Sequence[str], plan: StudyPlan) -> None:
    """Remove the studies of ``losses`` under ``plan`` from its storage (those that exist): a fresh start."""
    import optuna

    _quiet(optuna)
    storage = open_storage(plan.storage)
    for loss in losses:
        try:
            optuna.delete_study(study_name=plan.study_name(loss), storage=storage)
        except KeyError:
            pass


def missing_trials(losses: Sequence[str], plan: StudyPlan) -> int:
    """How many trials the studies of ``losses`` (those with something to tune) still need."""
    import optuna

    _quiet(optuna)
    storage = open_storage(plan.storage)
    missing = 0
    for loss in losses:
        try:
            study = optuna.load_study(study_name=plan.study_name(loss), storage=storage)
            missing += max(0, plan.trials - len(finished(study)))
        except KeyError:
            missing += plan.trials
    return missing


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
                poll: Callable[[], None]) -> None:
    """Run ``target(*args, device, worker)`` in ``workers`` spawned processes (``worker`` = 1, 2, ...), each on its own device from
    :func:`assign_devices` and with ``threads // workers`` torch threads; call ``poll()`` every second until all
    have ended. Raises ``RuntimeError`` when one fails."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(workers)
    devices = assign_devices(workers, device, visible_gpus() if device == "cuda" else [])
    processes = [context.Process(target=_worker, args=(target, args, device_k, max(1, threads // workers), barrier,
                                                       k + 1)) for k, device_k in enumerate(devices)]
    for process in processes:
        process.start()
    while any(process.is_alive() for process in processes):
        time.sleep(1.0)
        poll()
    for process in processes:
        process.join()
    failed = [p.exitcode for p in processes if p.exitcode]
    if failed:
        raise RuntimeError(f"{len(failed)} tuning worker(s) failed (exit status {failed[0]}); see their output above")


def _worker(target: Callable[..., None], args: tuple, device: str, threads: int, barrier, worker: int) -> None:
    import torch

    torch.set_num_threads(threads)
    if device.startswith("cuda:"):
        torch.cuda.set_device(device)  # before anything touches CUDA: every allocation lands on this GPU
    barrier.wait()
    target(*args, device, worker)
