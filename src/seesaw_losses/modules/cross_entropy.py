"""Cross-entropy, plain and class-balanced: PyTorch's ``nn.CrossEntropyLoss`` as registry entries."""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..functional._validation import (
    check_class_weight, check_index_target, check_logits, check_number, check_probability_target, check_reduction,
)
from ..functional._targets import mask_ignored
from ..functional.weighting import class_weights
from ..registry import Hyperparameter, LossEntry, register


class CrossEntropyLoss(nn.CrossEntropyLoss):
    """``torch.nn.CrossEntropyLoss`` following the library's conventions: with ``"mean"`` an empty or all-ignored
    batch of class indices gives 0 with a zero gradient (PyTorch gives NaN), and half-precision logits are
    computed in float32 (PyTorch's half-precision cross-entropy overflows at large logits); the loss is float32
    (float64 for float64 logits) and the gradient in the logits' dtype.

    Shape:
        - as ``torch.nn.CrossEntropyLoss``.
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        fn = type(self).__name__
        check_logits(fn, input, min_dim=2)
        if isinstance(target, Tensor) and target.is_floating_point() and target.shape == input.shape:
            check_probability_target(fn, input, target, None, softmax_name="class indices")
        else:
            check_index_target(fn, input, target, self.ignore_index, num_classes=input.shape[1])
        x = input if input.dtype == torch.float64 else input.float()
        weight = None if self.weight is None else self.weight.to(x.dtype)
        loss = F.cross_entropy(x, target, weight=weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)
        if self.reduction != "mean" or target.is_floating_point():
            return loss
        safe, valid = mask_ignored(target, self.ignore_index)
        total = valid.sum() if weight is None else (weight[safe] * valid).sum()
        return torch.where(total > 0, loss, torch.zeros_like(loss))


def cross_entropy(*, class_weight: Optional[Tensor] = None, ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> nn.Module:
    """:class:`CrossEntropyLoss` with per-class weights named ``class_weight`` as in the rest of the library."""
    fn = "cross_entropy"
    check_reduction(fn, reduction)
    check_number(fn, "label_smoothing", label_smoothing, low=0, high=1)
    if class_weight is not None:
        class_weight = check_class_weight(fn, class_weight, len(class_weight), arg="class_weight")
    return CrossEntropyLoss(weight=class_weight, ignore_index=ignore_index, reduction=reduction,
                            label_smoothing=label_smoothing)


def class_balanced_cross_entropy(*, class_counts: Any, strategy: str = "class_balanced", beta: float = 0.9999,
                                 blend: float = 0.5, ignore_index: int = -100, reduction: str = "mean",
                                 label_smoothing: float = 0.0) -> nn.Module:
    """Cross-entropy with per-class weights from ``class_counts`` (:func:`class_weights` ``strategy``)."""
    fn = "class_balanced_ce"
    check_reduction(fn, reduction)
    check_number(fn, "beta", beta, low=0, high=1, high_open=True)
    check_number(fn, "blend", blend, low=0, high=1)
    return cross_entropy(class_weight=class_weights(class_counts, strategy, beta=beta, blend=blend),
                         ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing)


register(LossEntry(
    name="ce", function=None, module=cross_entropy, tasks=("multi-class", "long-tailed"),
    summary="cross-entropy (torch.nn.CrossEntropyLoss); the baseline",
    reference="PyTorch cross_entropy", target="index",
    search_space={"label_smoothing": Hyperparameter(0.0, 0.2)}))
register(LossEntry(
    name="class_balanced_ce", function=None, module=class_balanced_cross_entropy,
    tasks=("multi-class", "long-tailed"),
    summary="cross-entropy with class-balanced weights (1 - beta) / (1 - beta^n_c) from the training counts",
    reference="Cui et al., Class-Balanced Loss Based on Effective Number of Samples, CVPR 2019",
    target="index", needs_counts=True, counts_argument="class_counts", derived_attribute="weight",
    defaults={"beta": 0.9999}, search_space={"beta": Hyperparameter(choices=(0.9, 0.99, 0.999, 0.9999))}))
