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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from . import CUSTOM, DataError, Diverged, jobs, tuning
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
    """Everything a worker process needs (picklable when ``train`` is): how to build a loss and call ``train``
    for a tuning trial or a final run (:class:`~.jobs.Runner`)."""

    train: Callable[[Any, Run], Mapping[str, float]]
    metric: str
    class_counts: Optional[List[int]]
    ignore_index: Optional[int]
    epochs: Optional[int]
    plan: Optional[tuning.StudyPlan]
    specs: Dict[str, LossSpec] = field(default_factory=dict)
    leads: bool = False  #: rank 0 of a ``torchrun`` launch: each job is sent to the other ranks first
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
        """Build the loss with ``values`` and call ``train`` once: a tuning trial when ``trial`` is given. An
        exception of ``train`` propagates with a note naming the loss and the seed or trial."""
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
            except Exception as error:
                error.add_note(f"compare: raised by train for loss {spec.text!r}, "
                               + (f"tuning trial {trial.number}" if trial is not None else f"seed {seed}"))
                raise
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

    def tuning_trial(self, loss: str, trial: Any, device: str) -> float:
        """One tuning trial of ``loss``: its hyperparameters from ``trial``; a diverged run is pruned."""
        import optuna

        spec = self.specs[loss]
        values = tuning.suggest(trial, search_space(spec))
        trial.set_user_attr("hyperparameters", values)
        if self.leads:
            _send(("job", loss, values, self.plan.seed, trial.number))
        try:
            run = self.call(spec, values, seed=self.plan.seed, trial=trial, device=device,
                            description=f"{loss} · trial {trial.number + 1}/{self.plan.trials}")
        except Diverged as error:  # these hyperparameters diverge: pruned, and the search goes on
            trial.set_user_attr("diverged", str(error))
            raise optuna.TrialPruned(str(error)) from None
        return run.metrics[self.metric]

    def final_run(self, loss: str, hyperparameters: Dict[str, Any], seed: int, device: str) -> Run:
        """One final run of ``loss`` with seed ``seed``; held-out outputs, masks and images (what the report
        plots) kept for the first seed only."""
        seeds = self.plan.seeds
        if self.leads:
            _send(("job", loss, hyperparameters, seed, None))
        run = self.call(self.specs[loss], hyperparameters, seed=seed, trial=None, device=device,
                        description=f"{loss} · seed {seeds.index(seed) + 1}/{len(seeds)}")
        for key in HELD_OUT if seed != seeds[0] else ():
            run.artifacts.pop(key, None)
        return run


class _FollowedTrial:
    """What ``run.trial`` is on a rank other than 0 of a ``torchrun`` launch: the number of rank 0's tuning
    trial; its reports stay on rank 0, which alone asks the pruner (refused with several ranks)."""

    def __init__(self, number: int):
        self.number = number

    def report(self, value: float, step: int) -> None:
        pass

    def should_prune(self) -> bool:
        return False


def _ranks() -> Tuple[int, int]:
    """``(rank, world size)`` of an initialised ``torch.distributed`` process group, else ``(0, 1)``."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _send(message: Any) -> None:
    import torch.distributed as dist

    dist.broadcast_object_list([message], src=0)


def _receive() -> Any:
    import torch.distributed as dist

    box = [None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _follow(job: _Job, device: str) -> Result:
    """A rank other than 0: train each job rank 0 sends, with the same loss, hyperparameters and seed, until it
    sends the result (or its error)."""
    while True:
        message = _receive()
        if message[0] == "end":
            _, result, error = message
            if error is not None:
                raise RuntimeError(f"compare: rank 0 failed: {error}")
            return result
        _, loss, values, seed, number = message
        job.call(job.specs[loss], values, seed=seed, trial=None if number is None else _FollowedTrial(number),
                 device=device, description=loss)


def _work(job: _Job, device: str) -> None:
    """A worker process: train the comparison's jobs until it is complete."""
    jobs.Comparison(job.plan).work(job, device)


