"""How sure a comparison can be of its ranking: intervals, paired tests against the best, "best in N %",
practical equivalence and the recommended loss, over held-out samples x seeds.

Every loss is trained with the same seeds and scored on the same held-out samples, so the losses are *paired*
twice over: by seed and by sample. :func:`summarize` uses both pairings.

**With per-sample scores** (a table ``scores[seed, sample]`` per loss, optionally ``groups[sample]``): the
statistic of a table is the mean over groups of the group means (the plain mean without groups; balanced
accuracy when the scores are 1/0 correct and the groups the true classes). A bootstrap resamples seeds and samples
jointly, with replacement, with the *same* resampled indices for every loss, ``resamples`` times:

- the 95 % interval of a loss is the 2.5-97.5 percentile range of its resampled statistic, shifted by
  ``mean(values) - statistic(full table)`` so that it is centred on the mean of the values the user's ``train``
  returned (the two differ when the returned metric pools pixels and the scores are per image);
- ``best_fraction`` is the share of resamples in which the loss has the best statistic (shared equally among
  losses that are equal in a resample).

The p-value of a loss against the best (by mean) is a one-sided t-test of the paired differences over the
(sample, seed) pairs whose variance has a seed part and a sample part (a two-way random-effects model, samples
varying within their group; Satterthwaite's degrees of freedom). Two alternatives were measured and rejected
(seeded simulations of two equal losses, the worse one tested, 32 samples x 3 seeds, cell sd 0.05; nominal rate
of "significantly worse" 10 %):

- the paired bootstrap p-value (share of resamples in which the best is not better): three seeds give ten
  distinct seed resamples and normal-like tails where Student's t with 2 degrees of freedom applies, so whenever
  the seed-to-seed variation of a difference matters (it dominates in real trainings) it calls 20 % of equal
  pairs significantly worse (seed sd 0.03), and only 2 % when there is no seed variation;
- the Wilcoxon signed-rank test over the (sample, seed) pairs: it counts the 96 pairs as independent although
  the pairs of one seed share its initialisation and data order: 55 % with seed sd 0.03 (12 % without); and it
  tests a median difference rather than the ranked statistic (balanced accuracy is no mean over pairs).

The t-test keeps the nominal rate in both cases (11 % and 6.5 %; 6 % for balanced accuracy) and needs no
resampling. The intervals, of one loss's mean, cover it in 95 % of those simulations without seed variation and
in 91 % with it. It separates two losses when one is better on nearly every sample of every seed even where the
seed-level values cannot (their mean, or their spread over three seeds, says nothing); when the seed-to-seed
variation dominates, it is as cautious as the seed-level test.

**Without per-sample scores** only the seed-level values are available: the interval is Student's t-interval of
the mean over seeds (:func:`mean_ci`), the p-value the one-sided paired t-test over the seeds (the same test
with one sample), and ``best_fraction`` comes from a bootstrap over the seeds. With fewer than two seeds nothing
is tested: every p-value is NaN and only the best is tied.

A loss is *tied* with the best when it is not significantly worse (``p >= alpha``), *equivalent* when it is tied
and its mean is within ``margin`` of the best mean. The *winner* is the loss most often best; losses within one
percentage point of the highest ``best_fraction`` are ordered by ``simplicity`` (smaller tuples are simpler), then
by mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

DIRECTIONS = ("maximize", "minimize")
MARGIN = 0.005  #: the default practical-equivalence margin on the ranking metric
WINNER_TOLERANCE = 0.01  #: best fractions this close to the highest count as equal when choosing the winner
_BLOCK_ELEMENTS = 4_000_000  #: resamples x losses x samples computed at once (bounds the memory)


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
    """One loss's line: the mean of its values, the 95 % interval, the p-value against the best (NaN for the
    best and when nothing can be tested), tied / equivalent with the best, and the share of resamples in which it
    is best."""

    mean: float
    ci95: Tuple[float, float]
    p_value: float
    tied: bool
    equivalent: bool
    best_fraction: float


@dataclass
class Summary:
    """``order``: the losses by mean, best first; ``losses``: one :class:`LossSummary` each; ``winner``: the loss
    to recommend; ``footnote``: what the interval and the test are, for the table."""

    order: List[str]
    losses: Dict[str, LossSummary]
    winner: str
    footnote: str


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
        alpha: significance level of the test against the best.
        resamples: bootstrap resamples.
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
    best = order[0]
    rng = np.random.default_rng(seed)
    seeds = table.shape[1]
    missing = [name for name in names if samples is not None and name not in samples]
    if samples and not missing:
        scores, groups = _check_samples(samples, names, seeds)
        statistic = _bootstrap(scores, groups, rng, resamples)  # (resamples, losses)
        full = _table_statistic(scores, groups)
        low, high = np.percentile(statistic, [2.5, 97.5], axis=0) + (means - full)
        weights = _sample_weights(groups, scores.shape[2])  # the statistic = plain mean of weights * scores
        p_values = np.array([_crossed_p_value(sign * weights * (scores[best] - row), groups) for row in scores])
        unit = f"{scores.shape[2]} held-out samples x {seeds} seed(s)"
        footnote = (f"95 % interval: paired bootstrap over {unit} ({resamples} resamples, centred on the mean "
                    f"of the returned values); p: one-sided paired t-test against the best over the (sample, seed) "
                    f"pairs with seed and sample variance components (Satterthwaite df)"
                    + (f"; statistic: mean of the {len(np.unique(groups))} per-group means" if groups is not None
                       else ""))
    else:
        statistic = _bootstrap(table[:, :, None], None, rng, resamples)
        intervals = [mean_ci(row)[1:] for row in table]
        low, high = np.array([i[0] for i in intervals]), np.array([i[1] for i in intervals])
        p_values = np.array([paired_p_value(sign * table[best], sign * row) for row in table])
        absent = f"no per-sample scores for {', '.join(missing)}" if samples and missing else "no per-sample scores"
        if seeds < 2:
            footnote = f"one seed and {absent}: no interval and no test; only the best is tied"
        else:
            footnote = (f"seed level only ({absent}): 95 % t-interval over {seeds} seeds; "
                        "p: one-sided paired t-test against the best")
    p_values = np.asarray(p_values, dtype=np.float64)
    p_values[best] = math.nan
    best_fraction = _best_fraction(sign * statistic)
    footnote += (f"; best in N %: share of resamples in which the loss is best; tied: p >= {alpha:g}; "
                 f"equivalent: tied and within {margin:g} of the best mean")
    losses = {}
    for k, name in enumerate(names):
        tied = k == best or bool(p_values[k] >= alpha)
        losses[name] = LossSummary(mean=float(means[k]), ci95=(float(low[k]), float(high[k])),
                                   p_value=float(p_values[k]), tied=tied,
                                   equivalent=tied and bool(abs(means[k] - means[best]) <= margin),
                                   best_fraction=float(best_fraction[k]))
    top = best_fraction.max()
    candidates = [k for k in order if best_fraction[k] >= top - WINNER_TOLERANCE]
    winner = min(candidates, key=lambda k: (tuple(simplicity.get(names[k], ())), -sign * means[k]))
    return Summary([names[k] for k in order], losses, names[winner], footnote)


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


def _check_samples(samples: Mapping[str, SampleScores], names: List[str],
                   seeds: int) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """``scores (losses, seeds, samples)`` and ``groups (samples,)`` as integer codes (or None)."""
    scores = [np.asarray(samples[name].scores, dtype=np.float64) for name in names]
    shapes = {name: s.shape for name, s in zip(names, scores)}
    if len(set(shapes.values())) != 1 or scores[0].ndim != 2 or scores[0].shape[0] != seeds \
            or scores[0].shape[1] < 1:
        raise ValueError(f"summarize: samples' scores must be (seeds={seeds}, samples) arrays of one shape for "
                         f"every loss, got {shapes}")
    if not all(np.isfinite(s).all() for s in scores):
        raise ValueError("summarize: samples' scores must be finite, got NaN or infinity")
    groups = [samples[name].groups for name in names]
    if all(g is None for g in groups):
        return np.stack(scores), None
    first = np.asarray(groups[0]) if groups[0] is not None else None
    if first is None or first.shape != (scores[0].shape[1],) or any(
            g is None or not np.array_equal(np.asarray(g), first) for g in groups):
        raise ValueError("summarize: samples' groups must be one (samples,) array, the same for every loss, "
                         "or None for every loss")
    return np.stack(scores), np.unique(first, return_inverse=True)[1].reshape(-1)


def _sample_weights(groups: Optional[np.ndarray], count: int) -> np.ndarray:
    """Per-sample factors that make the plain mean of ``factor * score`` the mean of the group means: ``count /
    (groups * group size)``, all 1 without groups.

    Shape:
        - groups: ``(samples,)`` integer codes or None; output: ``(samples,)``.
    """
    if groups is None:
        return np.ones(count)
    sizes = np.bincount(groups)
    return count / (sizes.size * sizes[groups])


def _table_statistic(scores: np.ndarray, groups: Optional[np.ndarray]) -> np.ndarray:
    """Mean over groups of the group means (plain mean without groups) of each loss's full table.

    Shape:
        - scores: ``(losses, seeds, samples)``; output: ``(losses,)``.
    """
    if groups is None:
        return scores.mean(axis=(1, 2))
    return np.mean([scores[:, :, groups == g].mean(axis=(1, 2)) for g in range(groups.max() + 1)], axis=0)


def _bootstrap(scores: np.ndarray, groups: Optional[np.ndarray], rng: np.random.Generator,
               resamples: int) -> np.ndarray:
    """The statistic of every loss in ``resamples`` joint resamples of seeds and samples (the same resampled
    indices for every loss). A resample is drawn as how often each seed and each sample was picked
    (multinomial counts), so the statistic is a weighted mean and no resampled table is built.

    Shape:
        - scores: ``(losses, seeds, samples)``; output: ``(resamples, losses)``.
    """
    losses, seeds, count = scores.shape
    seed_weights = rng.multinomial(seeds, np.full(seeds, 1 / seeds), size=resamples).astype(np.float64)
    sample_weights = rng.multinomial(count, np.full(count, 1 / count), size=resamples).astype(np.float64)
    one_hot = np.eye(groups.max() + 1)[groups] if groups is not None else np.ones((count, 1))  # (samples, G)
    block = max(1, _BLOCK_ELEMENTS // (losses * count))
    out = np.empty((resamples, losses))
    for start in range(0, resamples, block):
        w_seed, w_sample = seed_weights[start:start + block], sample_weights[start:start + block]
        per_sample = np.einsum("rs,lsi->rli", w_seed, scores) / seeds  # seed-weighted mean per sample
        sums = np.einsum("rli,ri,ig->rlg", per_sample, w_sample, one_hot)
        sizes = w_sample @ one_hot  # (r, G): resampled samples per group
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:start + block] = np.nanmean(sums / sizes[:, None, :], axis=2)  # absent groups skipped
    return out


def _best_fraction(better: np.ndarray) -> np.ndarray:
    """Share of resamples in which each loss is best (higher ``better`` is better; equal bests share).

    Shape:
        - better: ``(resamples, losses)``; output: ``(losses,)``.
    """
    top = better.max(axis=1, keepdims=True)
    is_best = np.isclose(better, top, rtol=1e-12, atol=1e-12)
    return (is_best / is_best.sum(axis=1, keepdims=True)).mean(axis=0)


def paired_p_value(best: Sequence[float], other: Sequence[float]) -> float:
    """One-sided paired t-test p-value of ``best > other`` over the same seeds (NaN with fewer than two)."""
    return _crossed_p_value(np.subtract(np.asarray(best, np.float64), np.asarray(other, np.float64))[:, None])


def _crossed_p_value(differences: np.ndarray, groups: Optional[np.ndarray] = None) -> float:
    """One-sided p-value of ``mean(differences) > 0`` for a seeds x samples table of paired differences: a
    t-test whose variance has a seed and a sample component (two-way random effects, samples varying within their
    group) with Satterthwaite's degrees of freedom. One sample: the paired t-test over the seeds; one seed: the
    t-test over the samples.

    Shape:
        - differences: ``(seeds, samples)``, weighted so that their plain mean is the compared statistic.
        - groups: ``(samples,)`` integer codes, or None (one group).
    """
    from scipy import stats

    seeds, count = differences.shape
    codes = np.zeros(count, dtype=np.int64) if groups is None else groups
    mean = float(differences.mean())
    by_seed, by_sample = differences.mean(axis=1), differences.mean(axis=0)
    within = by_sample - (np.bincount(codes, by_sample) / np.bincount(codes))[codes]  # sample vs its group
    sample_df, cells = count - (codes.max() + 1), seeds * count
    squares, dfs = [], []
    if seeds > 1:
        squares.append(count * by_seed.var(ddof=1))
        dfs.append(seeds - 1)
    if sample_df > 0:
        squares.append(seeds * float(within @ within) / sample_df)
        dfs.append(sample_df)
    if not squares:
        return math.nan
    if len(squares) == 1:
        coefficients = [1 / cells]
    else:
        residual = differences - by_seed[:, None] - by_sample[None, :] + mean
        squares.append(float((residual ** 2).sum()) / ((seeds - 1) * (count - 1)))
        dfs.append((seeds - 1) * (count - 1))
        # var(mean) = s2_seed / S + s2_sample / N + s2_residual / (S N); a component whose estimate (its mean
        # square minus the residual one) is negative is left out
        active = [float(squares[0] > squares[2]), float(squares[1] > squares[2])]
        coefficients = [a / cells for a in active] + [(1 - sum(active)) / cells]
    variance = sum(c * m for c, m in zip(coefficients, squares))
    if not variance > 1e-30:  # no spread: the test is exact
        return 1.0 if mean <= 0 else 0.0
    df = variance ** 2 / sum((c * m) ** 2 / d for c, m, d in zip(coefficients, squares, dfs) if c)
    return float(stats.t.sf(mean / math.sqrt(variance), df))


__all__ = ["MARGIN", "LossSummary", "SampleScores", "Summary", "mean_ci", "paired_p_value", "summarize"]
