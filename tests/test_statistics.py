"""Statistics of a comparison over held-out samples x seeds: intervals, the labels against the best (worse,
equivalent, tied), best fraction and the winner. ``tests/test_verdicts.py`` checks the labels' error rates on
simulated comparisons with known truth."""

import math

import numpy as np
import pytest

from scipy import stats

from seesaw_losses.experiments.statistics import SampleScores, _Moments, mean_ci, summarize


def test_image_level_paired_test_separates_losses_that_seed_level_values_cannot():
    # The returned (pooled) metric has about the same mean for both losses and a large seed-to-seed spread, while
    # A beats B on every image of every seed by 0.01.
    rng = np.random.default_rng(1)
    values = {"a": [0.62, 0.75, 0.66], "b": [0.70, 0.60, 0.72]}
    image_difficulty = rng.uniform(0.3, 0.9, 32)
    seed_effect = np.array([-0.05, 0.08, 0.0])[:, None]
    b = image_difficulty + seed_effect + rng.normal(0, 0.002, (3, 32))
    a = b + 0.01
    samples = {"a": SampleScores(a), "b": SampleScores(b)}

    seed_level = summarize(values)
    image_level = summarize(values, samples=samples)

    assert seed_level.order == image_level.order == ["a", "b"]
    assert seed_level.losses["b"].p_value > 0.05 and seed_level.losses["b"].tied
    assert image_level.losses["b"].p_value < 0.05 and not image_level.losses["b"].tied
    assert image_level.losses["a"].best_fraction == 1.0
    assert "32 held-out samples x 3 seed(s)" in image_level.footnote
    assert seed_level.footnote.startswith("seed level only (no per-sample scores): 95 % t-interval over 3 seeds")


def test_intervals_cover_the_true_mean_at_about_the_nominal_rate():
    rng = np.random.default_rng(0)
    covered, simulations = 0, 200
    for k in range(simulations):
        # Images are a sample from a population of images, seeds from a population of initialisations.
        scores = (0.6 + rng.normal(0, 0.1, 32)[None, :] + rng.normal(0, 0.01, (5, 1))
                  + rng.normal(0, 0.05, (5, 32)))
        summary = summarize({"a": scores.mean(axis=1)}, samples={"a": SampleScores(scores)}, resamples=500, seed=k)
        low, high = summary.losses["a"].ci95
        covered += low <= 0.6 <= high
    assert 0.85 <= covered / simulations <= 0.99


@pytest.mark.parametrize("seed_sd", [0.0, 0.03])
def test_equal_losses_are_called_worse_at_about_the_nominal_rate(seed_sd):
    # The better-looking of two equal losses is the best; the other is labelled worse in about 5 % of the
    # simulations (alpha = 0.05: the best is chosen from the data, so the test is two-sided), with or without a
    # seed-to-seed variation of each loss.
    rng = np.random.default_rng(7)
    worse, simulations = 0, 200
    for k in range(simulations):
        image = rng.normal(0.6, 0.1, 32)
        a, b = (image + rng.normal(0, seed_sd, (3, 1)) + rng.normal(0, 0.05, (3, 32)) for _ in range(2))
        summary = summarize({"a": a.mean(axis=1), "b": b.mean(axis=1)},
                            samples={"a": SampleScores(a), "b": SampleScores(b)}, resamples=50, seed=k)
        worse += not summary.losses[summary.order[1]].tied
    assert 0.01 <= worse / simulations <= 0.09


def test_groups_give_balanced_accuracy():
    # 90 samples of class 0, 10 of class 1; "a" is right on every class-0 sample and wrong on class 1
    # (accuracy 0.9, balanced accuracy 0.5); "b" is right on 70 % of each class (0.7 both ways).
    truth = np.array([0] * 90 + [1] * 10)
    a = np.tile((truth == 0).astype(float), (2, 1))
    b = np.tile(np.r_[np.arange(90) % 10 < 7, np.arange(10) < 7].astype(float), (2, 1))
    np.testing.assert_allclose(_Moments.of(np.stack([a, b]), truth).statistic, [0.5, 0.7])

    plain = summarize({"a": [0.9, 0.9], "b": [0.7, 0.7]}, samples={"a": SampleScores(a), "b": SampleScores(b)})
    balanced = summarize({"a": [0.5, 0.5], "b": [0.7, 0.7]},
                         samples={"a": SampleScores(a, truth), "b": SampleScores(b, truth)})
    assert plain.winner == "a" and balanced.winner == "b"
    assert balanced.losses["a"].p_value < 0.05
    assert "per-group means" in balanced.footnote
    # values equal to the full-table statistic: the interval is not shifted and holds the mean
    low, high = balanced.losses["b"].ci95
    assert low < 0.7 < high


