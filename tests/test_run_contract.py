"""What ``train(criterion, run)`` and ``compare`` agree on: the :class:`Run` fields, the :class:`Trainer` protocol
a built-in trainer follows, and :class:`Diverged` (a diverged run) kept apart from :class:`DataError` (bad data)."""

import math
from dataclasses import dataclass

import pytest

from compare_functions import scripted_score
from seesaw_losses import compare
from seesaw_losses.experiments import DataError, Diverged
from seesaw_losses.experiments.run import SIGMOID, SOFTMAX, Run, Trainer

from test_compare_api import studies

QUIET = {"progress": False}


def test_the_run_says_the_family_of_the_loss():
    seen = {}

    def train(criterion, run):
        seen[run.loss] = (run.family, run.sigmoid)
        return {"score": 0.5}

    compare(train, ["bce", "ce"], metric="score", seeds=1, **QUIET)
    assert seen == {"bce": (SIGMOID, True), "ce": (SOFTMAX, False)}
    assert Run(0, False, "bce", {}).family == SOFTMAX  # the default, as for a hand-made Run


def test_a_diverged_trial_is_pruned_and_the_search_goes_on(tmp_path):
    def train(criterion, run):
        if run.tuning and run.trial.number == 1:
            raise Diverged(f"{run.loss}: the loss became nan")
        return {"score": scripted_score(run.loss, run.seed, run.tuning)}

    result = compare(train, ["focal"], metric="score", seeds=1, tune=3, out=tmp_path, **QUIET)
    assert [state for _, state, _ in studies(tmp_path)["focal"]] == ["COMPLETE", "PRUNED", "COMPLETE"]
    assert result.ranking[0].pruned == 1


def test_unreadable_data_in_a_trial_is_an_error_not_a_pruned_trial(tmp_path):
    def train(criterion, run):
        raise DataError("image 07.png cannot be read")

    with pytest.raises(DataError, match="07.png"):
        compare(train, ["focal"], metric="score", seeds=1, tune=2, out=tmp_path, **QUIET)
    assert [state for _, state, _ in studies(tmp_path)["focal"]] == ["FAIL", "WAITING"]  # a resume retries it


def test_a_diverged_final_run_propagates():
    def train(criterion, run):
        raise Diverged("the loss became inf")

    with pytest.raises(Diverged, match="became inf"):
        compare(train, ["bce"], metric="score", seeds=1, **QUIET)


@dataclass
class SoftmaxOnly:
    """A stand-in built-in trainer: what the :class:`Trainer` protocol asks, and a constant score."""

    name: str = "toy"
    kind: str = "custom"
    metric: str = "balanced_accuracy"
    families: tuple = (SOFTMAX,)
    ignore_index: int = None
    epochs: int = 2

    def class_counts(self):
        return [90, 10]

    def __call__(self, criterion, run):
        return {"balanced_accuracy": 0.75, "epochs_seen": float(self.epochs)}


def test_a_trainer_supplies_metric_counts_and_the_families_it_trains():
    trainer = SoftmaxOnly()
    assert isinstance(trainer, Trainer)
    result = compare(trainer, ["class_balanced_ce"], seeds=1, **QUIET)  # counts and metric from the trainer
    assert result.metric == "balanced_accuracy" and result.class_counts == [90, 10]
    assert "class_counts=[90,10]" in result.winner  # built with the trainer's counts
    with pytest.raises(ValueError, match=r"losses='bce' is a one-logit \(sigmoid\) loss"):
        compare(trainer, ["ce", "bce"], seeds=1, **QUIET)


def test_fresh_replaces_a_study_and_cannot_be_combined_with_resume(tmp_path):
    def train(criterion, run):
        return {"score": scripted_score(run.loss, run.seed, run.tuning)}

    compare(train, ["focal"], metric="score", seeds=1, tune=2, out=tmp_path, **QUIET)
    with pytest.raises(ValueError, match="fresh=True to replace it"):
        compare(train, ["focal"], metric="score", seeds=1, tune=2, out=tmp_path, **QUIET)
    with pytest.raises(ValueError, match="choose one"):
        compare(train, ["focal"], metric="score", seeds=1, tune=2, out=tmp_path, resume=True, fresh=True, **QUIET)
    compare(train, ["focal"], metric="score", seeds=1, tune=1, out=tmp_path, fresh=True, **QUIET)
    assert len(studies(tmp_path)["focal"]) == 1


def test_a_users_per_class_metric_with_nan_is_only_a_number():
    result = compare(lambda criterion, run: {"score": 0.5, "iou/cat": float("nan")}, ["bce"], metric="score",
                     seeds=1, **QUIET)
    assert math.isnan(result.ranking[0].metrics["iou/cat"])
    assert not any("absent" in note for note in result.notes)  # that note is the segmentation evaluator's


def test_a_repeated_term_has_one_name_in_the_module_the_search_space_and_the_winner_file():
    from seesaw_losses import build_loss
    from seesaw_losses.experiments.losses import parse_loss, search_space
    from seesaw_losses.experiments.reporting.report import hyperparameters

    keys = set(build_loss("focal+focal").weights)
    assert keys == {"focal", "focal_1"}
    assert {name.split(".")[0] for name in search_space(parse_loss("focal+focal"))} == keys
    assert {name.split(".")[0] for name in hyperparameters("focal:gamma=1+focal:gamma=3")} == keys
