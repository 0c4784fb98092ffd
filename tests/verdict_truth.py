"""Held-out scores drawn from a model whose truth is known, for checking the labels of a comparison.

``score[loss, seed, sample] = base[sample] + shift[loss] + seed effect[loss, seed] + interaction[loss, sample]
+ noise``: ``base`` is shared by every loss (some samples are harder), ``shift`` is the truth (equal losses have
equal shifts), the seed effect is a loss's own luck with a seed (initialisation, data order), the interaction a
loss's own luck with a sample. With ``groups`` the scores are 1/0 correct: each sample is right with that
probability, the statistic is balanced accuracy (the mean of the per-class accuracies) and the true value of a
loss is the mean of the class accuracies plus its shift.

Used by ``tests/test_verdicts.py`` and ``scripts/simulate_verdicts.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

LONG_TAIL_SIZES = (60, 30, 15, 8, 4, 2, 1, 1, 1, 1)  #: held-out class sizes of the grouped structure


@dataclass(frozen=True)
class Structure:
    """Where the variation comes from: ``samples`` held-out samples (or ``class_sizes``), ``seeds``; standard
    deviations of the shared per-sample base, of the per-(loss, seed) effect, of the per-(loss, sample)
    interaction and of the per-cell noise."""

    name: str
    samples: int = 40
    seeds: int = 3
    base_sd: float = 0.1
    seed_sd: float = 0.02
    interaction_sd: float = 0.0
    noise_sd: float = 0.05
    class_sizes: Optional[Tuple[int, ...]] = None


STRUCTURES = {
    "seed": Structure("seed-dominated", seed_sd=0.02, noise_sd=0.05),
    "sample": Structure("sample-dominated", seed_sd=0.002, noise_sd=0.05),
    "grouped": Structure("grouped (long-tailed classes, 1/0 correct)", seed_sd=0.02, interaction_sd=0.05,
                         class_sizes=LONG_TAIL_SIZES),
    "noisy-seeds": Structure("noisy seeds", seed_sd=0.05, noise_sd=0.05),
}


def draw(structure: Structure, shifts: Sequence[float], rng: np.random.Generator
         ) -> Tuple[np.ndarray, Optional[np.ndarray], np.ndarray]:
    """One comparison's held-out scores: ``(scores (losses, seeds, samples), groups (samples,) or None, truth
    (losses,))``."""
    shifts = np.asarray(shifts, dtype=np.float64)[:, None, None]
    losses, seeds = shifts.shape[0], structure.seeds
    if structure.class_sizes is None:
        count, groups = structure.samples, None
        base = rng.normal(0.6, structure.base_sd, count)
        truth = 0.6 + shifts[:, 0, 0]
    else:
        groups = np.repeat(np.arange(len(structure.class_sizes)), structure.class_sizes)
        count = groups.size
        class_accuracy = np.linspace(0.75, 0.35, len(structure.class_sizes))  # the rarest classes are hardest
        base = class_accuracy[groups] + rng.uniform(-0.15, 0.15, count)
        truth = class_accuracy.mean() + shifts[:, 0, 0]
    mean = (base[None, None, :] + shifts + rng.normal(0, structure.seed_sd, (losses, seeds, 1))
            + rng.normal(0, structure.interaction_sd, (losses, 1, count)))
    if groups is None:
        return mean + rng.normal(0, structure.noise_sd, (losses, seeds, count)), None, truth
    return (rng.random((losses, seeds, count)) < mean).astype(np.float64), groups, truth


def statistic_per_seed(scores: np.ndarray, groups: Optional[np.ndarray]) -> np.ndarray:
    """What ``train`` returns per seed: the mean score, or the mean of the per-class means (balanced accuracy).

    Shape:
        - scores: ``(losses, seeds, samples)``; output: ``(losses, seeds)``.
    """
    if groups is None:
        return scores.mean(axis=2)
    return np.mean([scores[:, :, groups == g].mean(axis=2) for g in np.unique(groups)], axis=0)


class KnownTruth:
    """A ``train(criterion, run)`` for :func:`seesaw_losses.compare` that trains nothing: it records the held-out
    scores of ``scores[loss, seed]`` (drawn beforehand with :func:`draw`) and returns their statistic. Loss k is
    the k-th loss ``compare`` trains (it trains them in the order given, seeds ``0, 1, ...``, no tuning)."""

    def __init__(self, scores: np.ndarray, groups: Optional[np.ndarray]):
        self.index: Dict[str, int] = {}
        self.scores, self.groups = scores, groups
        self.values = statistic_per_seed(scores, groups)

    def __call__(self, criterion, run) -> Dict[str, float]:
        k = self.index.setdefault(run.loss, len(self.index))
        run.record_samples("score", self.scores[k, run.seed], self.groups)
        return {"score": float(self.values[k, run.seed])}
