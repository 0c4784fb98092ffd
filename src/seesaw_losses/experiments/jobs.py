"""Every training of a comparison as a job in one Optuna storage, claimed by whichever process asks first.

A comparison (its :class:`~.tuning.StudyPlan`) keeps, in one storage:

- a *settings* study whose user attributes hold the comparison's settings (direction, budget, losses, seeds,
  pruner): its creator (the one process whose ``create_study`` succeeds) enqueues every job known at the start,
  then marks it ``ready``; every later process checks its own settings against these;
- per tunable loss a *tuning* study holding ``trials`` enqueued empty trials, whose hyperparameters the sampler
  proposes when a worker claims one;
- per loss a *finals* study holding one enqueued trial per seed with the tuned hyperparameters; for a tuned loss
  it is made by the process that finishes the loss's last tuning trial (again one creator: ``create_study``).

A worker claims a job by moving a waiting trial to running (one atomic update in an RDB storage), trains it, and
writes its outcome into the trial: the metrics as user attributes, the per-sample scores, curves and plot inputs
as one artifact in the comparison's artifact folder (Optuna's artifact store). The report is built from the
storage alone, by any process, once every final run is complete. A running job sends heartbeats; a job whose
process died (on this machine: its process is gone; elsewhere: its heartbeat stopped for the grace period) is
failed and enqueued once more by Optuna's retry callback, once.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import pickle
import socket
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Protocol, Tuple

from . import DataError
from .tuning import GRACE_SECONDS, HEARTBEAT_SECONDS, StudyPlan, Tuned, _alive, _pruner, _quiet, open_storage

WAIT_SECONDS = 0.5  #: between two looks at the storage while the only jobs left run elsewhere
READY_TIMEOUT = 120.0  #: how long a process waits for the comparison's creator to enqueue the first jobs
TUNING, FINAL = "tuning", "final"
RETRIES = 1  #: how many times a job whose process died is enqueued again


def sampler_seed(seed: int, loss: str, trial: int) -> int:
    """The TPE sampler's seed for trial number ``trial`` of ``loss`` in a comparison seeded with ``seed``: a hash
    of the three in ``[0, 2**32)``, so any ``seed`` works, concurrent trials (and losses) draw differently and
    one process is reproducible."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{loss}:{trial}".encode()).digest()[:4], "little")


class Runner(Protocol):
    """What a worker calls to train a job: :class:`~.api._Job` in a comparison."""

    def tuning_trial(self, loss: str, trial: Any, device: str) -> float:
        """Train one tuning trial of ``loss``; return the validation value or raise ``optuna.TrialPruned``."""

    def final_run(self, loss: str, hyperparameters: Dict[str, Any], seed: int, device: str) -> Any:
        """Train one final run; return its :class:`~.run.Run` (metrics filled)."""


@dataclass(frozen=True)
class Job:
    """A claimed job: which study, which loss, which trial."""

    kind: str
    loss: str
    study_name: str
    trial_id: int
    number: int


@dataclass
class FinalRecord:
    """One finished final run as the storage holds it."""

    seed: int
    metrics: Dict[str, float]
    outcome: Dict[str, Any]  #: ``seconds``, ``history``, ``artifacts``, ``samples`` of the run