def _check(train, losses, metric, direction, seeds, tune, workers, pruner, resume, storage, out, margin, fresh,
           seed, artifacts) -> None:
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
    if storage is not None and tuning.default_artifacts(storage) is None and artifacts is None:
        raise DataError(f"compare: storage={storage!r} is not a SQLite file, so the final runs' scores and plot "
                        "inputs need artifacts=FOLDER, a folder every process of the comparison can reach")
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
            fresh: bool = False, artifacts: Optional[Union[str, Path]] = None) -> Result:
    """Rank ``losses`` by ``metric`` as returned by ``train(criterion, run)``.

    Per loss: ``tune`` Optuna TPE trials (seeded) over its registry search space (none for a loss with nothing
    to tune; ``pruner`` ``"median"`` or ``"hyperband"`` stops trials early from ``run.report``; pruned trials
    count in the budget), then ``seeds`` final runs of the best configuration with seeds ``seed, seed + 1, ...``,
    the same for every loss. ``class_counts`` (training samples per class; binary: background and foreground
    pixels) feed the losses that need them. Every tuning trial and final run is a job in the study, in
    ``storage`` (an Optuna URL), else ``out/study.db``: every process running the same comparison on one storage
    claims jobs from it, each job is trained once, and each process returns the same result, built from the study
    once every job is done (a finished study trains nothing). The final runs' scores and plot inputs go to
    ``artifacts`` (a folder every process reaches; default: beside a SQLite file). ``resume`` continues the study
    (jobs that failed are trained again); a study made with other settings is refused; ``workers`` local
    processes claim the jobs (``train`` must then be picklable; with ``device="cuda"`` they go round robin over
    the visible GPUs). With ``out`` the report is saved there. Under ``torchrun`` (an initialised
    ``torch.distributed`` group) every rank calls ``compare`` alike: rank 0 claims each job and sends it to the
    others, every rank calls ``train`` with the same loss, hyperparameters and seed, rank 0 records the outcome
    and writes the report, and every rank returns the result.
    ``epochs`` only sets where a deferred re-weighting starts (LDAM-DRW) and the progress steps. A built-in
    trainer (:class:`~seesaw_losses.experiments.run.Trainer`) supplies ``metric``, ``class_counts``,
    ``ignore_index`` and ``epochs`` when they are left out, and the loss families it can train. ``title``,
    ``description`` and ``settings`` go into the report (``results.json`` holds the settings); ``fresh`` replaces
    this comparison's studies in the storage (a previous run's, e.g. in ``out/study.db``).

    Raises ``ValueError``/``TypeError`` for bad arguments before any training, and when ``train`` returns no
    finite ``metric``; an exception of ``train`` propagates with a note naming the loss and the seed or trial
    (finished runs stay in the study: ``resume=True`` trains only what is missing).
    """
    if isinstance(train, Trainer):
        metric = train.metric if metric is None else metric
        class_counts = train.class_counts() if class_counts is None else class_counts
        ignore_index = train.ignore_index if ignore_index is None else ignore_index
        epochs = train.epochs if epochs is None else epochs
    families = train.families if isinstance(train, Trainer) else (SIGMOID, SOFTMAX)
    rank, world = _ranks()  # under torchrun only rank 0 touches the study and the report folder
    _check(train, losses, metric, direction, seeds, tune, workers, pruner, resume and not rank, storage,
           None if rank else out, margin, fresh, seed, artifacts)
    if world > 1 and (workers > 1 or pruner is not None):
        raise ValueError(f"compare: under torchrun ({world} ranks) every rank trains each job together: leave "
                         f"{'workers=1' if workers > 1 else 'pruner=None'} (each job's ranks stop together only "
                         "without a pruner)")
    specs = check_losses(losses, class_counts, ignore_index=ignore_index, epochs=epochs, families=families)
    check_report_folder(out)
    counts = None if class_counts is None else [int(c) for c in class_counts]
    job = _Job(train, metric, counts, ignore_index, epochs, None, {spec.text: spec for spec in specs})
    tunable = [spec for spec in specs if tune and search_space(spec)]
    seed_list = list(range(seed, seed + seeds))
    out = None if out is None else Path(out)
    notes = list(notes)
    if tune and len(tunable) < len(specs):
        notes.append("no tunable hyperparameters (defaults trained): "
                     + ", ".join(spec.text for spec in specs if spec not in tunable))
    report = {"class_counts": counts, "ignore_index": ignore_index, "epochs": epochs, "margin": margin,
              "title": title, "description": description, "notes": notes, "settings": dict(settings or {}),
              "name": getattr(train, "name", "comparison"), "kind": getattr(train, "kind", CUSTOM)}
    if rank > 0:
        return _follow(job, device)
    job.leads = world > 1
    job.plan = tuning.StudyPlan("", tune, seed, direction, pruner, f"seesaw-compare:{metric}", metric,
                                tuple(spec.text for spec in specs), tuple(spec.text for spec in tunable),
                                tuple(seed_list))
    try:
        result = _in_study(job, report, storage=storage, out=out, artifacts=artifacts, resume=resume, fresh=fresh,
                           workers=workers, device=device, progress=progress)
    except BaseException as error:
        if job.leads:
            _send(("end", None, f"{type(error).__name__}: {error}"))
        raise
    if job.leads:
        _send(("end", result, None))
    return result


