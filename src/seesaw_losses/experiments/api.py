"""``compare(train, losses, metric=...)``: which loss wins on the user's own model and training loop.

The user writes ``train(criterion, run) -> {metric: value}``; :func:`compare` calls it for every tuning trial
(Optuna TPE per loss, on the user's validation split) and for ``seeds`` final runs of each loss's best
configuration (the same seeds for every loss), then ranks the losses with the statistics of
:mod:`.statistics`. The built-in trainers of ``seesaw compare`` and ``seesaw demo`` are such functions.
"""

from __future__ import annotations

import math
import pickle
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from . import CUSTOM, DataError, tuning
from .losses import BuiltLoss, LossSpec, build, parse_losses, search_space, with_hyperparameters
from .progress import QUIET, Tracker
from .reporting.report import check_report_folder, save_report
from .result import Comparison, Ranked
from .run import SIGMOID, SOFTMAX, Run, Trainer, checked_metrics
from .statistics import MARGIN, SampleScores, Summary, summarize

DIRECTIONS = ("maximize", "minimize")
HELD_OUT = ("outputs", "masks", "images")  #: the artifacts kept for the first seed only (the plots draw that seed)


class Result(Comparison):
    """The :class:`~seesaw_losses.experiments.result.Comparison` that :func:`compare` returns: ``str(result)`` is
    the table the CLI prints and :meth:`save` writes the report folder."""

    def __str__(self) -> str:
        from .reporting.report import format_tables

        return format_tables(self)

    def save(self, folder: Union[str, Path]) -> List[Path]:
        """Write ``report.md``, ``results.json``, ``winner.json``/``.yaml``/``_mmengine.py``, the CSV and the plots
        the runs kept artifacts for into ``folder``; return the paths written (a full disk: a ``ReportError``
        that keeps this result)."""
        return save_report(self, Path(folder))


def simplicity(spec: LossSpec) -> Tuple[int, int]:
    """``(terms, tunable hyperparameters)`` of a loss, from the registry: smaller is simpler."""
    from ..registry import get_loss

    return len(spec.terms), sum(len(get_loss(name).search_space) for name in spec.names)


@dataclass
class _Job:
    """Everything a tuning worker needs (picklable when ``train`` is): how to build a loss and call ``train``."""

    train: Callable[[Any, Run], Mapping[str, float]]
    metric: str
    class_counts: Optional[List[int]]
    ignore_index: Optional[int]
    epochs: Optional[int]
    plan: Optional[tuning.StudyPlan]
    tracker: Tracker = field(default=QUIET, repr=False)

    def __getstate__(self) -> Dict[str, Any]:
        return {**self.__dict__, "tracker": QUIET}

    @property
    def units(self) -> int:
        """Progress steps of one call: its epochs when known, else one."""
        return self.epochs or 1

    def build(self, spec: LossSpec, values: Mapping[str, Any]) -> BuiltLoss:
        return build(with_hyperparameters(spec, values), self.class_counts, ignore_index=self.ignore_index,
                     epochs=self.epochs)

    def call(self, spec: LossSpec, values: Mapping[str, Any], *, seed: int, trial: Any, device: str,
             description: str) -> Run:
        """Build the loss with ``values`` and call ``train`` once: a tuning trial when ``trial`` is given."""
        built = self.build(spec, values)
        run = Run(seed, trial is not None, built.config, dict(values), trial, device, spec.family)
        with self.tracker.run(description, self.units) as advance:
            done = [0]

            def step(text: str) -> None:
                if done[0] < self.units:
                    done[0] += 1
                    advance(text)

            run.on_progress = step
            start = time.perf_counter()
            try:
                returned = self.train(built.module, run)
            finally:
                while done[0] < self.units:
                    step("")
            run.seconds = time.perf_counter() - start
            run.metrics = checked_metrics(returned, self.metric, spec.text, seed=seed,
                                          trial=None if trial is None else trial.number + 1)
            advance.result = f"{self.metric} {run.metrics[self.metric]:.4f}"  # the run's log line: what it scored
        if self.epochs:
            run.artifacts.setdefault("epoch_seconds", run.seconds / self.epochs)
        return run

    def tune(self, spec: LossSpec, device: str = "cpu", worker: int = 0) -> tuning.Tuned:
        plan = self.plan

        def objective(trial, values: Dict[str, Any]) -> float:
            run = self.call(spec, values, seed=plan.seed, trial=trial, device=device,
                            description=f"{spec.text} · trial {trial.number + 1}/{plan.trials}")
            return run.metrics[self.metric]

        return tuning.tune(spec.text, search_space(spec), plan, objective, worker)

    def tune_all(self, specs: Sequence[LossSpec], device: str = "cpu", worker: int = 0) -> Dict[str, tuning.Tuned]:
        return {spec.text: self.tune(spec, device, worker) for spec in specs}


