"""The verdict of a comparison: intervals, which losses are worse than the best, which are equivalent to it,
"best in N %", the recommended loss, and what would settle what the data leave open.

Every loss is trained with the same seeds and scored on the same held-out samples, so the losses are *paired*
twice over: by seed and by sample. :func:`summarize` uses both pairings.

**The statistic** of a loss is the mean over groups of the group means of its ``scores[seed, sample]`` (the plain
mean without groups; balanced accuracy when the scores are 1/0 correct and the groups the true classes). Its
variance follows a two-way random-effects model: ``score = mean + seed effect + sample effect + residual``, the
samples drawn within their group (stratified), the seeds from the population of initialisations. With ``h`` the
sum of the squared per-sample weights of the statistic (``1 / N`` without groups)::

    var = s2_seed / S + h * (s2_sample + s2_residual / S)

The components are estimated from mean squares: the spread over seeds of the per-seed statistic (``S - 1``
degrees of freedom), the spread of the per-sample means around their group mean, pooled over the groups (``N - G``;
a class with a single held-out sample gets the pooled spread: it adds no degree of freedom but keeps its weight),
and the seed x sample residual (``(S - 1)(N - 1)``). The seed term ``MS_seed / S`` is always kept (three seeds
can hide a large seed variance: leaving it out when its estimate happens to be small makes equal losses look
different); the sample component ``s2_sample`` only where its F ratio against the residual is significant at
:data:`SAMPLE_POOLING` (otherwise its estimate is noise that only costs degrees of freedom). The degrees of freedom
are Satterthwaite's. The same estimate serves a loss's statistic (its interval) and the difference of two losses
(the test: the difference of two tables is a table), except that the seed mean square of a difference is pooled
over the losses (the loss x seed interaction, ``(K - 1)(S - 1)`` df; with three seeds a pair alone has two): it
assumes the losses vary alike from seed to seed.

**Labels.** The best is the loss with the best mean of its returned values, chosen from the data. With ``t`` the
deficit of a loss to the best over the standard error of the difference, the losses are ordered by ``t``, the best
first; the loss at place ``r`` is *worse* when it and every loss further down have ``t`` above their critical
values, the loss at place ``s`` needing the ``1 - alpha`` quantile of the studentised spread between the maximum of
K and the minimum of ``s`` of K equal losses (two-sided t for ``s = 2``, the studentised range for ``s = K``). It is
the closed test of "these losses are all among the truly best": whatever the truth and whichever loss the data make
best, the chance that any truly best loss is labelled worse stays below ``alpha``, and it finds more than a test of
every pair (Bonferroni or Tukey) because only the last loss pays for all K. The p-value shown is the step-down
adjusted p-value (``worse`` iff ``p < alpha``). A loss is *equivalent* when its upper bound on the deficit to the
best is within ``margin``: ``max(0, deficit + c_1 se)``, ``c_1`` the one-sided Dunnett value of K - 1
comparisons, simultaneous over the losses (Hsu's multiple comparisons with the best): the interval form of two
one-sided tests. The best is equivalent when, in the same way, it is shown within the margin of those losses (so
that a loss picked as best by luck does not make "the choice does not matter" true). The laws are drawn by a
seeded Monte Carlo. A loss neither worse nor equivalent is *tied*: the data do not tell;
:attr:`LossSummary.settle` says how many seeds or held-out samples would, from the estimated components.

**Intervals** are 95 % t-intervals of each loss's statistic; the best and the recommended loss, picked for looking
best, lean high, so theirs use ``t(0.975^(1/K))``, which covers all K statistics at once on either side.
Seeded simulations with known truth (``scripts/simulate_verdicts.py``, ``docs/compare.md``) measure these
guarantees.

**Best in N %** is the share of resamples in which a loss has the best statistic: seeds are resampled with
replacement, and samples with replacement *within their group* (a resample keeps every class at its size), the
same resampled indices for every loss. A resample is drawn as how often each seed and each sample was picked, so
the statistic is a weighted mean and no resampled table is built; with many held-out samples (over
:data:`EXACT_DRAWS` sample draws in all), the groups of at least :data:`NORMAL_GROUP` samples contribute their
resampled means from the normal law the bootstrap converges to (their mean and covariance over the seed x loss
columns), the smaller groups are resampled exactly. The *winner* is the loss most often best; losses within one
percentage point of the highest share are ordered by ``simplicity`` (smaller tuples are simpler), then by mean.

**Without per-sample scores** only the seed-level values are available: the same estimate with one sample (the
paired t over seeds), seeds resampled for "best in N %". With one seed and no per-sample scores nothing is tested.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

DIRECTIONS = ("maximize", "minimize")
MARGIN = 0.005  #: the default practical-equivalence margin on the ranking metric
WINNER_TOLERANCE = 0.01  #: best fractions this close to the highest count as equal when choosing the winner
SMALL_GROUP = 5  #: held-out samples a group (class) needs before a loss can be told apart from another on it
EXACT_DRAWS = 8_000_000  #: resamples x samples drawn one by one at most; larger groups go by the normal law
NORMAL_GROUP = 30  #: the smallest group whose resampled mean may be drawn from its normal law
SAMPLE_POOLING = 0.25  #: the sample component counts when its F ratio is significant at this level
LAW_DRAWS = 20_000  #: Monte Carlo draws of the laws of the comparisons with the best
LAW_SEED = 0  #: their seed: the labels depend on the data only
_BLOCK_ELEMENTS = 2_000_000  #: array elements computed at once (bounds the memory)


@dataclass
class SampleScores:
    """The held-out per-sample scores of one loss: ``scores[seed_index, sample_index]``, and optionally the group
    of each sample (the true class, for balanced accuracy). Same samples in the same order for every loss.

    Shape:
        - scores: ``(seeds, samples)``.
        - groups: ``(samples,)``, any hashable labels, or None.
    """

    scores: np.ndarray
    groups: Optional[np.ndarray] = None


@dataclass
class LossSummary:
    """One loss's line: the mean of its values, the 95 % interval, the adjusted p-value of "worse than the best"
    (NaN for the best and when nothing can be tested), ``tied`` (not shown worse), ``equivalent`` (shown within
    the margin of the best), the share of resamples in which it is best, the simultaneous upper bound on its
    deficit to the best (for the best: to the losses equivalent to it; on the metric's scale), and for a loss the
    data leave open what would settle it."""

    mean: float
    ci95: Tuple[float, float]
    p_value: float
    tied: bool
    equivalent: bool
    best_fraction: float
    deficit_bound: float = math.nan
    settle: str = ""


@dataclass
class Summary:
    """``order``: the losses by mean, best first; ``losses``: one :class:`LossSummary` each; ``winner``: the loss
    to recommend; ``footnote``: what the interval and the labels are, for the table; ``notes``: warnings about the
    held-out data (groups too small to tell losses apart on them)."""

    order: List[str]
    losses: Dict[str, LossSummary]
    winner: str
    footnote: str
    notes: List[str] = field(default_factory=list)


def mean_ci(values: Sequence[float]) -> Tuple[float, float, float]:
    """Mean and 95 % t-interval ``(mean, low, high)`` of the finite values over seeds (NaN bounds with fewer
    than two)."""
    from scipy import stats

    finite = np.asarray([v for v in values if not math.isnan(v)], dtype=np.float64)
    if finite.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(finite.mean())
    if finite.size < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.975, finite.size - 1) * finite.std(ddof=1) / math.sqrt(finite.size))
    return mean, mean - half, mean + half


def summarize(values: Mapping[str, Sequence[float]], *, direction: str = "maximize",
              samples: Optional[Mapping[str, SampleScores]] = None, simplicity: Mapping[str, Tuple] = {},
              margin: float = MARGIN, alpha: float = 0.05, resamples: int = 2000, seed: int = 0) -> Summary:
    """Rank the losses by the mean of their per-seed ``values`` and say how sure that ranking is (see the
    module docstring for the method).

    Args:
        values: loss -> the ranking metric per seed, in seed order, as ``train`` returned it.
        direction: ``"maximize"`` or ``"minimize"`` (lower is better).
        samples: loss -> its held-out per-sample scores of the ranking metric (same shape for every loss), or
            None for seed-level statistics; when some losses have none, the statistics are seed-level and the
            footnote names them.
        simplicity: loss -> a tuple, smaller is simpler (``(terms, tunable hyperparameters)``); breaks ties
            between equally often best losses. Missing losses count as ``()``.
        margin: practical-equivalence margin on the ranking metric.
        alpha: family-wise level of the labels: the chance that any truly equal loss is labelled worse.
        resamples: bootstrap resamples for "best in N %".
        seed: seed of the bootstrap's random generator (same inputs, same summary).

    Shape:
        - values: ``{loss: (seeds,)}``, the same number of seeds for every loss.
        - samples: ``{loss: SampleScores((seeds, samples), groups (samples,))}``.
    """
    table = _check_values(values)
    names = list(values)
    if direction not in DIRECTIONS:
        raise ValueError(f"summarize: direction must be one of {DIRECTIONS}, got {direction!r}")
    if not margin >= 0:
        raise ValueError(f"summarize: margin must be >= 0, got {margin!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"summarize: alpha must be between 0 and 1, got {alpha!r}")
    if resamples < 1:
        raise ValueError(f"summarize: resamples must be >= 1, got {resamples!r}")
    if samples and set(samples) - set(names):
        raise ValueError(f"summarize: samples must name only losses of values, got {sorted(samples)} for "
                         f"{sorted(names)}")
    sign = 1.0 if direction == "maximize" else -1.0  # sign * statistic: higher is better
    means = table.mean(axis=1)
    order = sorted(range(len(names)), key=lambda k: -sign * means[k])
    best, losses, seeds = order[0], len(names), table.shape[1]
    missing = [name for name in names if samples is not None and name not in samples]
    notes: List[str] = []
    if samples and not missing:
        scores, labels, codes = _check_samples(samples, names, seeds)
        notes = _small_group_notes(labels, codes)
    else:
        scores, codes = table[:, :, None], None
    moments = _Moments.of(scores, codes)
    pair_variance, pair_df = moments.pair_variance()
    better = sign * moments.statistic
    deficit = better[best] - better  # how much better the best is than each loss
    p_values, worse_critical = _with_the_best(deficit, np.sqrt(pair_variance[best]), pair_df[best], best, alpha)
    bound_critical = _bound_critical(pair_df[best], losses, alpha)
    bounds = _deficit_bounds(deficit, np.sqrt(pair_variance[best]), bound_critical, best, margin)
    best_fraction = _best_fraction(sign * _bootstrap(scores, codes, np.random.default_rng(seed), resamples))
    top = best_fraction.max()
    candidates = [k for k in order if best_fraction[k] >= top - WINNER_TOLERANCE]
    winner = min(candidates, key=lambda k: (tuple(simplicity.get(names[k], ())), -sign * means[k]))
    low, high = _intervals(means, *moments.single_variance(), picked=[best, winner])
    footnote = _footnote(moments, samples, missing, alpha, worse_critical, np.delete(bound_critical, best),
                         margin, resamples)
    if codes is not None:
        footnote += f"; statistic: mean of the {codes.max() + 1} per-group means"
    summaries = {}
    for k, name in enumerate(names):
        testable = not math.isnan(bounds[k])
        tied = k == best or bool(p_values[k] >= alpha)
        equivalent = testable and losses > 1 and bool(bounds[k] <= margin)
        settle = "" if k == best or equivalent or not tied or not testable else _settle(
            moments, k, best, float(deficit[k]), float(worse_critical[k]), float(bound_critical[k]), margin)
        summaries[name] = LossSummary(mean=float(means[k]), ci95=(float(low[k]), float(high[k])),
                                      p_value=float(p_values[k]), tied=tied, equivalent=equivalent,
                                      best_fraction=float(best_fraction[k]), deficit_bound=float(bounds[k]),
                                      settle=settle)
    return Summary([names[k] for k in order], summaries, names[winner], footnote, notes)


def _check_values(values: Mapping[str, Sequence[float]]) -> np.ndarray:
    if not values:
        raise ValueError("summarize: values must name at least one loss, got {}")
    lengths = {name: len(row) for name, row in values.items()}
    if len(set(lengths.values())) != 1 or min(lengths.values()) < 1:
        raise ValueError(f"summarize: values must hold the same number (>= 1) of seeds for every loss, got "
                         f"{lengths}")
    table = np.array([np.asarray(row, dtype=np.float64) for row in values.values()])
    if not np.isfinite(table).all():
        bad = [name for name, row in zip(values, table) if not np.isfinite(row).all()]
        raise ValueError(f"summarize: values must be finite, got NaN or infinity for {bad}")
    return table


def _check_samples(samples: Mapping[str, SampleScores], names: List[str], seeds: int
                   ) -> Tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]:
    """``scores (losses, seeds, samples)``, the group labels (sorted, or None) and each sample's group as an
    integer code into them (or None)."""
    shapes = {name: np.shape(samples[name].scores) for name in names}
    first = shapes[names[0]]
    if len(set(shapes.values())) != 1 or len(first) != 2 or first[0] != seeds or first[1] < 1:
        raise ValueError(f"summarize: samples' scores must be (seeds={seeds}, samples) arrays of one shape for "
                         f"every loss, got {shapes}")
    scores = np.empty((len(names),) + first)
    for k, name in enumerate(names):
        scores[k] = samples[name].scores
    if not np.isfinite(scores).all():
        raise ValueError("summarize: samples' scores must be finite, got NaN or infinity")
    groups = [samples[name].groups for name in names]
    if all(g is None for g in groups):
        return scores, None, None
    reference = np.asarray(groups[0]) if groups[0] is not None else None
    if reference is None or reference.shape != (first[1],) or any(
            g is None or not np.array_equal(np.asarray(g), reference) for g in groups):
        raise ValueError("summarize: samples' groups must be one (samples,) array, the same for every loss, "
                         "or None for every loss")
    labels, codes = np.unique(reference, return_inverse=True)
    return scores, labels, codes.reshape(-1)


def _small_group_notes(labels: Optional[np.ndarray], codes: Optional[np.ndarray]) -> List[str]:
    """A note naming the groups with fewer than :data:`SMALL_GROUP` held-out samples, when there are any."""
    if codes is None:
        return []
    sizes = np.bincount(codes)
    small = np.flatnonzero(sizes < SMALL_GROUP)
    if small.size == 0:
        return []
    shown = ", ".join(f"{labels[g]} ({sizes[g]})" for g in small[:12]) + (", ..." if small.size > 12 else "")
    return [f"{small.size} of {sizes.size} held-out classes have fewer than {SMALL_GROUP} samples: {shown}; "
            f"together {100 * small.size / sizes.size:.0f} % of the statistic, they cannot tell losses apart on "
            "those classes (their sample variance is pooled from the larger classes); more held-out samples of "
            "them would"]


@dataclass
class _Moments:
    """The statistic of every loss and the mean squares of its variance components, as ``(losses, losses)``
    matrices whose quadratic form in a contrast gives that contrast's mean square (``e_i``: loss i; ``e_j -
    e_i``: the difference of j and i).

    ``seed``: covariance over seeds of the per-seed statistics (``S - 1`` df); ``interaction``: the loss x seed
    interaction mean square of the per-seed statistics (``(K - 1)(S - 1)`` df), half the seed mean square of a
    difference of two losses when every loss varies alike over the seeds; ``sample``: pooled within-group
    covariance of the per-sample means over seeds (``N - G`` df; over all samples with ``N - 1`` df when no group
    has two samples); ``residual``: seed x sample residual (``(S - 1)(N - 1)`` df). None where not estimable.
    ``weight_squares`` is ``h``, the sum of the squared per-sample weights of the statistic.
    """

    statistic: np.ndarray
    seed: Optional[np.ndarray]
    interaction: float
    sample: Optional[np.ndarray]
    residual: Optional[np.ndarray]
    dfs: Tuple[int, int, int]
    weight_squares: float
    seeds: int
    samples: int

    @classmethod
    def of(cls, scores: np.ndarray, codes: Optional[np.ndarray]) -> "_Moments":
        """Shape: scores ``(losses, seeds, samples)``; codes ``(samples,)`` or None."""
        losses, seeds, count = scores.shape
        codes = np.zeros(count, dtype=np.int64) if codes is None else codes
        sizes = np.bincount(codes)
        weights = 1.0 / (sizes.size * sizes[codes])  # the statistic = scores @ weights
        per_seed = scores @ weights  # (losses, seeds)
        per_sample = scores.mean(axis=1)  # (losses, samples)
        sample_df = count - sizes.size
        centre = (np.stack([np.bincount(codes, row) for row in per_sample]) / sizes)[:, codes] if sample_df \
            else per_sample.mean(axis=1, keepdims=True)
        sample_df = sample_df or count - 1
        deviations = per_sample - centre
        residual = np.zeros((losses, losses))
        seed_means, grand = scores.mean(axis=2), per_sample.mean(axis=1)
        block = max(1, _BLOCK_ELEMENTS // (losses * seeds))
        for start in range(0, count if seeds > 1 else 0, block):
            part = (scores[:, :, start:start + block] - seed_means[:, :, None]
                    - per_sample[:, None, start:start + block] + grand[:, None, None]).reshape(losses, -1)
            residual += part @ part.T
        residual_df = (seeds - 1) * (count - 1)
        interaction = per_seed - per_seed.mean(axis=1, keepdims=True) - per_seed.mean(axis=0) + per_seed.mean()
        pooled_df = max(losses - 1, 1) * (seeds - 1)
        return cls(statistic=per_seed.mean(axis=1),
                   seed=np.atleast_2d(np.cov(per_seed)) if seeds > 1 else None,
                   interaction=float((interaction ** 2).sum()) / pooled_df if losses > 1 and seeds > 1 else 0.0,
                   sample=deviations @ deviations.T / sample_df if sample_df > 0 else None,
                   residual=residual / residual_df if residual_df > 0 else None,
                   dfs=(seeds - 1, sample_df, residual_df), weight_squares=float(weights @ weights),
                   seeds=seeds, samples=count)

    def single_variance(self) -> Tuple[np.ndarray, np.ndarray]:
        """``(variance, df)`` of each loss's statistic (its own seed mean square), shape ``(losses,)``."""
        seed, sample, residual = (None if m is None else np.diagonal(m) for m in self.squares())
        return self._variance(seed, self.dfs[0], sample, residual, self.statistic.shape)

    def pair_variance(self) -> Tuple[np.ndarray, np.ndarray]:
        """``(variance, df)`` of ``statistic[j] - statistic[i]``, shape ``(losses, losses)``; the seed mean square
        of a difference is pooled over the losses (the loss x seed interaction, ``(K - 1)(S - 1)`` df)."""
        def pair(m: Optional[np.ndarray]) -> Optional[np.ndarray]:
            if m is None:
                return None
            diagonal = np.diagonal(m)
            return np.maximum(diagonal[:, None] + diagonal[None, :] - 2 * m, 0.0)

        size = self.statistic.size
        seed = None if self.seed is None else np.full((size, size), 2 * self.interaction)
        return self._variance(seed, max(size - 1, 1) * self.dfs[0], pair(self.sample), pair(self.residual),
                              (size, size))

    def squares(self) -> Tuple[Optional[np.ndarray], ...]:
        return self.seed, self.sample, self.residual

    def pair_parts(self, first: int, second: int) -> Tuple[float, float]:
        """``(seed part, sample part)`` of the variance of ``statistic[first] - statistic[second]``: the pooled
        seed mean square over ``S``, which more seeds shrink, and ``h s2_sample``, which more held-out samples
        shrink."""
        sample, residual = (0.0 if m is None else float(m[first, first] + m[second, second] - 2 * m[first, second])
                            for m in (self.sample, self.residual))
        seed = 2 * self.interaction if self.seed is not None else 0.0
        sample_component = max(sample - residual / self.seeds, 0.0) if self.residual is not None else sample
        return seed / self.seeds, self.weight_squares * sample_component

    def _variance(self, seed: Optional[np.ndarray], seed_df: int, sample: Optional[np.ndarray],
                  residual: Optional[np.ndarray], shape: Tuple[int, ...]) -> Tuple[np.ndarray, np.ndarray]:
        """Variance and Satterthwaite df from the mean squares (arrays of ``shape``, None where absent): the
        seed term ``MS_seed / S`` always (it estimates ``s2_seed / S + h s2_residual / S``), and the sample term
        ``h (MS_sample - MS_residual / S)`` where the sample component shows (``S MS_sample / MS_residual`` above
        the upper quartile of its F law; left out otherwise, where its estimate is mostly noise and would only
        cost degrees of freedom); NaN where nothing is estimable."""
        from scipy import stats

        h, seeds = self.weight_squares, self.seeds
        _, sample_df, residual_df = self.dfs
        if seed is not None and sample is not None:  # the residual is estimable too
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = np.where(residual > 0, seeds * sample / residual, np.where(sample > 0, np.inf, 0.0))
            sample_on = ratio > stats.f.ppf(1 - SAMPLE_POOLING, sample_df, residual_df)
            terms = [(1 / seeds, seed, seed_df), (np.where(sample_on, h, 0.0), sample, sample_df),
                     (np.where(sample_on, -h / seeds, 0.0), residual, residual_df)]
        elif seed is not None:
            terms = [(1 / seeds, seed, seed_df)]
        elif sample is not None:
            terms = [(h, sample, sample_df)]
        else:
            return np.full(shape, math.nan), np.full(shape, math.nan)
        variance = np.maximum(sum(c * m for c, m, _ in terms), 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            df = variance ** 2 / sum((c * m) ** 2 / d for c, m, d in terms)
        return np.broadcast_to(variance, shape), np.broadcast_to(df, shape)


def _with_the_best(deficit: np.ndarray, se: np.ndarray, df: np.ndarray, best: int, alpha: float
                   ) -> Tuple[np.ndarray, np.ndarray]:
    """The comparisons with the best: ``(adjusted p-value of "worse", its critical t)`` of each loss (NaN where
    nothing can be tested, and for the best).

    With ``t_i = deficit_i / se_i`` the losses other than the best are ordered by ``t``, the best first (place
    1). The loss at place ``r`` is worse when every loss at a place ``s >= r`` has ``t`` above ``c_s``, the
    ``1 - alpha`` quantile of ``(max of K - min of the first s of K) / sqrt(2)`` independent standard normal
    deviations over ``sqrt(chi2_df / df)`` (its own pair's df): the closed test of the hypotheses "these losses are
    all among the truly best", which bounds the chance that any truly best loss is labelled worse by ``alpha``
    whatever the other losses are and whichever loss the data make best. ``c_2`` is two-sided t for two losses,
    ``c_K`` the studentised range. The laws are drawn by a seeded Monte Carlo (:data:`LAW_DRAWS`).

    Shape:
        - deficit, se, df: ``(losses,)``; outputs: ``(losses,)``.
    """
    losses = deficit.size
    p_values, worse_critical = np.full(losses, math.nan), np.full(losses, math.nan)
    others = [k for k in range(losses) if k != best and (se[k] == 0 or np.isfinite(df[k]))]
    if not others:
        return p_values, worse_critical
    spread = _spread(losses)
    rng = np.random.default_rng(LAW_SEED + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(se == 0, np.where(deficit > 0, math.inf, -math.inf), deficit / se)
    order = sorted(others, key=lambda k: t[k])
    raw = np.empty(losses)
    for place, k in enumerate(order, start=2):
        freedom = df[k] if np.isfinite(df[k]) else math.inf
        scale = np.sqrt(rng.standard_gamma(freedom / 2, LAW_DRAWS) / (freedom / 2)) if freedom < 1e7 else 1.0
        law = spread[:, place - 1] / scale
        raw[k] = np.mean(law > t[k])
        worse_critical[k] = np.quantile(law, 1 - alpha)
    # step-down: a loss is worse only when every loss further down is; its p-value is the largest from it down
    p_values[order] = np.maximum.accumulate(raw[order][::-1])[::-1]
    return p_values, worse_critical


@functools.lru_cache(maxsize=16)
def _spread(losses: int) -> np.ndarray:
    """``(max of K - min of the first s of K) / sqrt(2)`` of K independent standard normal deviations, column
    ``s - 1``, in :data:`LAW_DRAWS` seeded draws (read-only).

    Shape:
        - output: ``(LAW_DRAWS, losses)``.
    """
    deviations = np.random.default_rng(LAW_SEED).standard_normal((LAW_DRAWS, losses))
    spread = (deviations.max(axis=1, keepdims=True) - np.minimum.accumulate(deviations, axis=1)) / math.sqrt(2)
    spread.flags.writeable = False
    return spread


def _deficit_bounds(deficit: np.ndarray, se: np.ndarray, critical: np.ndarray, best: int, margin: float
                    ) -> np.ndarray:
    """Simultaneous upper bounds on the deficits (Hsu's comparisons with the best, ``c_1`` the one-sided Dunnett
    value): of each loss to the best, ``max(0, deficit + c_1 se)``; of the best to the losses whose bound is within
    ``margin`` (to every other loss when none is), ``max(0, max of c_1 se - deficit)``, so that the best too is
    equivalent only when it is shown within the margin of them. NaN where a pair cannot be tested.

    Shape:
        - deficit, se, critical: ``(losses,)``, the best's pairs; output: ``(losses,)``.
    """
    reach = np.where(se == 0, 0.0, critical * se)
    bounds = np.maximum(deficit + reach, 0.0)
    others = np.arange(deficit.size) != best
    if not others.any():
        return np.full(deficit.size, math.nan)
    close = others & (bounds <= margin)
    against = close if close.any() else others
    bounds[best] = max(float(np.max((reach - deficit)[against])), 0.0)
    return bounds


_DF_GRID = np.array([1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5, 4, 5, 6, 8, 10, 14, 20, 30, 50, 100, 300, math.inf])


@functools.lru_cache(maxsize=64)
def _dunnett_on_grid(losses: int, alpha: float) -> np.ndarray:
    """The one-sided Dunnett value of ``losses - 1`` comparisons with equal correlation 1/2, ``c_1``, at the df of
    :data:`_DF_GRID`: the ``1 - alpha`` quantile of ``(max of K - the first of K) / sqrt(2)`` standard normal
    deviations (:func:`_spread`'s first column) over ``sqrt(chi2_df / df)``, by a seeded Monte Carlo."""
    lead = _spread(losses)[:, 0]
    rng = np.random.default_rng(LAW_SEED + 1)
    scales = [np.sqrt(rng.standard_gamma(df / 2, LAW_DRAWS) / (df / 2)) if math.isfinite(df) else 1.0
              for df in _DF_GRID]
    return np.array([np.quantile(lead / scale, 1 - alpha) for scale in scales])


def _bound_critical(df: np.ndarray, losses: int, alpha: float) -> np.ndarray:
    """``c_1`` (see :func:`_dunnett_on_grid`) at each pair's df, interpolated in ``1 / df`` (NaN where the df
    is NaN; a df below 1 counts as 1).

    Shape:
        - df: any; output: the same.
    """
    grid = _dunnett_on_grid(losses, alpha)
    inverse = 1 / np.clip(np.nan_to_num(df, nan=1.0), 1.0, None)
    critical = np.interp(inverse, (1 / _DF_GRID)[::-1], grid[::-1])
    return np.where(np.isnan(df), math.nan, critical)


def _intervals(means: np.ndarray, variance: np.ndarray, df: np.ndarray, picked: Sequence[int]
               ) -> Tuple[np.ndarray, np.ndarray]:
    """95 % t-intervals centred on the mean of the returned values (NaN where nothing is estimable); the losses
    ``picked`` from the data (the best, the recommended) get ``t(0.975^(1/K))``, simultaneous over the K losses
    on either side, so that picking the best-looking loss does not leave its interval too low.

    Shape:
        - means, variance, df: ``(losses,)``; outputs: ``(losses,)``.
    """
    from scipy import stats

    level = np.full(means.size, 0.975)
    level[list(picked)] = 0.975 ** (1 / means.size)
    with np.errstate(invalid="ignore"):
        half = np.where(variance == 0, 0.0, stats.t.ppf(level, df) * np.sqrt(variance))
    return means - half, means + half


def _settle(moments: _Moments, loss: int, best: int, deficit: float, worse_critical: float,
            bound_critical: float, margin: float) -> str:
    """What would settle an open comparison: the seeds (or held-out samples) at which the deficit would be shown
    worse, or shown within the margin, whichever needs fewer, from the estimated variance components."""
    seed_part, sample_part = moments.pair_parts(best, loss)
    goals = [d / c for d, c in ((deficit, worse_critical), (margin - deficit, bound_critical))
             if d > 0 and c > 0 and math.isfinite(c)]  # standard errors that would tell
    target = max(goals) ** 2 if goals else 0.0
    options = [(part / (target - other), what, now) for part, other, what, now in
               ((seed_part, sample_part, "seeds", moments.seeds),
                (sample_part, seed_part, "held-out samples", moments.samples)) if part > 0 and target > other]
    if not options:
        return "more seeds and more held-out samples would tell"
    factor, what, now = min(options)
    if factor > 50:
        return f"far more data would tell, a deficit of {deficit:.3g} against a margin of {margin:g}"
    return f"about {math.ceil(factor * now)} {what} (now {now}) would tell"


def _footnote(moments: _Moments, samples, missing: List[str], alpha: float, worse_critical: np.ndarray,
              bound_critical: np.ndarray, margin: float, resamples: int) -> str:
    seeds, count = moments.seeds, moments.samples
    if samples and not missing:
        text = (f"95 % interval: t-interval over {count} held-out samples x {seeds} seed(s), variance from the "
                "seed and sample components (Satterthwaite df)")
    else:
        absent = f"no per-sample scores for {', '.join(missing)}" if samples and missing else "no per-sample scores"
        if seeds < 2:
            return f"one seed and {absent}: no interval and no test; only the best is tied"
        text = f"seed level only ({absent}): 95 % t-interval over {seeds} seeds"
    losses = moments.statistic.size
    if losses > 1:
        text += (f", for the best and the recommended loss simultaneous over the {losses} losses (t(0.975^(1/"
                 f"{losses}))): picked for looking best, they lean high; worse: step-down comparisons with the "
                 f"best, the loss with the r-th smallest t against the best needs t above the {1 - alpha:g} "
                 f"quantile of the studentised spread of r of {losses} losses{_span(worse_critical)}, and every "
                 f"loss further down shown worse (any equal loss labelled worse with chance <= {alpha:g}), p "
                 f"adjusted alike; equivalent (Hsu's comparisons with the best, one-sided Dunnett"
                 f"{_span(bound_critical)}, simultaneous over the losses; for the best, to the losses within the "
                 f"margin of it): the upper bound on the deficit to the best is within {margin:g}; tied: neither")
    resampled = "seeds, and samples within their group" if samples and not missing else "seeds"
    return text + f"; best in N %: share of {resamples} bootstrap resamples ({resampled}) in which the loss is best"


def _span(critical: np.ndarray) -> str:
    """The range of the positive finite critical values, for the footnote."""
    finite = critical[np.isfinite(critical) & (critical > 0)]
    if not finite.size:
        return ""
    return f" {finite.min():.2f}" + (f" to {finite.max():.2f}" if finite.max() - finite.min() > 0.005 else "")


def _bootstrap(scores: np.ndarray, codes: Optional[np.ndarray], rng: np.random.Generator,
               resamples: int) -> np.ndarray:
    """The statistic of every loss in ``resamples`` resamples of seeds and of samples within their group (the
    same resample for every loss), see the module docstring.

    Shape:
        - scores: ``(losses, seeds, samples)``; output: ``(resamples, losses)``.
    """
    losses, seeds, count = scores.shape
    codes = np.zeros(count, dtype=np.int64) if codes is None else codes
    sizes = np.bincount(codes)
    weights = 1.0 / (sizes.size * sizes[codes])
    columns = scores.reshape(losses * seeds, count)  # (losses x seeds, samples)
    normal = sizes >= NORMAL_GROUP if resamples * count > EXACT_DRAWS else np.zeros(sizes.size, dtype=bool)
    exact = np.flatnonzero(~normal[codes])
    drawn = np.zeros((resamples, losses * seeds))
    if exact.size:
        drawn += _exact_sums(columns[:, exact], weights[exact], codes[exact], rng, resamples)
    if normal.any():
        drawn += _normal_sums(columns, weights, codes, normal, rng, resamples)
    seed_weights = rng.multinomial(seeds, np.full(seeds, 1 / seeds), size=resamples) / seeds  # (r, seeds)
    return np.einsum("rls,rs->rl", drawn.reshape(resamples, losses, seeds), seed_weights)


def _exact_sums(columns: np.ndarray, weights: np.ndarray, codes: np.ndarray, rng: np.random.Generator,
                resamples: int) -> np.ndarray:
    """``sum_i weight_i * drawn_i * columns[:, i]`` per resample, ``drawn_i`` how often sample i is drawn when
    each group draws its size from its own members.

    Shape:
        - columns: ``(columns, samples)``; weights, codes: ``(samples,)``; output: ``(resamples, columns)``.
    """
    count = columns.shape[1]
    order = np.argsort(codes, kind="stable")
    columns, weights, codes = columns[:, order], weights[order], codes[order]
    sizes = np.bincount(codes)
    starts = (np.cumsum(sizes) - sizes)[codes]
    own = sizes[codes].astype(np.float64)
    block = max(1, _BLOCK_ELEMENTS // count)
    out = np.empty((resamples, columns.shape[0]))
    for first in range(0, resamples, block):
        rows = min(block, resamples - first)
        picked = starts + (rng.random((rows, count)) * own).astype(np.int64)  # a member of the same group
        picked += (np.arange(rows) * count)[:, None]
        drawn = np.bincount(picked.ravel(), minlength=rows * count).reshape(rows, count)
        out[first:first + rows] = (drawn * weights) @ columns.T
    return out


def _normal_sums(columns: np.ndarray, weights: np.ndarray, codes: np.ndarray, normal: np.ndarray,
                 rng: np.random.Generator, resamples: int) -> np.ndarray:
    """The resampled weighted sums over the samples of the groups marked ``normal``, drawn from the normal law
    the bootstrap converges to: mean the full weighted sum, covariance ``sum_i weight_i^2 (x_i - mean of its
    group) (x_i - mean of its group)^T``.

    Shape:
        - columns: ``(columns, samples)``; weights, codes: ``(samples,)``; normal: ``(groups,)``;
          output: ``(resamples, columns)``.
    """
    width, count = columns.shape
    groups = normal.size
    keep = normal[codes]
    sums = np.zeros((width, groups))
    block = max(1, _BLOCK_ELEMENTS // width)
    for start in range(0, count, block):
        part = slice(start, start + block)
        for row in range(width):
            sums[row] += np.bincount(codes[part], columns[row, part], groups)
    group_means = sums / np.maximum(np.bincount(codes, minlength=groups), 1)
    total = np.zeros(width)
    covariance = np.zeros((width, width))
    for start in range(0, count, block):
        part = slice(start, start + block)
        chosen = keep[part]
        centred = (columns[:, part][:, chosen] - group_means[:, codes[part][chosen]]) * weights[part][chosen]
        covariance += centred @ centred.T
        total += columns[:, part][:, chosen] @ weights[part][chosen]
    values, vectors = np.linalg.eigh(covariance)
    factor = vectors * np.sqrt(np.clip(values, 0.0, None))
    return total + rng.standard_normal((resamples, width)) @ factor.T


def _best_fraction(better: np.ndarray) -> np.ndarray:
    """Share of resamples in which each loss is best (higher ``better`` is better; equal bests share).

    Shape:
        - better: ``(resamples, losses)``; output: ``(losses,)``.
    """
    top = better.max(axis=1, keepdims=True)
    is_best = np.isclose(better, top, rtol=1e-12, atol=1e-12)
    return (is_best / is_best.sum(axis=1, keepdims=True)).mean(axis=0)


__all__ = ["MARGIN", "LossSummary", "SampleScores", "Summary", "mean_ci", "summarize"]