def test_minimize_ranks_lower_values_first():
    rng = np.random.default_rng(2)
    low_scores = rng.normal(1.0, 0.1, (3, 20))
    samples = {"high": SampleScores(low_scores + 0.5), "low": SampleScores(low_scores)}
    values = {name: s.scores.mean(axis=1) for name, s in samples.items()}
    summary = summarize(values, direction="minimize", samples=samples)
    assert summary.order == ["low", "high"] and summary.winner == "low"
    assert summary.losses["high"].p_value < 0.05 and summary.losses["low"].best_fraction == 1.0


def test_best_fraction_sums_to_one_and_identical_losses_tie_and_share_it():
    rng = np.random.default_rng(3)
    base = rng.uniform(0.4, 0.8, (3, 16))
    samples = {"a": SampleScores(base), "b": SampleScores(base.copy()), "c": SampleScores(base - 0.2)}
    values = {name: s.scores.mean(axis=1) for name, s in samples.items()}
    summary = summarize(values, samples=samples)
    fractions = [summary.losses[name].best_fraction for name in "abc"]
    assert math.isclose(sum(fractions), 1.0)
    assert fractions[0] == pytest.approx(0.5) and fractions[1] == pytest.approx(0.5) and fractions[2] == 0
    second = summary.order[1]
    assert summary.losses[second].tied and summary.losses[second].p_value == 1.0
    assert summary.losses[second].equivalent


def test_equivalence_needs_the_upper_bound_within_the_margin_and_simplicity_breaks_ties_in_best_fraction():
    rng = np.random.default_rng(4)
    base = rng.uniform(0.4, 0.8, (3, 16)) + rng.normal(0, 0.05, (3, 1))
    samples = {"combo": SampleScores(base), "same": SampleScores(base.copy()),
               "close": SampleScores(base + rng.normal(0, 0.005, (3, 16)) - 0.001)}
    values = {name: s.scores.mean(axis=1) for name, s in samples.items()}
    simplicity = {"combo": (2, 1), "same": (1, 0), "close": (1, 0)}
    summary = summarize(values, samples=samples, simplicity=simplicity, margin=0.01)
    assert summary.winner == "same"  # as often best as "combo", and simpler
    close = summary.losses["close"]
    assert close.tied and close.equivalent and 0.001 < close.deficit_bound <= 0.01 and close.settle == ""
    strict = summarize(values, samples=samples, margin=0.001)  # the bound is above the margin: not shown
    assert strict.losses["close"].tied and not strict.losses["close"].equivalent
    assert strict.losses["close"].deficit_bound == pytest.approx(close.deficit_bound)
    assert strict.losses["close"].settle.endswith("would tell")

    noise = rng.normal(0, 0.3, (3, 16))
    far = {"best": SampleScores(base), "far": SampleScores(base + noise - noise.mean() - 0.02)}
    summary = summarize({name: s.scores.mean(axis=1) for name, s in far.items()}, samples=far, margin=0.01)
    assert summary.losses["far"].tied and not summary.losses["far"].equivalent  # noisy, not close


def test_same_inputs_give_the_same_summary_and_the_seed_changes_the_resamples():
    rng = np.random.default_rng(5)
    samples = {name: SampleScores(rng.uniform(0, 1, (3, 32))) for name in "abc"}
    values = {name: s.scores.mean(axis=1) for name, s in samples.items()}
    assert repr(summarize(values, samples=samples)) == repr(summarize(values, samples=samples))  # NaN != NaN
    assert repr(summarize(values, samples=samples, seed=1)) != repr(summarize(values, samples=samples))


def test_one_seed_without_samples_tests_nothing():
    summary = summarize({"a": [0.5], "b": [0.4], "c": [0.45]})
    assert summary.order == ["a", "c", "b"] and summary.winner == "a"
    assert [summary.losses[name].tied for name in "abc"] == [True, False, False]
    assert all(math.isnan(summary.losses[name].p_value) for name in "abc")
    assert math.isnan(summary.losses["a"].ci95[0])
    assert "no test" in summary.footnote