class Comparison:
    """The jobs of one comparison in ``plan.storage``; see the module's docstring."""

    def __init__(self, plan: StudyPlan):
        import optuna

        _quiet(optuna)
        self.plan = plan
        self.storage = open_storage(plan.storage, retries=RETRIES)
        self.store = optuna.artifacts.FileSystemArtifactStore(str(plan.artifacts))
        os.makedirs(plan.artifacts, exist_ok=True)
        self._studies: Dict[str, Any] = {}

    # -- set-up ------------------------------------------------------------------------------------------------

    def open(self, *, resume: bool = False, fresh: bool = False, report: Optional[Dict[str, Any]] = None) -> None:
        """Create the comparison in the storage, or join the one there (its settings must equal the plan's;
        ``resume`` enqueues again the jobs that failed without a retry left); ``fresh`` deletes it first.
        ``report`` (what the report needs beyond the runs: titles, class counts, ...) is kept with the settings
        by the process that creates the comparison."""
        import optuna

        if fresh:
            self.delete()
        names = set(optuna.get_all_study_names(self.storage))
        if self.plan.settings_name not in names and names & {self.plan.study_name(loss) for loss in self.plan.losses}:
            raise DataError(f"compare: storage={self.plan.storage!r} holds tuning studies of this comparison without "
                            "its settings (made by an earlier version); pass fresh=True to start it again")
        try:
            settings = optuna.create_study(study_name=self.plan.settings_name, storage=self.storage)
        except optuna.exceptions.DuplicatedStudyError:
            settings = optuna.load_study(study_name=self.plan.settings_name, storage=self.storage)
            if not resume:
                self._check_settings(self._wait_ready(settings))
                return
            attrs = self.storage.get_study_user_attrs(settings._study_id)
            if "settings" in attrs:
                self._check_settings(attrs["settings"])
            else:  # its creator stopped before it wrote them
                settings.set_user_attr("settings", self.plan.settings())
                settings.set_user_attr("report", report or {})
            self._enqueue_missing()
            settings.set_user_attr("ready", True)
            return
        settings.set_user_attr("settings", self.plan.settings())
        settings.set_user_attr("report", report or {})
        for loss in self.plan.tunable:
            study = optuna.create_study(study_name=self.plan.study_name(loss), storage=self.storage,
                                        direction=self.plan.direction)
            for _ in range(self.plan.trials):
                study.enqueue_trial({}, skip_if_exists=False)
        for loss in self.plan.losses:
            if loss not in self.plan.tunable:
                self._open_finals(loss, {})
        settings.set_user_attr("ready", True)

    @staticmethod
    def stored(storage: str, settings_name: str) -> Tuple[Dict[str, Any], Dict[str, Any]]:
        """The settings and the report's details kept in the settings study ``settings_name`` of ``storage``."""
        import optuna

        _quiet(optuna)
        attrs = optuna.load_study(study_name=settings_name, storage=open_storage(storage)).user_attrs
        return attrs["settings"], attrs["report"]

    def delete(self) -> None:
        """Remove every study of this comparison from the storage (those that exist)."""
        import optuna

        names = set(optuna.get_all_study_names(self.storage))
        for name in [self.plan.settings_name] + [self.plan.study_name(loss) for loss in self.plan.losses] \
                + [self.plan.finals_name(loss) for loss in self.plan.losses]:
            if name in names:
                optuna.delete_study(study_name=name, storage=self.storage)
        self._studies.clear()

    def _wait_ready(self, settings) -> Dict[str, Any]:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            attrs = self.storage.get_study_user_attrs(settings._study_id)
            if attrs.get("ready"):
                return attrs["settings"]
            if time.monotonic() > deadline:
                raise DataError(f"compare: storage={self.plan.storage!r} holds a comparison that was never set up (the "
                                "process that created it stopped); pass resume=True in one process to finish it, or "
                                "fresh=True to replace it")
            time.sleep(0.1)  # the creator is enqueueing the first jobs: a moment

    def _check_settings(self, stored: Dict[str, Any]) -> None:
        mine = self.plan.settings()
        for name, value in mine.items():
            if stored.get(name) != value:
                if name == "losses":
                    got = ", ".join(stored.get(name) or [])
                    raise DataError(f"compare: the study in storage holds a comparison of other losses ({got}); "
                                     "pass the same losses=, fresh=True to replace it, or another storage")
                raise DataError(f"compare: the study in storage was made with {name}={stored.get(name)!r}, not "
                                 f"{name}={value!r}; pass the same {name}=, fresh=True to replace it, or another "
                                 "storage")

    def _enqueue_missing(self) -> None:
        """Enqueue the jobs that have no trial waiting, running or finished (their trials failed without a
        retry, or the comparison's creator stopped before it enqueued them): tuning trials up to the budget,
        final runs for the seeds without one."""
        from optuna.trial import TrialState

        import optuna

        for loss in self.plan.tunable:
            study = optuna.create_study(study_name=self.plan.study_name(loss), storage=self.storage,
                                        direction=self.plan.direction, load_if_exists=True)
            self._fail_dead(study)
            alive = study.get_trials(deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING,
                                                            TrialState.COMPLETE, TrialState.PRUNED))
            for _ in range(self.plan.trials - len(alive)):
                study.enqueue_trial({}, skip_if_exists=False)
        for loss in self.plan.losses:
            study = self._study(self.plan.finals_name(loss), missing_ok=True)
            if study is None:
                continue
            self._fail_dead(study)
            taken = {t.user_attrs.get("seed") for t in study.get_trials(
                deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE))}
            self._enqueue_finals(study, [seed for seed in self.plan.seeds if seed not in taken])

    def _open_finals(self, loss: str, hyperparameters: Dict[str, Any]) -> None:
        """Create the finals study of ``loss`` with one job per seed, unless another process did."""
        import optuna

        try:
            study = optuna.create_study(study_name=self.plan.finals_name(loss), storage=self.storage,
                                        direction=self.plan.direction)
        except optuna.exceptions.DuplicatedStudyError:
            return
        study.set_user_attr("creator", [socket.gethostname(), os.getpid(), time.time()])
        study.set_user_attr("hyperparameters", hyperparameters)
        self._enqueue_finals(study, list(self.plan.seeds))

    def _enqueue_finals(self, study, seeds: List[int]) -> None:
        for seed in seeds:
            study.enqueue_trial({}, user_attrs={"seed": seed}, skip_if_exists=False)
        study.set_user_attr("ready", True)

    def _finish_stalled_finals(self, study) -> None:
        """A finals study whose creator died before it enqueued every seed (on this machine: its process is
        gone; elsewhere: the grace period passed): enqueue the seeds it has no trial for."""
        from optuna.trial import TrialState

        attrs = self.storage.get_study_user_attrs(study._study_id)
        if attrs.get("ready") or "hyperparameters" not in attrs:
            return
        host, pid, created = attrs["creator"]
        if (host == socket.gethostname() and _alive(pid)) or (host != socket.gethostname()
                                                              and time.time() - created < GRACE_SECONDS):
            return
        taken = {t.user_attrs.get("seed") for t in study.get_trials(deepcopy=False) if t.state != TrialState.FAIL}
        self._enqueue_finals(study, [seed for seed in self.plan.seeds if seed not in taken])

    # -- the storage ---------------------------------------------------------------------------------------------

    def _study(self, name: str, missing_ok: bool = False):
        import optuna

        if name not in self._studies:
            try:
                self._studies[name] = optuna.load_study(study_name=name, storage=self.storage)
            except KeyError:
                if missing_ok:
                    return None
                raise
        return self._studies[name]

    def _fail_dead(self, study) -> None:
        """Fail (and enqueue once more) the running trials of processes of this machine that no longer exist,
        and those whose heartbeat stopped for the grace period."""
        import optuna
        from optuna.trial import TrialState

        host, now = socket.gethostname(), datetime.datetime.now()
        retry = (self.storage.get_heartbeat_stale_trial_callback()
                 if hasattr(optuna.storages, "RetryHeartbeatStaleTrialCallback")
                 else self.storage.get_failed_trial_callback())
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            process = trial.user_attrs.get("process")
            if process and process[2] == trial.number:
                dead = process[0] == host and not _alive(process[1])
            else:  # killed between its claim and its first record (a retried trial's copied record is not its own)
                dead = (now - (trial.datetime_start or now)).total_seconds() > GRACE_SECONDS
            if dead:
                try:
                    failed = self.storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
                except optuna.exceptions.UpdateFinishedTrialError:
                    failed = False  # another process failed it first
                if failed:
                    retry(study, self.storage.get_trial(trial._trial_id))
        optuna.storages.fail_stale_trials(study)

    def _pop(self, study) -> Optional[Tuple[int, int]]:
        """Claim a waiting trial of ``study``, a retried one first (so that the trials after it see the history
        they would have seen): ``(trial id, number)``, or None when none is left."""
        import optuna
        from optuna.trial import TrialState

        waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        for trial in sorted(waiting, key=lambda t: ("failed_trial" not in t.system_attrs, t.number)):
            try:
                if self.storage.set_trial_state_values(trial._trial_id, state=TrialState.RUNNING):
                    return trial._trial_id, trial.number
            except optuna.exceptions.UpdateFinishedTrialError:
                pass  # claimed and finished by another process since the list was read
        return None

    def _tuning_done(self, loss: str) -> bool:
        return len(self._finished(self._study(self.plan.study_name(loss)))) >= self.plan.trials

    @staticmethod
    def _finished(study) -> list:
        from optuna.trial import TrialState

        return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))

    def tuned(self, loss: str) -> Tuned:
        """The best completed tuning trial's hyperparameters of ``loss`` (the earliest among equals; ``{}``
        when none completed), with the count of finished and pruned trials."""
        from optuna.trial import TrialState

        if loss not in self.plan.tunable:
            return Tuned({})
        trials = self._finished(self._study(self.plan.study_name(loss)))
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        if not complete:
            return Tuned({}, len(trials), len(trials))
        sign = 1 if self.plan.direction == "maximize" else -1
        best = max(complete, key=lambda t: (sign * t.value, -t.number))
        return Tuned(dict(best.user_attrs["hyperparameters"]), len(trials), len(trials) - len(complete))

    # -- claiming and running ------------------------------------------------------------------------------------

    def claim(self) -> Optional[Job]:
        """The next job, claimed: a tuning trial while any waits, else a final run; None when none waits, even
        after the jobs of dead processes were failed and enqueued again."""
        return self._claim(check_dead=False) or self._claim(check_dead=True)

    def _claim(self, check_dead: bool) -> Optional[Job]:
        for loss in self.plan.tunable:
            name = self.plan.study_name(loss)
            study = self._study(name)
            if check_dead:
                self._fail_dead(study)
            popped = self._pop(study)
            if popped is not None:
                return Job(TUNING, loss, name, *popped)
        for loss in self.plan.losses:
            study = self._study(self.plan.finals_name(loss), missing_ok=True)
            if study is None and check_dead and self._tuning_done(loss):
                self._open_finals(loss, self.tuned(loss).hyperparameters)  # its creator died before making it
                study = self._study(self.plan.finals_name(loss))
            if study is None:
                continue
            if check_dead:
                self._finish_stalled_finals(study)
                self._fail_dead(study)
            popped = self._pop(study)
            if popped is not None:
                return Job(FINAL, loss, self.plan.finals_name(loss), *popped)
        return None

    def run(self, job: Job, runner: Runner, device: str) -> None:
        """Train ``job`` and record its outcome; an exception of ``train`` fails the trial and propagates."""
        import optuna
        from optuna.trial import TrialState

        self.storage.set_trial_user_attr(job.trial_id, "process", [socket.gethostname(), os.getpid(), job.number])
        if job.kind == TUNING:
            sampler = optuna.samplers.TPESampler(seed=sampler_seed(self.plan.seed, job.loss, job.number),
                                                 constant_liar=True,
                                                 n_startup_trials=max(1, min(10, self.plan.trials // 2)))
            study = optuna.load_study(study_name=job.study_name, storage=self.storage, sampler=sampler,
                                      pruner=_pruner(self.plan.pruner))
        else:
            study = self._study(job.study_name)
        with self._heartbeat(job.trial_id):
            try:
                if job.kind == TUNING:
                    trial = optuna.Trial(study, job.trial_id)
                    sampler.before_trial(study, self.storage.get_trial(job.trial_id))
                    try:
                        study.tell(job.number, runner.tuning_trial(job.loss, trial, device))
                    except optuna.TrialPruned:
                        study.tell(job.number, state=TrialState.PRUNED)
                else:
                    frozen = self.storage.get_trial(job.trial_id)
                    seed = frozen.user_attrs["seed"]
                    hyperparameters = self.storage.get_study_user_attrs(study._study_id)["hyperparameters"]
                    run = runner.final_run(job.loss, hyperparameters, seed, device)
                    self._record(frozen, run)
                    study.tell(job.number, run.metrics[self.plan.metric])
            except BaseException:
                if self.storage.get_trial(job.trial_id).state == TrialState.RUNNING:
                    self.storage.set_trial_user_attr(job.trial_id, "raised", True)  # no retry comes
                    study.tell(job.number, state=TrialState.FAIL)
                raise
        if job.kind == TUNING and self._tuning_done(job.loss):
            self._open_finals(job.loss, self.tuned(job.loss).hyperparameters)

    @contextmanager
    def _heartbeat(self, trial_id: int) -> Iterator[None]:
        stop = threading.Event()

        def beat() -> None:
            while True:
                self.storage.record_heartbeat(trial_id)
                if stop.wait(HEARTBEAT_SECONDS):
                    return

        thread = threading.Thread(target=beat, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _record(self, trial, run) -> None:
        """The final run's metrics as user attributes, the rest of its outcome as an artifact."""
        import optuna

        outcome = {"seconds": run.seconds, "device": run.device, "history": run.history,
                   "artifacts": run.artifacts, "samples": run.samples}
        with tempfile.NamedTemporaryFile(suffix=".pkl", delete=False) as file:
            pickle.dump(outcome, file)
        try:
            artifact = optuna.artifacts.upload_artifact(artifact_store=self.store, file_path=file.name,
                                                        study_or_trial=trial, storage=self.storage)
        finally:
            os.unlink(file.name)
        self.storage.set_trial_user_attr(trial._trial_id, "metrics", run.metrics)
        self.storage.set_trial_user_attr(trial._trial_id, "artifact", artifact)

    def work(self, runner: Runner, device: str) -> int:
        """Claim and train jobs until none waits, then wait for the jobs running elsewhere (and train those they
        unlock or that are retried) until the comparison is complete. Returns the jobs trained here. Raises
        :class:`DataError` when jobs failed and nothing is left to finish them."""
        trained = 0
        while True:
            job = self.claim()
            if job is not None:
                self.run(job, runner, device)
                trained += 1
                continue
            running = self._running()  # before complete(): a job that ends in between is then counted complete
            if self.complete():
                return trained
            if not running:
                raise DataError(f"compare: {self._failed_text()}; pass resume=True to train them again")
            time.sleep(WAIT_SECONDS)

    def _running(self) -> bool:
        """Whether a job waits or runs anywhere, or final runs are about to be enqueued: a loss's tuning is done
        and its finals study is missing (the next claim makes it) or not ready (its creator is enqueueing)."""
        from optuna.trial import TrialState

        names = [self.plan.study_name(loss) for loss in self.plan.tunable] + \
                [self.plan.finals_name(loss) for loss in self.plan.losses]
        studies = [study for study in (self._study(name, missing_ok=True) for name in names) if study is not None]
        if any(study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING))
               or self._retry_pending(study) for study in studies):
            return True
        for loss in self.plan.losses:
            finals = self._study(self.plan.finals_name(loss), missing_ok=True)
            if finals is None and loss in self.plan.tunable and self._tuning_done(loss):
                return True
            if finals is not None and not self.storage.get_study_user_attrs(finals._study_id).get("ready"):
                return True
        return False

    @staticmethod
    def _retry_pending(study) -> bool:
        """Whether a trial of ``study`` whose process died was failed within the grace period, with a retry left
        and none enqueued yet: the process that failed it enqueues the retry right after (two writes, not one),
        and one that looks in between must wait for it rather than take the job for lost."""
        from optuna.trial import TrialState

        trials = study.get_trials(deepcopy=False)
        retried = {number for trial in trials for number in trial.system_attrs.get("retry_history", ())}
        now = datetime.datetime.now()
        return any(trial.state == TrialState.FAIL and not trial.user_attrs.get("raised") and trial.number not in retried
                   and len(trial.system_attrs.get("retry_history", ())) < RETRIES
                   and (now - (trial.datetime_complete or now)).total_seconds() < GRACE_SECONDS
                   for trial in trials)

    def _failed_text(self) -> str:
        from optuna.trial import TrialState

        failed = []
        for name in [self.plan.study_name(loss) for loss in self.plan.tunable] + \
                [self.plan.finals_name(loss) for loss in self.plan.losses]:
            study = self._study(name, missing_ok=True)
            if study is not None:
                failed += [f"{name} trial {t.number}"
                           for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))]
        return f"{len(failed)} job(s) failed ({', '.join(failed[:3])}{', ...' if len(failed) > 3 else ''})"

    def remaining(self) -> int:
        """Jobs not finished: tuning trials left, and the final runs not complete (those of a loss still in
        tuning included)."""
        from optuna.trial import TrialState

        left = 0
        for loss in self.plan.tunable:
            left += max(0, self.plan.trials - len(self._finished(self._study(self.plan.study_name(loss)))))
        for loss in self.plan.losses:
            study = self._study(self.plan.finals_name(loss), missing_ok=True)
            done = 0 if study is None else len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
            left += max(0, len(self.plan.seeds) - done)
        return left

    def complete(self) -> bool:
        return self.remaining() == 0

    # -- results -------------------------------------------------------------------------------------------------

    def finals(self, loss: str) -> List[FinalRecord]:
        """The complete final runs of ``loss``, one per seed in seed order (the earliest of a seed retried)."""
        from optuna.trial import TrialState

        study = self._study(self.plan.finals_name(loss))
        by_seed: Dict[int, Any] = {}
        for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            by_seed.setdefault(trial.user_attrs["seed"], trial)
        records = []
        for seed in self.plan.seeds:
            trial = by_seed[seed]
            with self.store.open_reader(trial.user_attrs["artifact"]) as reader:
                outcome = pickle.load(reader)
            records.append(FinalRecord(seed, dict(trial.user_attrs["metrics"]), outcome))
        return records
