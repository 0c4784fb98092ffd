"""The printed comparison: tables that fit 120 columns, the verdict and "best in" columns, and the
recommendation's wording about equivalent, tied and worse losses."""

import numpy as np
import pytest
import torch

from seesaw_losses import compare
from seesaw_losses.experiments import BINARY, CLASSIFICATION
from seesaw_losses.experiments.losses import DEFAULT_BINARY_LOSSES
from seesaw_losses.experiments.reporting.report import TABLE_WIDTH, format_tables
from seesaw_losses.experiments.trainers.classification import classification_scores

BINARY_METRICS = ["dice", "iou", "precision", "recall", "average_precision", "threshold", "dice@0.5", "iou@0.5",
                  "precision@0.5", "recall@0.5", "cldice", "betti0_error", "betti1_error", "hd95",
                  "surface_dice@1px", "surface_dice@2px"]


class Scripted:
    """A binary segmentation ``train``: every held-out image's score is a per-(seed, image) value shared by all
    losses, plus the loss's ``offset``, plus ``wiggle`` added to even and subtracted from odd images (so the
    loss's mean is off by exactly ``offset`` and its differences vary over images by ``wiggle``). Records the
    per-image scores and returns every binary metric."""

    kind, name = BINARY, "segmentation"

    def __init__(self, losses, images=24):
        self.losses, self.images = losses, images

    def __call__(self, criterion, run):
        offset, wiggle = self.losses[run.loss.split(":")[0]]
        shared = np.linspace(0.4, 0.7, self.images) + np.random.default_rng(run.seed).normal(0, 0.05, self.images)
        scores = shared + offset + wiggle * (-1.0) ** np.arange(self.images)
        run.record_samples("image_dice", scores)
        run.artifacts.update(epoch_seconds=0.5, epoch_timing="after_first", peak_mb=24.5)  # as the built-in trainers
        return {"image_dice": float(scores.mean()), **{key: 0.123 for key in BINARY_METRICS}, "hd95": 12.345}


def test_nine_losses_and_every_binary_metric_fit_120_columns():
    losses = {loss: (-0.01 * k, 0.02) for k, loss in enumerate(DEFAULT_BINARY_LOSSES)}
    result = compare(Scripted(losses), list(DEFAULT_BINARY_LOSSES), metric="image_dice",
                     class_counts=[99, 1], seeds=2, progress=False)
    text = str(result)
    lines = text.splitlines()
    tables = lines[:next(k for k, line in enumerate(lines) if line.startswith("Held-out split"))]
    assert max(len(line) for line in tables) <= TABLE_WIDTH
    ranking, topology, at_half = (line for line in tables if line.lstrip().startswith("#   Loss"))
    assert "(held-out, ranked by Dice/img)" in text and "(2)" not in text  # the main table is one table, not split
    for column in ("Dice/img", "Dice", "IoU", "Prec.", "Recall", "AP", "Thr", "Best in", "vs best"):
        assert column in ranking
    for column in ("clDice", "Betti0 err", "Betti1 err", "HD95", "SDice@1px", "SDice@2px", "s/epoch", "Peak MB"):
        assert column in topology and column not in ranking
    assert "Your model: topology and costs" in text and "Your model: at threshold 0.5" in text
    assert "Dice@0.5" in at_half and "per class" not in text
    assert "95 % t-interval over held-out images x seeds" in text and "Satterthwaite" in text
    assert "s/epoch: the median epoch (training and validation) after the first, which pays the process warm-up" in text


def test_many_per_class_columns_are_split_over_tables_of_at_most_120_columns():
    from seesaw_losses.experiments.reporting.report import _rich_table

    head = ["#", "Loss"] + [f"IoU {c}" for c in range(40)]
    text = _rich_table("per class", head, [["1", "ce"] + ["0.500"] * 40])
    assert max(len(line) for line in text.splitlines()) <= TABLE_WIDTH
    assert all(f"IoU {c}" in text for c in range(40)) and "per class (2)" in text


def verdicts(result):
    return {entry.loss: (entry.tied, entry.equivalent) for entry in result.ranking}


def test_verdicts_and_the_recommendation_name_equivalent_tied_and_worse_losses():
    losses = {"bce": (0.0, 0.0), "dice": (-0.001, 0.005), "focal": (-0.04, 0.15), "weighted_bce": (-0.25, 0.01)}
    train = Scripted(losses)
    result = compare(train, list(losses), metric="image_dice", class_counts=[99, 1], seeds=3, progress=False)
    assert [e.loss for e in result.ranking][0] == "bce" and result.winner == "bce"
    assert verdicts(result) == {"bce": (True, True), "dice": (True, True), "focal": (True, False),
                                "weighted_bce": (False, False)}
    text = str(result)
    ranking = text.split("\n\n")[1]  # the first table, under its title
    rows = {line.split()[1]: line for line in ranking.splitlines() if line[:3].strip().isdigit()}
    assert rows["bce"].rstrip().endswith("best") and " equivalent p=" in rows["dice"]
    assert " tied p=" in rows["focal"] and rows["weighted_bce"].rstrip().endswith("worse p<0.01")
    best_in = f"{100 * result.ranking[0].best_fraction:.0f} %"
    assert best_in in rows["bce"]
    recommendation = text.splitlines()[-1]
    assert recommendation.startswith(f"Recommendation: bce (Dice/img {result.ranking[0].mean:.3f} [")
    assert f"best in {best_in} of resamples" in recommendation
    assert ("The choice among bce and dice does not matter: with 95 % confidence for all at once, none is more "
            "than 0.005 below bce") in recommendation
    assert ("Not settled: focal is neither shown worse nor shown within 0.005 of the best (focal: about "
            in recommendation)
    assert "held-out samples (now 24) would tell)" in recommendation
    wide = compare(train, list(losses), metric="image_dice", class_counts=[99, 1], seeds=3, margin=0.2,
                   progress=False)
    assert verdicts(wide)["focal"] == (True, True) and wide.margin == 0.2  # the same data, a wider margin
    assert "The choice among bce, dice and focal does not matter" in str(wide)
    assert [e.p_value for e in wide.ranking] == pytest.approx([e.p_value for e in result.ranking], nan_ok=True)


