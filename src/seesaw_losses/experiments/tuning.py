"""Hyperparameter search per loss with Optuna, on a study that survives a killed run and serves several workers.

Each loss has its own study (``seesaw-compare:<task>:<loss>``) in one storage (by default a SQLite file in the report
folder). A trial trains on the training split and is scored on the validation split, never the held-out set.
Every loss gets exactly ``trials`` completed trials:

- The TPE sampler of trial ``k`` (``k`` trials completed before it) is seeded with ``seed`` and ``k``, so a run
  that is killed and resumed proposes the same hyperparameters as one that was not.
- A trial claims a slot when it starts; a claim beyond the budget (two workers starting the last slot at once) ends
  as *pruned* without training, so every completed trial counts once.
- A trial whose loss diverges scores 0 (the worst) instead of ending the search.
- Trials left running by a dead process are marked failed before new ones start: at once when the process ran on
  this machine (its pid is recorded), after Optuna's heartbeat grace period otherwise.
"""

from __future__ import annotations

import datetime
import math
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Sequence, Tuple

from ..registry import Hyperparameter
from . import DataError
from .comparison import Task
from .losses import LossSpec, search_space, with_hyperparameters
from .progress import QUIET, Tracker

HEARTBEAT_SECONDS, GRACE_SECONDS = 5, 20
STUDY_FILE = "study.db"


@dataclass(frozen=True)
class StudyPlan:
    """Where the studies live and how many completed trials each loss gets."""

    storage: str
    trials: int
    seed: int = 0


def sqlite_url(folder: Path) -> str:
    return f"sqlite:///{(folder / STUDY_FILE).resolve()}"


def study_name(task: Task, spec: LossSpec) -> str:
    return f"seesaw-compare:{task.kind}:{spec.text}"


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
    """No per-trial log lines, no warnings about the heartbeat API being experimental."""
    import warnings

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def _storage(url: str):
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
            # Processes creating the tables of an empty database at once: the loser's IntegrityError comes once
            # the winner has committed them, so another attempt finds them.
            if isinstance(error, IntegrityError) and attempt < 2:
                continue
            raise DataError(f"--storage {url!r} cannot be opened as an Optuna database: {type(error).__name__}: "
                            f"{str(error).splitlines()[0]}") from None


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


def completed(study) -> list:
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def tune(task: Task, spec: LossSpec, plan: StudyPlan, tracker: Tracker = QUIET) -> Tuple[Dict[str, Any], int]:
    """Run trials of ``spec`` until its study has ``plan.trials`` completed ones; return the best trial's
    hyperparameters (the earliest among equals) and the number of completed trials."""
    import optuna
    from optuna.trial import TrialState

    _quiet(optuna)
    space = search_space(spec)
    storage = _storage(plan.storage)
    name = study_name(task, spec)
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True)
    while space:
        _fail_dead_trials(study)
        done = len(completed(study))
        if done >= plan.trials:
            break
        if done + len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))) >= plan.trials:
            time.sleep(1.0)  # the remaining trials are running elsewhere: wait for them (or for them to die)
            continue
        sampler = optuna.samplers.TPESampler(seed=plan.seed * 1_000_003 + done,
                                             n_startup_trials=max(1, min(10, plan.trials // 2)))
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)

        def objective(trial) -> float:
            trial.set_user_attr("host", socket.gethostname())
            trial.set_user_attr("pid", os.getpid())
            claimed = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
                       if t.number <= trial.number]
            if len(claimed) > plan.trials:
                raise optuna.TrialPruned("the study already has its trials")
            values = suggest(trial, space)
            trial.set_user_attr("hyperparameters", values)
            built = task.build(with_hyperparameters(spec, values))
            try:
                run = task.train(task.data, built, task.settings, test=False, tracker=tracker,
                                 description=f"{spec.text} · trial {trial.number + 1}/{plan.trials}")
            except DataError as error:  # these hyperparameters diverge: the worst score, and the search goes on
                trial.set_user_attr("diverged", str(error))
                return 0.0
            return run.validation_score if not math.isnan(run.validation_score) else 0.0

        study.optimize(objective, n_trials=1)
    trials = completed(study)
    if not trials:
        return {}, 0
    best = max(trials, key=lambda t: (t.value, -t.number))
    return dict(best.user_attrs["hyperparameters"]), len(trials)


def tune_all(task: Task, specs: Sequence[LossSpec], plan: StudyPlan, tracker: Tracker = QUIET
             ) -> Dict[str, Tuple[Dict[str, Any], int]]:
    """:func:`tune` for every loss, in order: ``{spec.text: (hyperparameters, completed trials)}``."""
    return {spec.text: tune(task, spec, plan, tracker) for spec in specs}


def _worker(task: Task, specs: Sequence[LossSpec], plan: StudyPlan, threads: int, barrier) -> None:
    import torch

    torch.set_num_threads(threads)
    barrier.wait()
    tune_all(task, specs, plan)


def tune_with_workers(task: Task, specs: Sequence[LossSpec], plan: StudyPlan, workers: int, threads: int,
                      tracker: Tracker = QUIET) -> Dict[str, Tuple[Dict[str, Any], int]]:
    """Run ``workers`` local processes on the studies until each has its trials (the tracker advances by a
    trial's epochs as each completes); then read the results."""
    import multiprocessing
    import time

    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(workers)
    processes = [context.Process(target=_worker, args=(task, list(specs), plan, max(1, threads // workers), barrier))
                 for _ in range(workers)]
    for process in processes:
        process.start()
    missing = plan_trials(task, specs, plan)
    while any(process.is_alive() for process in processes):
        time.sleep(1.0)
        now = plan_trials(task, specs, plan)
        tracker.advance_plan(task.settings.epochs * (missing - now))
        missing = now
    for process in processes:
        process.join()
    failed = [p.exitcode for p in processes if p.exitcode]
    if failed:
        raise RuntimeError(f"{len(failed)} tuning worker(s) failed (exit status {failed[0]}); see their output above")
    return tune_all(task, specs, plan)


def plan_trials(task: Task, specs: Sequence[LossSpec], plan: StudyPlan) -> int:
    """How many trials the studies still need (what the progress display adds to its plan)."""
    import optuna

    _quiet(optuna)
    storage = _storage(plan.storage)
    missing = 0
    for spec in specs:
        if not search_space(spec):
            continue
        try:
            study = optuna.load_study(study_name=study_name(task, spec), storage=storage)
            missing += max(0, plan.trials - len(completed(study)))
        except KeyError:
            missing += plan.trials
    return missing
