"""How often the labels of a comparison are wrong, on scores drawn from a model whose truth is known
(``tests/verdict_truth.py``): no training, only the statistics of ``seesaw_losses.experiments.statistics``.

    PYTHONPATH=src python scripts/simulate_verdicts.py [--replicates 400] [--seed 0] [--structures seed ...]
        [--losses 2 5 9 12] [--seeds N]

Prints, per structure and number of losses, the share of simulated comparisons in which

- ``any worse``: some loss is labelled significantly worse although every loss is equal;
- ``covered``: the best loss's 95 % interval covers its true statistic (equal losses; the best is chosen from the
  data, so its estimate leans high, and its interval is simultaneous over the K losses), and ``first``: the same
  for the first loss (no choice; its interval is the simultaneous one when it is picked);
- ``found``: a loss better than every other by one noise sd (on every sample and seed) is ranked first and every
  other loss is labelled worse; ``ceiling``: the same found by an oracle that knows the standard deviation of a
  difference of two losses' statistics and labels a loss worse when its deficit exceeds 1.645 of them, the
  one-sided z-test of each pair with nothing for the multiple comparisons, the most powerful level-5 % test of
  a pair when the variance is known: where the ceiling is below 80 %, no valid procedure reaches 80 % either;
- ``recommended``: the same better loss is the recommended loss (the winner, most often best in the bootstrap);
  ``winner``: it is recommended and ranked first, so the report labels it neither tied nor worse (what a user
  who takes the recommendation acts on; the other losses may stay tied); ``top``: the better loss has the best
  statistic on the data, the ceiling of a recommendation made from them;
- ``equivalent``: a loss worse by 8x the margin is labelled equivalent to the best (two losses).

The simulation error of a rate p over R replicates is sqrt(p (1 - p) / R): 1.1 points at p = 5 % and R = 400.
The statistics come from the ``seesaw_losses`` on ``PYTHONPATH``: point it at another checkout's ``src`` to
measure that one on the same draws (the table in docs/compare.md has both).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from verdict_truth import STRUCTURES, draw, statistic_per_seed  # noqa: E402

from seesaw_losses.experiments.statistics import MARGIN, SampleScores, summarize  # noqa: E402


def summary_of(scores, groups, resamples, seed):
    names = [f"loss{k}" for k in range(scores.shape[0])]
    values = statistic_per_seed(scores, groups)
    samples = {name: SampleScores(scores[k], groups) for k, name in enumerate(names)}
    return names, summarize(dict(zip(names, values)), samples=samples, resamples=resamples, seed=seed)


def difference_sd(structure, seed, draws=4000):
    """The true standard deviation of the difference of two equal losses' statistics, by simulation."""
    rng = np.random.default_rng(seed)
    differences = []
    for _ in range(draws):
        scores, groups, _ = draw(structure, [0.0, 0.0], rng)
        statistic = statistic_per_seed(scores, groups).mean(axis=1)
        differences.append(statistic[0] - statistic[1])
    return float(np.std(differences))


def rates(structure, losses, replicates, seed, resamples=200):
    """``(any worse, covered, first covered, found, ceiling, recommended, winner, top)`` shares over ``replicates``
    simulated comparisons."""
    rng = np.random.default_rng(seed)
    oracle = 1.645 * difference_sd(structure, seed + 1)
    any_worse = covered = first = found = ceiling = recommended = winner = top = 0
    better = [structure.noise_sd] + [0.0] * (losses - 1)
    for r in range(replicates):
        scores, groups, truth = draw(structure, [0.0] * losses, rng)
        names, summary = summary_of(scores, groups, resamples, r)
        any_worse += not all(summary.losses[name].tied for name in names)
        low, high = summary.losses[summary.order[0]].ci95
        covered += low <= truth[0] <= high
        low, high = summary.losses[names[0]].ci95
        first += low <= truth[0] <= high
        scores, groups, truth = draw(structure, better, rng)
        names, summary = summary_of(scores, groups, resamples, r)
        found += summary.order[0] == names[0] and not any(summary.losses[n].tied for n in names[1:])
        recommended += summary.winner == names[0]
        winner += summary.winner == names[0] == summary.order[0]
        statistic = statistic_per_seed(scores, groups).mean(axis=1)
        ceiling += bool(np.all(statistic[0] - statistic[1:] > oracle))
        top += bool(np.all(statistic[0] > statistic[1:]))
    counts = (any_worse, covered, first, found, ceiling, recommended, winner, top)
    return tuple(count / replicates for count in counts)


def equivalent_rate(structure, replicates, seed, resamples=200):
    rng = np.random.default_rng(seed)
    equivalent = 0
    for r in range(replicates):
        scores, groups, _ = draw(structure, [0.0, -8 * MARGIN], rng)
        names, summary = summary_of(scores, groups, resamples, r)
        equivalent += summary.losses[names[1]].equivalent
    return equivalent / replicates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicates", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--losses", type=int, nargs="+", default=[2, 5, 9, 12])
    parser.add_argument("--structures", nargs="*", default=["seed", "sample", "grouped"], choices=sorted(STRUCTURES))
    parser.add_argument("--seeds", type=int, help="seeds per loss instead of each structure's (3)")
    args = parser.parse_args()
    start = time.perf_counter()
    print(f"{'structure':<44} {'K':>3} {'any worse':>10} {'covered':>8} {'first':>6} {'found':>6} {'ceiling':>8} "
          f"{'recommended':>12} {'winner':>7} {'top':>6}")
    structures = {key: dataclasses.replace(value, seeds=args.seeds or value.seeds)
                  for key, value in STRUCTURES.items()}
    for key in args.structures:
        name = structures[key].name + (f", {args.seeds} seeds" if args.seeds else "")
        for losses in args.losses:
            worse, covered, first, found, ceiling, recommended, winner, top = rates(
                structures[key], losses, args.replicates, args.seed)
            print(f"{name:<44} {losses:>3} {100 * worse:>9.1f}% {100 * covered:>7.1f}% "
                  f"{100 * first:>5.1f}% {100 * found:>5.1f}% {100 * ceiling:>7.1f}% {100 * recommended:>11.1f}% "
                  f"{100 * winner:>6.1f}% {100 * top:>5.1f}%", flush=True)
    for key in ("noisy-seeds", "seed", "sample"):
        rate = equivalent_rate(structures[key], args.replicates, args.seed)
        print(f"worse by 8x the margin called equivalent ({structures[key].name}): {100 * rate:.1f}%")
    print(f"({args.replicates} replicates each, {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
