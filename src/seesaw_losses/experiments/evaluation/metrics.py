"""Held-out metrics, computed with ``torchmetrics``; every function returns a flat ``{name: float}`` dict.

Segmentation counts are pooled over every pixel of the evaluated set, pixels equal to ``ignore_index`` left out.
Keys are those :mod:`.catalog` declares (per-class values ``"<metric>/<class>"``). A class absent from both the
target and the prediction of the evaluated set has no IoU or Dice (NaN under its key) and is left out of the means
instead of scoring 1.
Precision, recall, Dice and IoU are 0 when their denominator is 0.
"""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from typing import Dict, Iterator, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from .catalog import at_half_key, group_accuracy_key, per_class_key


@contextmanager
def _quiet() -> Iterator[None]:
    """No warning when an evaluated split has no foreground (recall and AP are then defined by convention)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No positive samples found in target")
        yield


def _flat(scores: np.ndarray, truth: np.ndarray) -> Tuple[torch.Tensor, torch.Tensor]:
    return torch.as_tensor(np.ascontiguousarray(scores)).flatten(), torch.as_tensor(truth).flatten().long()


def precision_recall_curve(scores: np.ndarray, truth: np.ndarray, *, ignore_index: Optional[int] = None
                           ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and threshold at every distinct score (``torchmetrics``' exact curve).

    Shape:
        - scores: any shape, probabilities; truth: same size, in ``{0, 1}`` or ``ignore_index``.
        - output: precision and recall ``(T + 1,)`` (the last point is recall 0, precision 1), thresholds ``(T,)``.
    """
    from torchmetrics.functional.classification import binary_precision_recall_curve

    with _quiet():
        precision, recall, thresholds = binary_precision_recall_curve(*_flat(scores, truth),
                                                                      ignore_index=ignore_index)
    return precision.numpy(), recall.numpy(), thresholds.numpy()


def best_f1_threshold(scores: np.ndarray, truth: np.ndarray, *, ignore_index: Optional[int] = None) -> float:
    """The score threshold with the highest F1 (= Dice) on ``scores``/``truth``; 0.5 without any foreground."""
    precision, recall, thresholds = precision_recall_curve(scores, truth, ignore_index=ignore_index)
    precision, recall = precision[:-1], recall[:-1]
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    return float(thresholds[int(np.argmax(f1))]) if len(f1) and f1.max() > 0 else 0.5


def binary_segmentation(probability: np.ndarray, mask: np.ndarray, *, threshold: float = 0.5,
                        ignore_index: Optional[int] = None) -> Dict[str, float]:
    """Dice (= F1), IoU, precision and recall at ``threshold`` and at 0.5 (keys ending in ``@0.5``), the
    threshold itself, and the foreground's average precision.

    Shape:
        - probability: ``(N, H, W)`` foreground probabilities; mask: ``(N, H, W)`` in ``{0, 1}`` or
          ``ignore_index``.
    """
    from torchmetrics.functional import classification as tm

    preds, target = _flat(probability, mask)

    def at(cut: float) -> Dict[str, float]:
        options = dict(threshold=cut, ignore_index=ignore_index)
        return {"dice": float(tm.binary_f1_score(preds, target, **options)),
                "iou": float(tm.binary_jaccard_index(preds, target, **options)),
                "precision": float(tm.binary_precision(preds, target, **options)),
                "recall": float(tm.binary_recall(preds, target, **options))}

    result = at(threshold)
    with _quiet():
        result["average_precision"] = float(tm.binary_average_precision(preds, target, ignore_index=ignore_index))
    result["threshold"] = float(threshold)
    result.update({at_half_key(key): value for key, value in at(0.5).items()})
    return result


def multiclass_segmentation(predicted: np.ndarray, mask: np.ndarray, num_classes: int, *,
                            ignore_index: Optional[int] = None) -> Dict[str, float]:
    """Pixel accuracy, per-class IoU and Dice (``"iou/c"``, ``"dice/c"``), and their means over the classes
    present in the target or the prediction (background included).

    Dice per class is ``2 IoU / (1 + IoU)``, the identity between the two overlap scores.

    Shape:
        - predicted, mask: ``(N, H, W)`` class indices (``mask`` may hold ``ignore_index``).
    """
    from torchmetrics.functional import classification as tm

    preds, target = _flat(predicted, mask)
    iou = tm.multiclass_jaccard_index(preds, target, num_classes, average="none", ignore_index=ignore_index,
                                      zero_division=math.nan).double()
    dice = 2 * iou / (1 + iou)
    present = ~torch.isnan(iou)
    result = {
        "mean_iou": float(iou[present].mean()) if present.any() else math.nan,
        "mean_dice": float(dice[present].mean()) if present.any() else math.nan,
        "pixel_accuracy": float(tm.multiclass_accuracy(preds, target, num_classes, average="micro",
                                                        ignore_index=ignore_index)),
    }
    result.update({per_class_key("iou", c): float(v) for c, v in enumerate(iou)})
    result.update({per_class_key("dice", c): float(v) for c, v in enumerate(dice)})
    return result


