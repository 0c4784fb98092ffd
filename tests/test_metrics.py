import numpy as np
import pytest

from seesaw_losses.experiments import metrics


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
    scores = np.round(rng.random(300), 1)
    truth = (rng.random(300) < 0.2).astype(int)
    assert metrics.average_precision(scores, truth) == pytest.approx(brute_force_average_precision(scores, truth))


def test_average_precision_perfect_and_precision_recall_ends():
    truth = np.array([0, 0, 1, 1, 0])
    assert metrics.average_precision(np.array([0.1, 0.2, 0.9, 0.8, 0.3]), truth) == pytest.approx(1.0)
    precision, recall = metrics.precision_recall_curve(np.array([0.1, 0.2, 0.9, 0.8, 0.3]), truth)
    assert recall[-1] == 1.0 and precision[-1] == pytest.approx(0.4) and (np.diff(recall) >= 0).all()


def test_binary_segmentation_counts():
    mask = np.array([[[1, 1, 0, 0]]])
    probability = np.array([[[0.9, 0.2, 0.7, 0.1]]])  # tp=1, fn=1, fp=1
    found = metrics.binary_segmentation(probability, mask)
    assert found["dice"] == pytest.approx(0.5) and found["iou"] == pytest.approx(1 / 3)
    assert found["precision"] == pytest.approx(0.5) and found["recall"] == pytest.approx(0.5)
    empty = metrics.binary_segmentation(np.zeros((1, 2, 2)), np.zeros((1, 2, 2), dtype=int))
    assert empty["dice"] == 1.0 and empty["precision"] == 0.0


def test_multiclass_segmentation_and_classification():
    mask = np.array([[[0, 1, 2, 2]]])
    found = metrics.multiclass_segmentation(np.array([[[0, 1, 2, 1]]]), mask, 3)
    assert found["pixel_accuracy"] == 0.75
    assert found["per_class_iou"] == pytest.approx([1.0, 0.5, 0.5])
    scores = metrics.classification(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]), 3,
                                    {"head": [0], "medium": [1], "tail": [2]})
    assert scores["per_class_accuracy"] == [1.0, 0.5, 1.0]
    assert scores["accuracy"] == 0.75 and scores["medium_accuracy"] == 0.5
    assert scores["balanced_accuracy"] == pytest.approx(2.5 / 3)
