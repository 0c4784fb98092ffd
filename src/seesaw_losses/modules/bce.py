"""Weighted binary cross-entropy module."""

from __future__ import annotations

from typing import Any, Optional, Union

import torch
from torch import Tensor, nn

from ..functional._validation import check_number, check_reduction, fail
from ..functional.bce import _weighted_bce_unchecked, check_bce_tensors, check_pos_weight, weighted_bce_loss
from ..functional.weighting import pos_weight_from_counts
from ..registry import Hyperparameter, LossEntry, register


class WeightedBCELoss(nn.Module):
    r"""Binary cross-entropy with logits, ``pos_weight`` and ``ignore_index``.

    See :func:`seesaw_losses.functional.weighted_bce_loss` for the formula and the arguments. ``pos_weight``
    (a tensor) is kept as a buffer, so ``.to()`` and ``state_dict`` carry it.

    Args:
        pos_weight: weight of the positive term: a number or a tensor broadcastable to the logits (e.g.
            ``(C, 1, 1)``); see :func:`~seesaw_losses.functional.pos_weight_from_counts`.
        ignore_index: target value to skip.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.

    Shape:
        - logits: ``(N, *)``; target: the same shape, values in ``[0, 1]``.
        - weight (forward): per-element weights broadcastable to the target.
        - output: scalar, or ``(N, *)`` for ``reduction="none"``.

    Examples:
        >>> criterion = WeightedBCELoss(pos_weight=5.0)
        >>> logits = torch.randn(2, 1, 8, 8, requires_grad=True)
        >>> criterion(logits, (torch.rand(2, 1, 8, 8) < 0.2).float()).backward()
    """

    pos_weight: Optional[Tensor]

    def __init__(self, *, pos_weight: Optional[Union[float, Tensor]] = None, ignore_index: Optional[int] = None,
                 reduction: str = "mean") -> None:
        super().__init__()
        fn = "WeightedBCELoss"
        check_reduction(fn, reduction)
        self.register_buffer("pos_weight", check_pos_weight(fn, pos_weight))
        self.ignore_index, self.reduction = ignore_index, reduction

    def extra_repr(self) -> str:
        return f"ignore_index={self.ignore_index}, reduction={self.reduction!r}"

    def forward(self, logits: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        check_bce_tensors("WeightedBCELoss.forward", logits, target, weight, self.ignore_index, self.pos_weight)
        return _weighted_bce_unchecked(logits, target, pos_weight=self.pos_weight, weight=weight,
                                       ignore_index=self.ignore_index, reduction=self.reduction)


def weighted_bce(*, pos_weight: Optional[Union[float, Tensor]] = None, class_counts: Any = None,
                 max_weight: Optional[float] = None, ignore_index: Optional[int] = None,
                 reduction: str = "mean") -> WeightedBCELoss:
    """:class:`WeightedBCELoss` with ``pos_weight`` given, or derived from ``class_counts`` ``[background,
    foreground]`` as ``n_bg / n_fg`` (capped at ``max_weight``)."""
    if max_weight is not None:
        check_number("weighted_bce", "max_weight", max_weight, low=0, low_open=True)
    if (pos_weight is None) == (class_counts is None):
        fail("weighted_bce", "options", "exactly one of pos_weight or class_counts ([background, foreground])",
             {"pos_weight": pos_weight, "class_counts": class_counts}, "use 'bce' for an unweighted BCE")
    if class_counts is not None:
        counts = torch.as_tensor(class_counts)
        if counts.shape != (2,):
            fail("weighted_bce", "class_counts", "[background, foreground] counts", counts)
        pos_weight = pos_weight_from_counts(counts[1], counts[0], max_weight=max_weight)
    return WeightedBCELoss(pos_weight=pos_weight, ignore_index=ignore_index, reduction=reduction)


register(LossEntry(
    name="bce", function=weighted_bce_loss, module=WeightedBCELoss, tasks=("binary", "multi-label"),
    summary="binary cross-entropy with logits (optional pos_weight, ignore_index); the baseline",
    reference="PyTorch binary_cross_entropy_with_logits", target="binary"))
register(LossEntry(
    name="weighted_bce", function=weighted_bce_loss, module=weighted_bce, tasks=("binary", "multi-label"),
    summary="BCE whose positive term is weighted by n_background / n_foreground from the training counts",
    reference="PyTorch binary_cross_entropy_with_logits(pos_weight=...)", target="binary",
    needs_counts=True, counts_argument="class_counts", derived_attribute="pos_weight",
    search_space={"max_weight": Hyperparameter(1.0, 100.0, log=True)}))