def _in_study(job: _Job, report: Dict[str, Any], *, storage: Optional[str], out: Optional[Path],
              artifacts: Optional[Union[str, Path]], resume: bool, fresh: bool, workers: int, device: str,
              progress: bool) -> Result:
    """The comparison's jobs trained by this process and its ``workers``, then its result from the study."""
    notes = report["notes"]
    with _storage_url(storage, out) as url:
        job.plan = replace(job.plan, storage=url, artifacts=str(artifacts or tuning.default_artifacts(url)))
        comparison = jobs.Comparison(job.plan)
        comparison.open(resume=resume, fresh=fresh or not (job.plan.trials or resume or storage), report=report)
        left = comparison.remaining()
        unit = "epochs" if job.epochs else "runs"
        with Tracker(job.units * left, enabled=progress, title=report["title"], unit=unit) as tracker:
            job.tracker = tracker
            if workers > 1:
                def poll() -> None:  # the workers' finished jobs advance the progress display
                    nonlocal left
                    now = comparison.remaining()
                    tracker.advance_plan(job.units * (left - now))
                    left = now

                killed = tuning.run_workers(_work, (job,), workers, device, torch.get_num_threads(), poll)
                if killed:
                    notes.append(f"{killed} worker process(es) were killed; their jobs were trained again")
            comparison.work(job, device)
        result = _study_result(comparison, job, report)
    if out is not None:
        result.files = save_report(result, out)
    return result


def report(storage: str, *, metric: Optional[str] = None, artifacts: Optional[Union[str, Path]] = None,
           out: Optional[Union[str, Path]] = None) -> Result:
    """The result of the comparison in ``storage`` (an Optuna URL), built from the study alone, as every process
    of that comparison returns it; nothing is trained. ``metric`` picks the comparison when the storage holds
    several; ``artifacts`` is the folder of the final runs' outcomes (default: beside a SQLite file). With
    ``out`` the report is saved there. Raises :class:`DataError` when the storage holds no finished
    comparison."""
    import optuna

    tuning._quiet(optuna)
    names = [name for name in optuna.get_all_study_names(tuning.open_storage(storage))
             if name.startswith("seesaw-compare:") and name.endswith("/settings")
             and (metric is None or name == f"seesaw-compare:{metric}/settings")]
    if len(names) != 1:
        raise DataError(f"report: storage={storage!r} holds {len(names)} comparisons"
                        + (f" ranked by metric={metric!r}" if metric else "")
                        + ("; pass metric= to pick one" if len(names) > 1 else ""))
    metric = names[0][len("seesaw-compare:"):-len("/settings")]
    artifacts = artifacts or tuning.default_artifacts(storage)
    if artifacts is None:
        raise DataError(f"report: storage={storage!r} is not a SQLite file; pass artifacts=FOLDER, the folder of "
                        "the comparison's final runs")
    stored, report_info = jobs.Comparison.stored(storage, names[0])
    specs = parse_losses(stored["losses"])
    seed_list = list(range(stored["seed"], stored["seed"] + stored["seeds"]))
    job = _Job(None, metric, report_info["class_counts"], report_info["ignore_index"], report_info["epochs"],
               None, {spec.text: spec for spec in specs})
    job.plan = tuning.StudyPlan(storage, stored["tune"], stored["seed"], stored["direction"], stored["pruner"],
                                f"seesaw-compare:{metric}", metric, tuple(stored["losses"]),
                                tuple(spec.text for spec in specs if stored["tune"] and search_space(spec)),
                                tuple(seed_list), str(artifacts))
    comparison = jobs.Comparison(job.plan)
    if not comparison.complete():
        raise DataError(f"report: the comparison in storage={storage!r} has {comparison.remaining()} job(s) left; "
                        "run it to the end (compare with resume=True) first")
    result = _study_result(comparison, job, report_info)
    if out is not None:
        result.files = result.save(out)
    return result


def _study_result(comparison: jobs.Comparison, job: _Job, report: Mapping[str, Any]) -> Result:
    """The comparison's result from what its study holds."""
    plan = comparison.plan
    specs = [job.specs[text] for text in plan.losses]
    tuned = {text: comparison.tuned(text) for text in plan.tunable}
    finals = {spec.text: _runs(job, spec, tuned.get(spec.text, tuning.Tuned({})), comparison.finals(spec.text))
              for spec in specs}
    result = _result(job, specs, finals, tuned, list(plan.seeds), plan.direction, report["margin"],
                     report["title"], list(report["notes"]))
    result.ignore_index = report["ignore_index"]
    result.name, result.kind = report["name"], report["kind"]
    result.settings, result.description = dict(report["settings"]), report["description"]
    return result


def _runs(job: _Job, spec: LossSpec, tuned: tuning.Tuned, records: Sequence[jobs.FinalRecord]) -> List[Run]:
    """The final runs of ``spec`` as the study recorded them, one per seed."""
    config = job.build(spec, tuned.hyperparameters).config
    return [Run(record.seed, False, config, dict(tuned.hyperparameters), None, record.outcome["device"],
                spec.family, record.outcome["history"], record.outcome["artifacts"], record.outcome["samples"],
                record.metrics, record.outcome["seconds"]) for record in records]


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
