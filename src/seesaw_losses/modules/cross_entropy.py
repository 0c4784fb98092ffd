"""Cross-entropy, plain and class-balanced: PyTorch's ``nn.CrossEntropyLoss`` as registry entries."""

from __future__ import annotations

from typing import Any, Optional

import torch.nn.functional as F
from torch import Tensor, nn

from ..functional.weighting import class_weights
from ..registry import Hyperparameter, LossEntry, register


def cross_entropy(*, class_weight: Optional[Tensor] = None, ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> nn.Module:
    """``torch.nn.CrossEntropyLoss`` with per-class weights named ``class_weight`` as in the rest of the library."""
    return nn.CrossEntropyLoss(weight=class_weight, ignore_index=ignore_index, reduction=reduction,
                               label_smoothing=label_smoothing)


def class_balanced_cross_entropy(*, class_counts: Any, strategy: str = "class_balanced", beta: float = 0.9999,
                                 blend: float = 0.5, ignore_index: int = -100, reduction: str = "mean",
                                 label_smoothing: float = 0.0) -> nn.Module:
    """Cross-entropy with per-class weights from ``class_counts`` (:func:`class_weights` ``strategy``)."""
    return cross_entropy(class_weight=class_weights(class_counts, strategy, beta=beta, blend=blend),
                         ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing)


register(LossEntry(
    name="ce", function=F.cross_entropy, module=cross_entropy, tasks=("multi-class", "long-tailed"),
    summary="cross-entropy (torch.nn.CrossEntropyLoss); the baseline",
    reference="PyTorch cross_entropy", activation="softmax",
    search_space={"label_smoothing": Hyperparameter(0.0, 0.2)}))
register(LossEntry(
    name="class_balanced_ce", function=F.cross_entropy, module=class_balanced_cross_entropy,
    tasks=("multi-class", "long-tailed"),
    summary="cross-entropy with class-balanced weights (1 - beta) / (1 - beta^n_c) from the training counts",
    reference="Cui et al., Class-Balanced Loss Based on Effective Number of Samples, CVPR 2019",
    activation="softmax", needs_counts=True, counts_argument="class_counts", derived_attribute="weight",
    defaults={"beta": 0.9999}, search_space={"beta": Hyperparameter(choices=(0.9, 0.99, 0.999, 0.9999))}))
