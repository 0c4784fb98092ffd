"""Held-out metrics, in numpy. Segmentation counts are pooled over every pixel of the held-out set.

Conventions for empty cases: Dice and IoU are 1 when there is no foreground in either the prediction or the
ground truth; precision is 0 when nothing is predicted as foreground; recall is 0 when there is no foreground.
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np


def _ratio(numerator: float, denominator: float, empty: float) -> float:
    return float(numerator / denominator) if denominator > 0 else empty


def precision_recall_curve(scores: np.ndarray, truth: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Precision and recall at every distinct score threshold, highest threshold first.

    Shape:
        - scores, truth: any shape, same size; truth in ``{0, 1}``.
        - output: two ``(T,)`` arrays, ``T`` the number of distinct scores.
    """
    order = np.argsort(scores.ravel(), kind="stable")[::-1]
    ranked = scores.ravel()[order]
    hits = truth.ravel()[order].astype(np.float64)
    last_of_tie = np.r_[np.flatnonzero(np.diff(ranked)), ranked.size - 1]
    true_positives = np.cumsum(hits)[last_of_tie]
    predicted = last_of_tie + 1.0
    positives = hits.sum()
    recall = true_positives / positives if positives > 0 else np.zeros_like(true_positives)
    return true_positives / predicted, recall


def average_precision(scores: np.ndarray, truth: np.ndarray) -> float:
    """Area under the step precision-recall curve, ``sum_k (R_k - R_{k-1}) P_k`` (as scikit-learn computes it)."""
    precision, recall = precision_recall_curve(scores, truth)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def binary_segmentation(probability: np.ndarray, mask: np.ndarray, threshold: float = 0.5) -> Dict[str, float]:
    """Dice (= F1), IoU, precision, recall at ``threshold`` and average precision of the foreground.

    Shape:
        - probability: ``(N, H, W)`` foreground probabilities; mask: ``(N, H, W)`` in ``{0, 1}``.
    """
    predicted = probability >= threshold
    truth = mask.astype(bool)
    tp = float(np.count_nonzero(predicted & truth))
    fp = float(np.count_nonzero(predicted & ~truth))
    fn = float(np.count_nonzero(~predicted & truth))
    return {
        "dice": _ratio(2 * tp, 2 * tp + fp + fn, 1.0),
        "iou": _ratio(tp, tp + fp + fn, 1.0),
        "precision": _ratio(tp, tp + fp, 0.0),
        "recall": _ratio(tp, tp + fn, 0.0),
        "average_precision": average_precision(probability, truth),
    }


def multiclass_segmentation(predicted: np.ndarray, mask: np.ndarray, num_classes: int) -> Dict[str, object]:
    """Pixel accuracy, per-class IoU and Dice, and their means over classes (background included).

    Shape:
        - predicted, mask: ``(N, H, W)`` class indices.
    """
    index = mask.ravel().astype(np.int64) * num_classes + predicted.ravel().astype(np.int64)
    confusion = np.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes).astype(np.float64)
    tp = np.diag(confusion)
    fp = confusion.sum(axis=0) - tp
    fn = confusion.sum(axis=1) - tp
    iou = [_ratio(tp[c], tp[c] + fp[c] + fn[c], 1.0) for c in range(num_classes)]
    dice = [_ratio(2 * tp[c], 2 * tp[c] + fp[c] + fn[c], 1.0) for c in range(num_classes)]
    return {
        "pixel_accuracy": _ratio(tp.sum(), confusion.sum(), 0.0),
        "mean_iou": float(np.mean(iou)),
        "mean_dice": float(np.mean(dice)),
        "per_class_iou": iou,
        "per_class_dice": dice,
    }


def classification(predicted: np.ndarray, labels: np.ndarray, num_classes: int,
                   groups: Dict[str, Sequence[int]]) -> Dict[str, object]:
    """Overall accuracy, per-class accuracy, its mean (balanced accuracy) and its mean over each class group.

    Shape:
        - predicted, labels: ``(N,)`` class indices.
    """
    correct = predicted == labels
    per_class: List[float] = [_ratio(correct[labels == c].sum(), (labels == c).sum(), 0.0)
                              for c in range(num_classes)]
    result: Dict[str, object] = {
        "accuracy": float(correct.mean()),
        "balanced_accuracy": float(np.mean(per_class)),
    }
    for name, members in groups.items():
        result[f"{name}_accuracy"] = float(np.mean([per_class[c] for c in members])) if members else 0.0
    result["per_class_accuracy"] = per_class
    return result
