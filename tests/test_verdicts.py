"""The labels of a comparison against known truth (``tests/verdict_truth.py``): scores drawn from a model in
which the losses' true statistics are known, handed to the statistics (most replicates) and to
``compare(train, ...)`` end to end (a few), so that only the statistics decide.

Every simulation is seeded, so every rate below is one fixed number; the bounds allow the simulation error of
the stated level (two standard errors of a rate over the replicates), so that another seed would pass too.
``scripts/simulate_verdicts.py`` runs the same simulations with more replicates (the table in docs/compare.md).
"""

import math

import numpy as np
import pytest
from verdict_truth import STRUCTURES, KnownTruth, draw, statistic_per_seed

from seesaw_losses import compare
from seesaw_losses.experiments.statistics import MARGIN, SampleScores, summarize

ALPHA = 0.05


def summary_of(scores, groups, seed, resamples=50):
    names = [f"loss{k}" for k in range(scores.shape[0])]
    values = dict(zip(names, statistic_per_seed(scores, groups)))
    return names, summarize(values, samples={n: SampleScores(scores[k], groups) for k, n in enumerate(names)},
                            resamples=resamples, seed=seed)


def allowed(rate, replicates):
    """``rate`` plus two standard errors of a rate over ``replicates``."""
    return rate + 2 * math.sqrt(rate * (1 - rate) / replicates)


@pytest.mark.parametrize("structure", ["seed", "sample", "grouped"])
@pytest.mark.parametrize("losses", [2, 5, 9, 12])
def test_equal_losses_are_labelled_worse_at_most_at_the_stated_level(structure, losses):
    # K equal losses, the best chosen from the data: the chance that any of them is labelled worse is at most
    # alpha; the interval of the first loss and that of the loss picked as best (which leans high) cover their
    # true statistic (singleton classes included in "grouped").
    rng, replicates = np.random.default_rng(losses), 150
    any_worse = covered = best_covered = 0
    for r in range(replicates):
        scores, groups, truth = draw(STRUCTURES[structure], [0.0] * losses, rng)
        names, summary = summary_of(scores, groups, r)
        any_worse += not all(summary.losses[name].tied for name in names)
        low, high = summary.losses[names[0]].ci95
        covered += low <= truth[0] <= high
        low, high = summary.losses[summary.order[0]].ci95
        best_covered += low <= truth[0] <= high
    assert any_worse / replicates <= allowed(ALPHA, replicates)
    assert covered / replicates >= 0.90 and best_covered / replicates >= 0.90


@pytest.mark.parametrize("losses", [2, 5, 9, 12])
def test_a_loss_better_by_one_noise_sd_on_every_sample_is_found(losses):
    # Better by one noise sd on every sample and seed: ranked first and every other loss labelled worse.
    rng, replicates = np.random.default_rng(100 + losses), 60
    structure = STRUCTURES["sample"]
    found = 0
    for r in range(replicates):
        scores, groups, _ = draw(structure, [structure.noise_sd] + [0.0] * (losses - 1), rng)
        names, summary = summary_of(scores, groups, r)
        found += summary.order[0] == names[0] and not any(summary.losses[n].tied for n in names[1:])
    assert found / replicates >= 0.80


@pytest.mark.parametrize("structure", ["seed", "sample"])
@pytest.mark.parametrize("losses", [2, 5, 9, 12])
def test_a_loss_better_by_one_noise_sd_is_the_recommendation(structure, losses):
    # What a user who takes the recommendation acts on: the better loss is recommended and ranked first (labelled
    # neither tied nor worse), also where three seeds leave the other losses tied. Not in the grouped structure:
    # there even the loss with the best statistic on the data is the better one in at most 70 % of runs.
    rng, replicates = np.random.default_rng(200 + losses), 60
    recommended = 0
    for r in range(replicates):
        scores, groups, _ = draw(STRUCTURES[structure], [STRUCTURES[structure].noise_sd] + [0.0] * (losses - 1), rng)
        names, summary = summary_of(scores, groups, r)
        recommended += summary.winner == names[0] == summary.order[0]
    assert recommended / replicates >= 0.80


@pytest.mark.parametrize("structure", ["noisy-seeds", "seed"])
def test_a_loss_worse_by_eight_margins_is_rarely_equivalent(structure):
    rng, replicates = np.random.default_rng(7), 150
    equivalent = 0
    for r in range(replicates):
        scores, groups, _ = draw(STRUCTURES[structure], [0.0, -8 * MARGIN], rng)
        names, summary = summary_of(scores, groups, r)
        equivalent += summary.losses[names[1]].equivalent
    assert equivalent / replicates <= 0.05


def test_equal_losses_with_little_noise_are_equivalent_and_the_report_says_so():
    structure = STRUCTURES["sample"]
    rng = np.random.default_rng(3)
    scores, groups, _ = draw(structure, [0.0] * 3, rng)
    scores = scores.mean(axis=0, keepdims=True) + 0.001 * (scores - scores.mean(axis=0, keepdims=True))
    names, summary = summary_of(scores, groups, 0)
    assert all(summary.losses[n].equivalent and summary.losses[n].deficit_bound <= MARGIN for n in names)


@pytest.mark.parametrize("structure, shifts", [
    ("grouped", [0.0] * 9),  # long-tailed held-out classes, singletons included
    ("sample", [0.1, 0.0, 0.0, 0.0]),  # better by two noise sd: found in every draw
])
def test_compare_end_to_end_gives_the_labels_of_the_statistics(structure, shifts):
    # train() trains nothing: it records the drawn per-sample scores; compare must reach the same labels as the
    # statistics on the same tables, and the report must print them.
    losses = [f"focal:gamma={k}" for k in range(len(shifts))]
    rng = np.random.default_rng(11)
    scores, groups, _ = draw(STRUCTURES[structure], shifts, rng)
    result = compare(KnownTruth(scores, groups), losses, metric="score", seeds=STRUCTURES[structure].seeds,
                     progress=False)
    names, summary = summary_of(scores, groups, 0, resamples=2000)
    by_name = dict(zip(names, losses))
    assert [entry.loss for entry in result.ranking] == [by_name[n] for n in summary.order]
    for entry in result.ranking:
        expected = summary.losses[names[losses.index(entry.loss)]]
        assert (entry.tied, entry.equivalent) == (expected.tied, expected.equivalent)
        assert entry.p_value == pytest.approx(expected.p_value, nan_ok=True)
    text = str(result)
    if groups is not None:
        assert any("6 of 10 held-out classes have fewer than 5 samples: 4 (4), 5 (2), 6 (1)" in note
                   for note in result.notes)
        assert not any(entry.equivalent for entry in result.ranking[1:])  # 123 samples of 1/0 cannot show it
    else:
        assert result.ranking[0].loss == losses[0] and not any(e.tied for e in result.ranking[1:])
        assert "every other loss is significantly worse" in text


@pytest.mark.slow
def test_the_rates_hold_with_more_replicates():
    # The table of docs/compare.md, in part: twelve equal losses, 600 replicates per structure.
    for structure in ("seed", "sample", "grouped"):
        rng, replicates = np.random.default_rng(1), 600
        any_worse = 0
        for r in range(replicates):
            scores, groups, _ = draw(STRUCTURES[structure], [0.0] * 12, rng)
            names, summary = summary_of(scores, groups, r, resamples=20)
            any_worse += not all(summary.losses[name].tied for name in names)
        assert any_worse / replicates <= allowed(ALPHA, replicates), structure
