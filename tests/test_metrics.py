import math

import numpy as np
import pytest

from seesaw_losses.experiments.evaluation import metrics


def brute_force_average_precision(scores, truth):
    """sum over positives of the precision at their threshold, ties counted together."""
    scores, truth = scores.ravel(), truth.ravel()
    total = 0.0
    for threshold in np.unique(scores[truth == 1]):
        predicted = scores >= threshold
        precision = (predicted & (truth == 1)).sum() / predicted.sum()
        total += precision * ((scores == threshold) & (truth == 1)).sum()
    return total / truth.sum()


def test_average_precision_matches_brute_force_with_ties():
    rng = np.random.default_rng(0)
    scores = np.round(rng.random((3, 10, 10)), 1).astype(np.float32)
    truth = (rng.random((3, 10, 10)) < 0.2).astype(int)
    found = metrics.binary_segmentation(scores, truth)["average_precision"]
    assert found == pytest.approx(brute_force_average_precision(scores, truth), abs=1e-6)


def test_precision_recall_curve_ends_and_best_f1_threshold():
    scores = np.array([0.1, 0.2, 0.9, 0.8, 0.3], dtype=np.float32)
    truth = np.array([0, 0, 1, 1, 0])
    precision, recall, thresholds = metrics.precision_recall_curve(scores, truth)
    assert recall[0] == 1.0 and precision[0] == pytest.approx(0.4) and recall[-1] == 0 and precision[-1] == 1
    assert len(thresholds) == len(precision) - 1
    assert metrics.best_f1_threshold(scores, truth) == pytest.approx(0.8)


def test_binary_segmentation_counts_at_both_thresholds():
    mask = np.array([[[1, 1, 0, 0]]])
    probability = np.array([[[0.9, 0.4, 0.7, 0.1]]], dtype=np.float32)
    found = metrics.binary_segmentation(probability, mask, threshold=0.3)
    # at 0.5: tp=1, fn=1, fp=1; at 0.3: tp=2, fp=1
    assert found["dice@0.5"] == pytest.approx(0.5) and found["iou@0.5"] == pytest.approx(1 / 3)
    assert found["precision@0.5"] == pytest.approx(0.5) and found["recall@0.5"] == pytest.approx(0.5)
    assert found["dice"] == pytest.approx(0.8) and found["recall"] == 1.0 and found["threshold"] == 0.3


def test_ignore_index_is_left_out_of_every_binary_metric():
    rng = np.random.default_rng(1)
    probability = rng.random((2, 6, 6)).astype(np.float32)
    mask = (rng.random((2, 6, 6)) < 0.3).astype(np.int64)
    skip = rng.random((2, 6, 6)) < 0.25
    with_skip = np.where(skip, 255, mask)
    found = metrics.binary_segmentation(probability, with_skip, ignore_index=255)
    expected = metrics.binary_segmentation(probability[~skip], mask[~skip])
    assert found == pytest.approx(expected)


def test_an_absent_class_is_left_out_of_miou_not_scored_one():
    mask = np.array([[[0, 1, 1, 1]]])
    predicted = np.array([[[0, 0, 1, 1]]])  # class 2 is neither in the target nor predicted
    found = metrics.multiclass_segmentation(predicted, mask, 3)
    assert found["iou/0"] == pytest.approx(0.5) and found["iou/1"] == pytest.approx(2 / 3)
    assert math.isnan(found["iou/2"]) and math.isnan(found["dice/2"])
    assert found["mean_iou"] == pytest.approx((0.5 + 2 / 3) / 2)  # with IoU 1 for class 2 it would read 0.722
    assert found["dice/1"] == pytest.approx(0.8) and found["pixel_accuracy"] == 0.75
    assert metrics.absent_classes(found) == [2]


