"""The statistics of a comparison: intervals, the paired test against the best, and the winner.

Intervals: the 95 % interval of a metric's mean over ``n`` seeds is Student's t-interval,
``mean +- t(0.975, n - 1) * sd / sqrt(n)``. A loss is *tied* with the best (by mean of the ranking metric, in the
direction of the comparison) when a one-sided paired t-test over the same seeds (H1: the best is better) gives
``p >= alpha``; with one seed nothing can be tested and no loss is tied. Of the tied group the winner is the
simplest loss (smallest ``simplicity`` key, e.g. terms then tunable hyperparameters), then the best mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np


@dataclass
class SampleScores:
    """Per-sample scores of one loss's final runs, the same samples in the same order in every run; ``groups``
    (e.g. the true class of each sample) makes the statistic the mean of the group means.

    Shape:
        - scores: ``(seeds, samples)``.
        - groups: ``(samples,)``.
    """

    scores: np.ndarray
    groups: Optional[np.ndarray] = None


@dataclass
class LossSummary:
    """One loss: its mean, 95 % interval, one-sided p-value against the best (NaN for the best or untestable),
    whether it is tied with the best or practically equivalent to it, and how often it is the best."""

    mean: float
    ci95: Tuple[float, float]
    p_value: float
    tied: bool
    equivalent: bool
    best_fraction: float


@dataclass
class Summary:
    """Every loss's summary, their rank order (best first), the recommended loss and what the statistics are."""

    order: List[str]
    losses: Dict[str, LossSummary]
    winner: str
    footnote: str


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


def summarize(values: Mapping[str, Sequence[float]], *, direction: str = "maximize",
              samples: Optional[Mapping[str, SampleScores]] = None, simplicity: Mapping[str, Tuple] = {},
              margin: float = 0.005, alpha: float = 0.05, resamples: int = 2000, seed: int = 0) -> Summary:
    """Rank the losses by the mean of their per-seed ``values`` (best first in ``direction``), test each
    against the best and choose the winner. ``samples``, ``margin``, ``resamples`` and ``seed`` are accepted for
    the sample-level statistics and unused by these seed-level ones.

    Shape:
        - values: ``{loss: (seeds,)}``, the same seeds in the same order for every loss.
    """
    sign = 1.0 if direction == "maximize" else -1.0
    intervals = {name: mean_ci(list(v)) for name, v in values.items()}
    order = sorted(values, key=lambda name: -sign * np.nan_to_num(intervals[name][0], nan=-sign * np.inf))
    best = [sign * v for v in values[order[0]]]
    losses = {}
    for name in order:
        p = math.nan if name == order[0] else paired_p_value(best, [sign * v for v in values[name]])
        tied = name == order[0] or (not math.isnan(p) and p >= alpha)
        mean, low, high = intervals[name]
        losses[name] = LossSummary(mean, (low, high), p, tied, tied, math.nan)
    tied_group = [name for name in order if losses[name].tied]
    winner = min(tied_group, key=lambda name: (tuple(simplicity.get(name, ())), order.index(name)))
    seeds = len(values[order[0]])
    footnote = (f"vs best: one-sided paired t-test over the same {seeds} seeds, tied when p >= {alpha:g}; the "
                "recommendation is the simplest loss of the tied group" if seeds > 1 else
                "one seed: no test; run 3 or more seeds to know which differences are real")
    return Summary(order, losses, winner, footnote)