def test_scores_missing_for_some_losses_fall_back_to_seed_level_and_say_so():
    samples = {"a": SampleScores(np.full((3, 4), 0.6))}
    summary = summarize({"a": [0.6, 0.7, 0.65], "b": [0.5, 0.55, 0.6]}, samples=samples)
    assert summary.footnote.startswith("seed level only (no per-sample scores for b)")
    # two losses, one pair: the paired t-test over the seeds, two-sided (the best is chosen from the data); its
    # law is drawn by Monte Carlo (20,000 draws: a standard error of 0.002 at p = 0.07)
    paired = stats.ttest_rel([0.6, 0.7, 0.65], [0.5, 0.55, 0.6]).pvalue
    assert summary.losses["b"].p_value == pytest.approx(paired, abs=0.006)


def test_mean_ci_is_the_t_interval_and_the_seed_level_interval_is_it_too():
    mean, low, high = mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0 and high - mean == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert math.isnan(mean_ci([1.0])[1]) and mean_ci([0.5, math.nan, 0.7])[0] == pytest.approx(0.6)
    summary = summarize({"a": [1.0, 2.0, 3.0], "b": [0.5, 1.0, 2.0]})
    assert summary.losses["b"].ci95 == pytest.approx(mean_ci([0.5, 1.0, 2.0])[1:])
    # the best (and recommended) loss, picked from two: t(0.975 ** (1 / 2)) on either side
    half = stats.t.ppf(0.975 ** 0.5, 2) * np.std([1.0, 2.0, 3.0], ddof=1) / math.sqrt(3)
    assert summary.losses["a"].ci95 == pytest.approx((2.0 - half, 2.0 + half))


def test_step_down_comparisons_with_the_best_and_the_adjusted_p_value():
    # Five losses over four seeds. The seed mean square of a difference is pooled over the losses (the loss x seed
    # interaction, 4 x 3 df). The worst loss needs the studentised range of five losses; the others, further up,
    # smaller critical values, so that "third" and "fourth" are shown worse where Bonferroni over the ten pairs
    # (twenty times the one-sided p-value) would not.
    values = {"best": [0.70, 0.72, 0.69, 0.71], "second": [0.69, 0.70, 0.70, 0.69], "third": [0.68, 0.71, 0.67, 0.69],
              "fourth": [0.68, 0.70, 0.68, 0.69], "last": [0.67, 0.71, 0.67, 0.68]}
    table = np.array(list(values.values()))
    interaction = table - table.mean(axis=1, keepdims=True) - table.mean(axis=0) + table.mean()
    se = math.sqrt(2 * (interaction ** 2).sum() / 12 / 4)
    t = (table[0].mean() - table.mean(axis=1)) / se
    summary = summarize(values)
    p = [summary.losses[name].p_value for name in values]
    assert math.isnan(p[0]) and p[1] >= p[2] >= p[3] >= p[4]  # step-down: never smaller than further down
    # the last loss's p-value is the studentised range's (its law is drawn by Monte Carlo: 20,000 draws)
    assert p[4] == pytest.approx(stats.studentized_range.sf(t[4] * math.sqrt(2), 5, 12), abs=0.003)
    assert [summary.losses[name].tied for name in values] == [True, True, False, False, False]
    assert 20 * stats.t.sf(t[2], 12) > 0.05
    assert "step-down comparisons with the best" in summary.footnote


def test_the_equivalence_bound_uses_the_one_sided_dunnett_value():
    # c_1 of K losses: one-sided t for two losses; for five with infinite df, Dunnett's tabulated 2.16 (four
    # comparisons with a control, one-sided, 5 %). Drawn by Monte Carlo (20,000 draws) and interpolated in 1 / df.
    from seesaw_losses.experiments.statistics import _bound_critical

    assert _bound_critical(np.array([10.0, 3.0]), 2, 0.05) == pytest.approx(stats.t.ppf(0.95, [10, 3]), abs=0.04)
    assert _bound_critical(np.array([math.inf]), 5, 0.05)[0] == pytest.approx(2.16, abs=0.03)
    assert math.isnan(_bound_critical(np.array([math.nan]), 5, 0.05)[0])