def test_multiclass_ignore_index_and_classification():
    mask = np.array([[[0, 1, 255, 2]]])
    found = metrics.multiclass_segmentation(np.array([[[0, 1, 2, 2]]]), mask, 3, ignore_index=255)
    assert found["mean_iou"] == 1.0 and found["pixel_accuracy"] == 1.0
    scores = metrics.classification(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]), 3,
                                    {"head": [0], "medium": [1], "tail": [2]})
    assert [scores[f"accuracy/{c}"] for c in range(3)] == [1.0, 0.5, 1.0]
    assert scores["accuracy"] == 0.75 and scores["medium_accuracy"] == 0.5
    assert scores["balanced_accuracy"] == pytest.approx(2.5 / 3)


def test_the_recommendation_is_the_most_often_best_and_among_equals_the_simplest():
    from seesaw_losses.experiments.reporting import report
    from seesaw_losses.experiments.api import compare

    dice = {"bce+dice": [0.70, 0.72, 0.69], "focal": [0.70, 0.72, 0.69], "bce": [0.50, 0.52, 0.49]}
    found = compare(lambda criterion, run: {"dice": dice[run.loss.split(":")[0]][run.seed]}, list(dice),
                    metric="dice", class_counts=[90, 10], progress=False)
    assert [r.loss for r in found.ranking if r.tied] == ["bce+dice", "focal"]
    assert found.winner == "focal"  # as often best as bce+dice, and one term against two
    text = report.recommendation(found)
    assert text.startswith("Recommendation: focal (Dice 0.703 [") and "best in 50 % of resamples" in text
    assert "as often as bce+dice: the simplest" in text and "The choice among bce+dice and focal does not" in text
    dice["focal"] = [0.69, 0.73, 0.68]  # a lower mean, best in fewer resamples
    found = compare(lambda criterion, run: {"dice": dice[run.loss.split(":")[0]][run.seed]}, list(dice),
                    metric="dice", class_counts=[90, 10], progress=False)
    assert found.winner == "bce+dice" and "best in fewer" not in report.recommendation(found)
    minimized = compare(lambda criterion, run: {"error": 1 - dice[run.loss.split(":")[0]][run.seed]}, list(dice),
                        metric="error", direction="minimize", class_counts=[90, 10], progress=False)
    assert [r.loss for r in minimized.ranking] == ["bce+dice", "focal", "bce"]


def test_every_key_the_evaluators_produce_is_declared_in_the_catalog():
    import torch

    from seesaw_losses.experiments.evaluation import catalog, topology
    from seesaw_losses.experiments.trainers.classification import classification_scores

    rng = np.random.default_rng(0)
    masks = (rng.random((3, 12, 12)) < 0.3).astype(int)
    groups = {"many_shot": [0], "medium_shot": [1], "few_shot": [2]}
    keys = [*metrics.binary_segmentation(rng.random((3, 12, 12)), masks), metrics.IMAGE_DICE, metrics.IMAGE_MEAN_IOU,
            *metrics.multiclass_segmentation(rng.integers(0, 3, (3, 12, 12)), rng.integers(0, 3, (3, 12, 12)), 3),
            *metrics.classification(rng.integers(0, 3, 20), rng.integers(0, 3, 20), 3, groups),
            *classification_scores(torch.randn(20, 3), torch.randint(0, 3, (20,)), ["a", "b", "c"], [150, 40, 8])[0],
            *topology.topology_metrics(masks.astype(bool), masks.astype(bool))[0]]
    undeclared = [key for key in keys if catalog.describe(key).metric is None]
    assert not undeclared
    tables = {key: catalog.describe(key).table for key in keys}
    assert tables["iou/2"] == tables["accuracy/c"] == catalog.PER_CLASS and tables["dice@0.5"] == catalog.AT_HALF
    assert tables["hd95"] == tables["surface_dice@1px"] == catalog.TOPOLOGY
    assert tables["macro_f1_adjusted"] == catalog.ADJUSTED and tables["macro_f1"] == catalog.POOLED


def test_a_key_the_catalog_does_not_declare_is_its_own_header_in_the_ranking_table():
    from seesaw_losses.experiments.evaluation.catalog import POOLED, describe

    for key in ("f1", "loss/train", "hd95@1px", "iou/"):
        assert (describe(key).header, describe(key).table, describe(key).metric) == (key, POOLED, None)
    assert describe("iou/cat").header == "IoU cat" and describe("surface_dice@2px").header == "SDice@2px"