def test_one_clear_winner_says_every_other_loss_is_worse():
    losses = {"bce": (0.0, 0.0), "dice": (-0.2, 0.01)}
    result = compare(Scripted(losses), list(losses), metric="image_dice", class_counts=[99, 1], seeds=2,
                     progress=False)
    recommendation = format_tables(result).splitlines()[-1]
    assert "best in 100 % of resamples" in recommendation and "every other loss is significantly worse" in recommendation


def test_a_bad_margin_fails_before_any_training():
    with pytest.raises(ValueError, match="compare: margin must be a number >= 0"):
        compare(Scripted({"bce": (0, 0)}), ["bce"], metric="image_dice", margin=-0.1, progress=False)


def test_costs_of_a_function_that_gives_no_epochs_are_seconds_per_run():
    result = compare(lambda criterion, run: {"f1": 0.5 + 0.01 * run.seed}, ["bce", "dice"], metric="f1",
                     seeds=2, progress=False)
    costs = next(line for line in str(result).splitlines() if line.lstrip().startswith("#   Loss") and "s/" in line)
    assert "s/run" in costs and "s/epoch" not in costs and "Peak MB" not in costs


def test_epoch_seconds_leave_out_the_first_epoch_which_pays_the_warm_up(monkeypatch):
    # A scripted clock: the first epoch takes 10 s (the process warming up), the others about 1 s.
    from types import SimpleNamespace

    import torch

    from seesaw_losses.experiments.api import Run
    from seesaw_losses.experiments.trainers import fit as fitting

    clock = {"now": 0.0}
    monkeypatch.setattr(fitting, "time", SimpleNamespace(perf_counter=lambda: clock["now"]))
    epochs = iter([10.0, 1.2, 1.0, 0.8])

    def validate(model):
        clock["now"] += next(epochs)
        return 0.5

    run = Run(seed=0, tuning=False, loss="bce", hyperparameters={})
    x = torch.randn(8, 2)
    model = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.Flatten(0))
    fitting.fit(model, torch.nn.BCEWithLogitsLoss(), x, (x[:, 0] > 0).float(), validate, fitting.Budget(4, 4, 0.01),
                run, sigmoid=True)
    assert run.artifacts["epoch_seconds"] == pytest.approx(1.0) and run.artifacts["epoch_timing"] == "after_first"


class ClassFolders:
    """A class-folder ``train`` returning what the built-in one returns: the same random logits for every loss."""

    kind, name = CLASSIFICATION, "class_folders"
    classes, counts = ["cat", "dog", "owl"], [150, 40, 8]

    def __call__(self, criterion, run):
        generator = torch.Generator().manual_seed(run.seed)
        logits, labels = torch.randn(60, 3, generator=generator), torch.randint(0, 3, (60,), generator=generator)
        return classification_scores(logits, labels, self.classes, self.counts)[0]


def _table(text, title):
    """The header line of the table titled ``title``."""
    lines = text.splitlines()
    start = lines.index(title)
    return next(line for line in lines[start:] if line.lstrip().startswith("#   Loss"))


def test_a_class_folder_comparison_shows_every_metric_under_a_short_header():
    result = compare(ClassFolders(), ["ce", "seesaw"], class_counts=ClassFolders.counts, metric="balanced_accuracy",
                     seeds=2, progress=False)
    text = str(result)
    tables = text[:text.index("Held-out split")]
    assert "_" not in tables.replace("class_folders", "")  # no metric under its key
    assert _table(text, "Your model (held-out, ranked by Bal. acc)").split()[2:-3] == [
        "Bal.", "acc", "Accuracy", "Macro", "F1", "Many", "Medium", "Few", "Best"]
    adjusted = _table(text, "Your model: after post-hoc logit adjustment")
    assert all(f"{name} adj." in adjusted for name in ("Bal. acc", "Accuracy", "Macro F1", "Many", "Medium", "Few"))
    assert _table(text, "Your model: per class").split()[2:] == ["Accuracy", "cat", "Accuracy", "dog", "Accuracy",
                                                                 "owl"]


def test_a_metric_the_catalog_does_not_declare_is_shown_in_the_ranking_table_under_its_name():
    def train(criterion, run):
        return {"score": 0.5 + 0.01 * run.seed, "loss/train": 0.25, "iou/cat": 0.75, "dice@0.5": 0.5}

    text = str(compare(train, ["bce", "dice"], metric="score", seeds=2, progress=False))
    assert _table(text, "Your model (held-out, ranked by score)").split()[2:5] == ["score", "loss/train", "Best"]
    assert _table(text, "Your model: per class").split()[2:] == ["IoU", "cat"]
    assert _table(text, "Your model: at threshold 0.5").split()[2:] == ["Dice@0.5"]