@pytest.mark.parametrize("kwargs, match", [
    ({"values": {}}, "at least one loss"),
    ({"values": {"a": [1.0, 2.0], "b": [1.0]}}, "same number"),
    ({"values": {"a": [math.nan]}}, "finite"),
    ({"values": {"a": [1.0]}, "direction": "up"}, "direction must be one of"),
    ({"values": {"a": [1.0]}, "samples": {"b": SampleScores(np.zeros((1, 3)))}}, "only losses of values"),
    ({"values": {"a": [1.0]}, "samples": {"a": SampleScores(np.zeros((2, 3)))}}, r"\(seeds=1, samples\)"),
    ({"values": {"a": [1.0], "b": [1.0]}, "samples": {"a": SampleScores(np.zeros((1, 3)), np.zeros(3)),
                                                     "b": SampleScores(np.zeros((1, 3)))}}, "groups"),
])
def test_bad_arguments_are_refused(kwargs, match):
    values = kwargs.pop("values")
    with pytest.raises(ValueError, match=match):
        summarize(values, **kwargs)


def test_variance_of_a_mean_of_group_means_with_unequal_and_singleton_groups():
    # One seed: var = h * s2, h the sum of the squared per-sample weights, s2 pooled within the groups that have
    # two samples or more; a singleton group adds no degree of freedom but keeps its weight (1 / G).
    scores = np.array([[[0.1, 0.3, 0.5, 0.9, 0.7, 0.4]]])
    groups = np.array([0, 0, 0, 1, 1, 2])
    moments = _Moments.of(scores, groups)
    weights = np.array([1 / 9] * 3 + [1 / 6] * 2 + [1 / 3])
    assert moments.statistic[0] == pytest.approx(scores[0, 0] @ weights)
    pooled = (np.var([0.1, 0.3, 0.5]) * 3 + np.var([0.9, 0.7]) * 2) / (6 - 3)
    variance, df = moments.single_variance()
    assert variance[0] == pytest.approx(weights @ weights * pooled) and df[0] == pytest.approx(3)


def test_the_bootstrap_keeps_every_group_at_its_size_and_its_normal_law_matches_the_exact_draws():
    from seesaw_losses.experiments.statistics import _exact_sums, _normal_sums

    rng = np.random.default_rng(0)
    codes = np.repeat(np.arange(4), [50, 30, 3, 1])
    members = (codes[None, :] == np.arange(4)[:, None]).astype(float)  # column g: 1 on group g's samples
    drawn = _exact_sums(members, np.ones(codes.size), codes, rng, 200)
    assert (drawn == [50, 30, 3, 1]).all()  # every resample draws each group's size from its own members

    columns = rng.normal(0, 1, (3, codes.size)) + np.array([[1.0], [0.5], [0.0]]) * rng.normal(0, 1, codes.size)
    weights = 1 / (4 * np.bincount(codes)[codes])
    exact = _exact_sums(columns, weights, codes, rng, 20000)
    normal = _normal_sums(columns, weights, codes, np.ones(4, dtype=bool), rng, 20000)
    np.testing.assert_allclose(normal.mean(axis=0), columns @ weights, atol=0.01)
    np.testing.assert_allclose(exact.mean(axis=0), columns @ weights, atol=0.01)
    np.testing.assert_allclose(np.cov(normal.T), np.cov(exact.T), rtol=0.06, atol=2e-4)


def test_best_fraction_from_the_normal_law_of_many_samples_matches_the_exact_bootstrap(monkeypatch):
    from seesaw_losses.experiments import statistics

    rng = np.random.default_rng(6)
    groups = np.repeat(np.arange(5), [2000, 1500, 1000, 400, 100])
    base = rng.uniform(0.3, 0.9, groups.size)
    samples = {name: SampleScores((rng.random((3, groups.size)) < base + shift).astype(float), groups)
               for name, shift in (("a", 0.0), ("b", 0.004), ("c", 0.008))}
    values = {name: s.scores.mean(axis=1) for name, s in samples.items()}
    assert 2000 * groups.size > statistics.EXACT_DRAWS  # the groups are resampled from their normal law
    approximated = summarize(values, samples=samples)
    monkeypatch.setattr(statistics, "EXACT_DRAWS", 10 ** 12)
    exact = summarize(values, samples=samples)
    for name in samples:
        assert approximated.losses[name].best_fraction == pytest.approx(exact.losses[name].best_fraction, abs=0.04)