def _check(train, losses, metric, direction, seeds, tune, workers, pruner, resume, storage, out, margin, fresh,
           seed) -> None:
    if not callable(train):
        raise TypeError(f"compare: train must be a function train(criterion, run) -> {{metric: value}}, got "
                        f"{type(train).__name__}")
    if not isinstance(metric, str) or not metric:
        raise TypeError(f"compare: metric must be the name of a metric train returns, got {metric!r}")
    if direction not in DIRECTIONS:
        raise ValueError(f"compare: direction must be 'maximize' or 'minimize', got {direction!r}")
    for name, value, low in (("seeds", seeds, 1), ("tune", tune, 0), ("workers", workers, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"compare: {name} must be a whole number >= {low}, got {value!r}")
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not margin >= 0:
        raise ValueError(f"compare: margin must be a number >= 0 (on the scale of the metric), got {margin!r}")
    if pruner not in (None,) + tuning.PRUNERS:
        raise ValueError(f"compare: pruner must be None, 'median' or 'hyperband', got {pruner!r}")
    if (resume or storage or workers > 1) and not tune:
        raise DataError("compare: resume=, storage= and workers= act on the tuning study; give tune=TRIALS")
    if resume and storage is None and (out is None or not (Path(out) / tuning.STUDY_FILE).exists()):
        raise DataError(f"compare: resume=True but there is no study to continue ({tuning.STUDY_FILE} is missing "
                        f"in out={str(out) if out is not None else None!r}); run without resume=True")
    if resume and fresh:
        raise DataError("compare: resume=True continues the study and fresh=True replaces it; choose one")
    if not (resume or fresh) and storage is None and out is not None and tune \
            and (Path(out) / tuning.STUDY_FILE).exists():
        raise DataError(f"compare: {Path(out) / tuning.STUDY_FILE} already holds a study; pass resume=True to "
                        "continue it, fresh=True to replace it, or choose another out=")
    if workers > 1:
        try:
            pickle.dumps(train)
        except Exception as error:
            raise TypeError(f"compare: workers={workers} runs train in other processes, so it must be picklable "
                            "(a function defined at the top level of an importable module, or an instance of a "
                            f"top-level class), got {train!r} ({type(error).__name__})") from None
    if isinstance(losses, str) or not losses:
        raise TypeError(f"compare: losses must be a non-empty list of build_loss strings, got {losses!r}"
                        + ("; did you mean [" + repr(losses) + "]?" if isinstance(losses, str) else ""))


def check_losses(losses: Sequence[Union[str, LossSpec]], class_counts: Optional[Sequence[int]], *,
                 ignore_index: Optional[int] = None, epochs: Optional[int] = None,
                 families: Sequence[str] = (SIGMOID, SOFTMAX)) -> List[LossSpec]:
    """Parse ``losses`` and build each with ``class_counts``: a loss that needs counts without them, that does
    not fit them, or whose family the trainer cannot train (``families``), is a ``ValueError`` here, before any
    training."""
    from ..registry import get_loss

    specs = parse_losses([loss if isinstance(loss, str) else loss.text for loss in losses])
    for spec in specs:
        if spec.family not in families:
            raise ValueError(f"compare: losses={spec.text!r} is a one-logit (sigmoid) loss and train takes only "
                             "per-class (softmax) losses: ce, seesaw, logit_adjusted, balanced_softmax, ..."
                             if spec.family == SIGMOID else
                             f"compare: losses={spec.text!r} is a per-class (softmax) loss and train takes only "
                             "one-logit (sigmoid) losses")
    for spec in specs if class_counts is None else ():
        for term in spec.terms:
            entry = get_loss(term["type"])
            if entry.counts_argument is not None and entry.counts_argument not in term \
                    and entry.derived_attribute not in term:
                raise ValueError(f"compare: loss {spec.text!r} needs the training label counts; pass class_counts="
                                 "[samples of class 0, class 1, ...] (binary: [background, foreground] pixels), "
                                 f"or set {entry.counts_argument}= in its string")
    for spec in specs:
        try:
            build(spec, class_counts, ignore_index=ignore_index, epochs=epochs)
        except ValueError as error:
            if class_counts is None and "num_classes" in str(error):
                raise ValueError(f"compare: loss {spec.text!r} needs the number of classes; pass class_counts=[samples "
                                 "of class 0, class 1, ...] or set num_classes= in its string") from None
            raise
    return specs


@contextmanager
def _storage_url(storage: Optional[str], out: Optional[Path]) -> Iterator[str]:
    """The study URL: ``storage``, else ``out/study.db``, else a SQLite file removed afterwards."""
    if storage is not None:
        yield storage
    elif out is not None:
        out.mkdir(parents=True, exist_ok=True)
        yield tuning.sqlite_url(out)
    else:
        folder = Path(tempfile.mkdtemp(prefix="seesaw-compare-"))
        try:
            yield tuning.sqlite_url(folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def compare(train: Callable[[Any, Run], Mapping[str, float]], losses: Sequence[Union[str, LossSpec]], *,
            metric: Optional[str] = None, direction: str = "maximize", seeds: int = 3, tune: int = 0,
            class_counts: Optional[Sequence[int]] = None, out: Optional[Union[str, Path]] = None,
            storage: Optional[str] = None, resume: bool = False, workers: int = 1, pruner: Optional[str] = None,
            seed: int = 0, progress: bool = True, margin: float = MARGIN, device: str = "cpu",
            title: str = "Your model", description: str = "", ignore_index: Optional[int] = None,
            epochs: Optional[int] = None, notes: Sequence[str] = (), settings: Optional[Mapping[str, Any]] = None,
            fresh: bool = False) -> Result:
    """Rank ``losses`` by ``metric`` as returned by ``train(criterion, run)``.

    Per loss: ``tune`` Optuna TPE trials (seeded) over its registry search space (none for a loss with nothing
    to tune; ``pruner`` ``"median"`` or ``"hyperband"`` stops trials early from ``run.report``; pruned trials
    count in the budget), then ``seeds`` final runs of the best configuration with seeds ``seed, seed + 1, ...``,
    the same for every loss. ``class_counts`` (training samples per class; binary: background and foreground
    pixels) feed the losses that need them. The study lives in ``storage`` (an Optuna URL), else
    ``out/study.db``; ``resume`` continues it; ``workers`` processes share it (``train`` must then be picklable;
    with ``device="cuda"`` they go round robin over the visible GPUs). With ``out`` the report is saved there.
    ``epochs`` only sets where a deferred re-weighting starts (LDAM-DRW) and the progress steps. A built-in
    trainer (:class:`~seesaw_losses.experiments.run.Trainer`) supplies ``metric``, ``class_counts``,
    ``ignore_index`` and ``epochs`` when they are left out, and the loss families it can train. ``title``,
    ``description`` and ``settings`` go into the report (``results.json`` holds the settings); ``fresh`` replaces
    this comparison's studies in the storage (a previous run's, e.g. in ``out/study.db``).

    Raises ``ValueError``/``TypeError`` for bad arguments before any training, and when ``train`` returns no
    finite ``metric``; an exception of ``train`` propagates as raised (finished trials stay in the study).
    """
    if isinstance(train, Trainer):
        metric = train.metric if metric is None else metric
        class_counts = train.class_counts() if class_counts is None else class_counts
        ignore_index = train.ignore_index if ignore_index is None else ignore_index
        epochs = train.epochs if epochs is None else epochs
    families = train.families if isinstance(train, Trainer) else (SIGMOID, SOFTMAX)
    _check(train, losses, metric, direction, seeds, tune, workers, pruner, resume, storage, out, margin, fresh, seed)
    specs = check_losses(losses, class_counts, ignore_index=ignore_index, epochs=epochs, families=families)
    check_report_folder(out)
    counts = None if class_counts is None else [int(c) for c in class_counts]
    job = _Job(train, metric, counts, ignore_index, epochs, None)
    tunable = [spec for spec in specs if tune and search_space(spec)]
    seed_list = list(range(seed, seed + seeds))
    out = None if out is None else Path(out)
    notes = list(notes)
    if tune and len(tunable) < len(specs):
        notes.append("no tunable hyperparameters (defaults trained): "
                     + ", ".join(spec.text for spec in specs if spec not in tunable))
    with _storage_url(storage, out) as url:
        job.plan = tuning.StudyPlan(url, tune, seed, direction, pruner, f"seesaw-compare:{metric}")
        if fresh and tunable:
            tuning.delete_studies([s.text for s in tunable], job.plan)
        missing = tuning.missing_trials([s.text for s in tunable], job.plan) if tunable else 0
        total = job.units * (missing + seeds * len(specs))
        with Tracker(total, enabled=progress, title=title, unit="epochs" if epochs else "runs") as tracker:
            job.tracker = tracker
            if tunable and workers > 1:
                def poll() -> None:  # the workers' finished trials advance the progress display
                    nonlocal missing
                    now = tuning.missing_trials([s.text for s in tunable], job.plan)
                    tracker.advance_plan(job.units * (missing - now))
                    missing = now

                tuning.run_workers(job.tune_all, (tunable,), workers, device, torch.get_num_threads(), poll)
            tuned = job.tune_all(tunable, device)
            finals = {spec.text: _finals(job, spec, tuned.get(spec.text), seed_list, device) for spec in specs}
    result = _result(job, specs, finals, tuned, seed_list, direction, margin, title, notes)
    result.ignore_index = ignore_index
    result.name, result.kind = getattr(train, "name", "comparison"), getattr(train, "kind", CUSTOM)
    result.settings, result.description = dict(settings or {}), description
    if out is not None:
        result.files = save_report(result, out)
    return result


def _finals(job: _Job, spec: LossSpec, tuned: Optional[tuning.Tuned], seeds: Sequence[int], device: str
            ) -> List[Run]:
    """``seeds`` final runs of ``spec`` with its tuned hyperparameters; held-out outputs, masks and images (what
    the report plots) kept for the first only."""
    values = tuned.hyperparameters if tuned is not None else {}
    runs = []
    for k, seed in enumerate(seeds):
        run = job.call(spec, values, seed=seed, trial=None, device=device,
                       description=f"{spec.text} · seed {k + 1}/{len(seeds)}")
        for key in HELD_OUT if k else ():
            run.artifacts.pop(key, None)
        runs.append(run)
    return runs


def _sample_scores(runs: Sequence[Run], metric: str) -> Optional[SampleScores]:
    if not all(metric in run.samples for run in runs):
        return None
    return SampleScores(np.stack([run.samples[metric][0] for run in runs]), runs[0].samples[metric][1])


def _result(job: _Job, specs: Sequence[LossSpec], finals: Dict[str, List[Run]], tuned: Dict[str, tuning.Tuned],
            seeds: List[int], direction: str, margin: float, title: str, notes: List[str]) -> Result:
    metric = job.metric
    values = {text: [run.metrics[metric] for run in runs] for text, runs in finals.items()}
    samples = {text: _sample_scores(runs, metric) for text, runs in finals.items()}
    summary: Summary = summarize(values, direction=direction, margin=margin,
                                 samples={k: v for k, v in samples.items() if v is not None} or None,
                                 simplicity={spec.text: simplicity(spec) for spec in specs})
    built = {spec.text: job.build(spec, tuned[spec.text].hyperparameters if spec.text in tuned else {})
             for spec in specs}
    ranking = []
    for text in summary.order:
        runs, stats = finals[text], summary.losses[text]
        search = tuned.get(text, tuning.Tuned({}))
        means = {key: float(np.mean([run.metrics.get(key, math.nan) for run in runs])) for key in runs[0].metrics}
        ranking.append(Ranked(**vars(stats), loss=text, config=built[text].config, values=values[text],
                              metrics=means, trials=search.trials, pruned=search.pruned,
                              hyperparameters=dict(search.hyperparameters), runs=runs, rank_metric=metric))
    notes = notes + [note for spec in specs for note in built[spec.text].notes] + summary.notes
    absent = sorted({c for runs in finals.values() for run in runs for c in run.artifacts.get("absent_classes", ())})
    if absent:
        notes.append(f"class(es) {', '.join(map(str, absent))} absent from both the held-out targets and a model's "
                     "predictions: left out of that run's mIoU and mean Dice")
    return Result(metric, direction, ranking, built[summary.winner].config,
                  [entry.config for entry in ranking if entry.tied], seeds, summary.footnote, title, notes=notes,
                  class_counts=job.class_counts, margin=margin)
