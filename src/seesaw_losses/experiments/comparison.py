"""A comparison of losses on one task: every loss (tuned or not) trained over several seeds, summarised with
95 % confidence intervals, compared pairwise with the best, and a recommendation.

Statistics: the interval of a metric's mean over ``n`` seeds is Student's t-interval,
``mean +- t(0.975, n - 1) * sd / sqrt(n)``. A loss is *tied* with the best (by mean of the ranking metric) when a
one-sided paired t-test over the same seeds (``H1: best > loss``) gives ``p >= 0.05``; with one seed nothing can
be tested and no loss is tied. Of the tied group the recommendation is the simplest loss: fewest terms, then
fewest tunable hyperparameters in the registry, then the best mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..registry import get_loss
from . import metrics
from .losses import BuiltLoss, LossSpec, build
from .progress import QUIET, Tracker
from .train import Run, Settings

BINARY, MULTICLASS, LONG_TAIL = "binary_segmentation", "multiclass_segmentation", "long_tail"
ALPHA = 0.05  #: significance level of the paired test


def mean_ci(values: Sequence[float]) -> Tuple[float, float, float]:
    """Mean and 95 % t-interval ``(mean, low, high)`` of the finite values (NaN bounds with fewer than two)."""
    from scipy import stats

    finite = np.asarray([v for v in values if not math.isnan(v)], dtype=np.float64)
    if finite.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(finite.mean())
    if finite.size < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.975, finite.size - 1) * finite.std(ddof=1) / math.sqrt(finite.size))
    return mean, mean - half, mean + half


def paired_p_value(best: Sequence[float], other: Sequence[float]) -> float:
    """One-sided paired t-test p-value of ``best > other`` over the same seeds (NaN with fewer than two)."""
    from scipy import stats

    differences = np.asarray(best, dtype=np.float64) - np.asarray(other, dtype=np.float64)
    if differences.size < 2:
        return math.nan
    if np.allclose(differences, differences[0]):  # no spread: the test is exact
        return 1.0 if differences[0] <= 0 else 0.0
    return float(stats.ttest_rel(best, other, alternative="greater").pvalue)


def simplicity(spec: LossSpec) -> Tuple[int, int]:
    """``(terms, tunable hyperparameters)`` of a loss, from the registry: smaller is simpler."""
    return len(spec.terms), sum(len(get_loss(name).search_space) for name in spec.names)


@dataclass
class Task:
    """What one comparison trains on: the data, the function that trains one run, the shared budget."""

    kind: str
    title: str
    data: Any
    class_counts: List[int]
    train: Callable[..., Run]
    settings: Settings
    rank_key: str
    ignore_index: Optional[int] = None

    def build(self, spec: LossSpec) -> BuiltLoss:
        return build(spec, self.class_counts, ignore_index=self.ignore_index, epochs=self.settings.epochs)


@dataclass
class LossResult:
    """One loss: what was given, what was trained (tuned hyperparameters filled in) and its runs, one per seed."""

    spec: LossSpec
    built: BuiltLoss
    runs: List[Run]
    hyperparameters: Dict[str, Any] = field(default_factory=dict)
    trials: int = 0
    p_value: float = math.nan
    tied: bool = False

    @property
    def label(self) -> str:
        return self.spec.text

    def values(self, key: str) -> List[float]:
        return [float(run.metrics.get(key, math.nan)) for run in self.runs]

    def summary(self, key: str) -> Tuple[float, float, float]:
        return mean_ci(self.values(key))

    def costs(self) -> Dict[str, float]:
        """Seconds per epoch (mean over seeds) and the peak memory of a training step, in MB."""
        peaks = [run.peak_mb for run in self.runs if not math.isnan(run.peak_mb)]
        return {"epoch_seconds": float(np.mean([run.epoch_seconds for run in self.runs])),
                "peak_mb": float(max(peaks)) if peaks else math.nan}


@dataclass
class Comparison:
    """Every loss's result on one task, ranked by the mean of ``rank_key``, and what the reader needs."""

    task: str
    title: str
    description: str
    rank_key: str
    results: List[LossResult]
    seeds: List[int]
    notes: List[str] = field(default_factory=list)
    tuned_trials: int = 0

    def ranked(self) -> List[LossResult]:
        return sorted(self.results, key=lambda r: -np.nan_to_num(r.summary(self.rank_key)[0], nan=-np.inf))

    def metric_keys(self) -> List[str]:
        """Every metric name the runs report, in the order the first run has them."""
        keys: Dict[str, None] = {}
        for result in self.results:
            for run in result.runs:
                keys.update(dict.fromkeys(run.metrics))
        return list(keys)

    def mark_ties(self) -> None:
        ranked = self.ranked()
        best = ranked[0].values(self.rank_key)
        for result in ranked:
            result.p_value = math.nan if result is ranked[0] else paired_p_value(best, result.values(self.rank_key))
            result.tied = result is ranked[0] or (not math.isnan(result.p_value) and result.p_value >= ALPHA)

    def winner(self) -> LossResult:
        """The simplest loss of the tied group (the best alone when nothing ties with it)."""
        tied = [r for r in self.ranked() if r.tied]
        return min(tied, key=lambda r: simplicity(r.spec))

    def absent_classes(self) -> List[int]:
        return sorted({c for result in self.results for run in result.runs for c in metrics.absent_classes(run.metrics)})


def _seed_description(result_label: str, seed: int, seeds: Sequence[int]) -> str:
    return f"{result_label} · seed {seeds.index(seed) + 1}/{len(seeds)}"


def run_seeds(task: Task, spec: LossSpec, built: BuiltLoss, seeds: Sequence[int], tracker: Tracker = QUIET
              ) -> List[Run]:
    """Train ``built`` once per seed on the same splits (other initialisation and data order); the first run
    keeps its held-out outputs for the plots and measures the peak memory of a step."""
    from dataclasses import replace

    return [task.train(task.data, built, replace(task.settings, seed=seed), tracker=tracker,
                       description=_seed_description(spec.text, seed, list(seeds)), measure=k == 0,
                       keep_outputs=k == 0)
            for k, seed in enumerate(seeds)]


def compare(task: Task, specs: Sequence[LossSpec], seeds: Sequence[int], *, tracker: Tracker = QUIET,
            tuned: Optional[Dict[str, Tuple[Dict[str, Any], int]]] = None, description: str = "",
            notes: Sequence[str] = ()) -> Comparison:
    """Train every loss over ``seeds`` (with its ``tuned`` hyperparameters and trial count, keyed by
    ``spec.text``, when given) and mark the losses tied with the best."""
    from .losses import with_hyperparameters

    results = []
    for spec in specs:
        hyperparameters, trials = (tuned or {}).get(spec.text, ({}, 0))
        built = task.build(with_hyperparameters(spec, hyperparameters))
        results.append(LossResult(spec, built, run_seeds(task, spec, built, seeds, tracker), dict(hyperparameters),
                                  trials))
    all_notes = list(notes) + [note for result in results for note in result.built.notes]
    comparison = Comparison(task.kind, task.title, description, task.rank_key, results, list(seeds), all_notes,
                            max((r.trials for r in results), default=0))
    comparison.mark_ties()
    absent = comparison.absent_classes()
    if absent:
        comparison.notes.append(f"class(es) {', '.join(map(str, absent))} absent from both the held-out targets "
                                "and a model's predictions: left out of that run's mIoU and mean Dice")
    return comparison