def per_image_dice(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Dice of each image (1 where both prediction and truth are empty).

    Shape:
        - predicted, truth: ``(N, H, W)`` binary (pixels to skip already False in both).
        - output: ``(N,)``.
    """
    predicted, truth = predicted.reshape(len(predicted), -1).astype(bool), truth.reshape(len(truth), -1).astype(bool)
    overlap = (predicted & truth).sum(1)
    total = predicted.sum(1) + truth.sum(1)
    return np.where(total > 0, 2 * overlap / np.maximum(total, 1), 1.0)


def per_image_mean_iou(predicted: np.ndarray, mask: np.ndarray, num_classes: int, scored: np.ndarray) -> np.ndarray:
    """Mean IoU of each image over the classes present in its target or prediction (scored pixels only).

    Shape:
        - predicted, mask, scored: ``(N, H, W)`` (class indices, class indices, bool).
        - output: ``(N,)``.
    """
    result = np.empty(len(predicted))
    for k, (p, t, keep) in enumerate(zip(predicted, mask, scored)):
        p, t = p[keep], t[keep]
        ious = [np.sum((p == c) & (t == c)) / union for c in range(num_classes)
                if (union := np.sum((p == c) | (t == c))) > 0]
        result[k] = np.mean(ious) if ious else np.nan
    return result


def pooled(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """Every pixel of images of any sizes in one flat array.

    Shape:
        - arrays: an ``(N, H, W)`` array or a sequence of ``(H_k, W_k)`` arrays; output: ``(sum of H_k W_k,)``.
    """
    return np.concatenate([np.ravel(array) for array in arrays])


def segmentation(outputs: Sequence[np.ndarray], masks: Sequence[np.ndarray], num_classes: int, *,
                 threshold: Optional[float] = None, ignore_index: Optional[int] = None) -> Dict[str, float]:
    """The metrics pooled over every pixel of images of any sizes: :func:`binary_segmentation` at ``threshold``
    (None: the best F1 of these outputs) when ``num_classes == 2``, else :func:`multiclass_segmentation`.

    Shape:
        - outputs, masks: ``(N, H, W)`` arrays or sequences of ``(H_k, W_k)`` arrays.
    """
    found, truth = pooled(outputs), pooled(masks)
    if num_classes != 2:
        return multiclass_segmentation(found, truth, num_classes, ignore_index=ignore_index)
    if threshold is None:
        threshold = best_f1_threshold(found, truth, ignore_index=ignore_index)
    return binary_segmentation(found, truth, threshold=threshold, ignore_index=ignore_index)


IMAGE_DICE, IMAGE_MEAN_IOU = "image_dice", "image_mean_iou"  #: the ranking metrics: means of per-image scores


def image_rank_metric(binary: bool) -> str:
    """The per-image metric that ranks segmentation losses: :data:`IMAGE_DICE` (binary) or
    :data:`IMAGE_MEAN_IOU`."""
    return IMAGE_DICE if binary else IMAGE_MEAN_IOU


def image_scores(outputs: Sequence[np.ndarray], masks: Sequence[np.ndarray], num_classes: int, *,
                 threshold: Optional[float] = None, ignore_index: Optional[int] = None) -> np.ndarray:
    """The ranking metric of each image at its own size, pixels equal to ``ignore_index`` left out: Dice at
    ``threshold`` (binary, ``num_classes == 2``: ``outputs`` are foreground probabilities), else mIoU over the
    classes present (``outputs`` are class indices; NaN for an image without a scored pixel).

    Shape:
        - outputs, masks: ``(N, H, W)`` arrays or sequences of ``(H_k, W_k)`` arrays; output: ``(N,)``.
    """
    scores = []
    for output, mask in zip(outputs, masks):
        scored = mask != ignore_index if ignore_index is not None else np.ones(mask.shape, dtype=bool)
        if num_classes == 2:
            scores.append(per_image_dice(((output >= threshold) & scored)[None], ((mask == 1) & scored)[None])[0])
        else:
            scores.append(per_image_mean_iou(output[None], mask[None], num_classes, scored[None])[0])
    return np.array(scores, dtype=np.float64)


def absent_classes(metrics: Mapping[str, float]) -> list:
    """The classes whose per-class IoU is NaN: absent from both target and prediction, left out of the means."""
    prefix = per_class_key("iou", "")
    return [int(key[len(prefix):]) for key, value in metrics.items() if key.startswith(prefix) and math.isnan(value)]


def classification(predicted: np.ndarray, labels: np.ndarray, num_classes: int, groups: Dict[str, Sequence[int]],
                   classes: Optional[Sequence[str]] = None) -> Dict[str, float]:
    """Balanced accuracy (the mean per-class accuracy over the classes that have samples, scikit-learn's
    convention), accuracy, the mean per-class accuracy of each class group (``"<group>_accuracy"``, NaN for an
    empty group) and the per-class accuracy (``"accuracy/<class>"``, named by ``classes``, else by index; NaN for
    a class without samples).

    Shape:
        - predicted, labels: ``(N,)`` class indices.
    """
    from torchmetrics.functional.classification import multiclass_accuracy

    preds, target = _flat(predicted, labels)
    per_class = multiclass_accuracy(preds, target, num_classes, average="none").double()
    per_class[torch.bincount(target, minlength=num_classes) == 0] = math.nan
    result = {
        "balanced_accuracy": float(per_class.nanmean()),
        "accuracy": float(multiclass_accuracy(preds, target, num_classes, average="micro")),
    }
    for name, members in groups.items():
        result[group_accuracy_key(name)] = float(per_class[list(members)].nanmean()) if members else math.nan
    names = classes if classes is not None else range(num_classes)
    result.update({per_class_key("accuracy", name): float(v) for name, v in zip(names, per_class)})
    return result
