"""Weighted binary cross-entropy module."""

from __future__ import annotations

from typing import Optional, Union

import torch
from torch import Tensor, nn

from ..functional._validation import check_reduction, fail
from ..functional.bce import weighted_bce_loss


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

    Example:
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
        if pos_weight is not None:
            if isinstance(pos_weight, bool) or not isinstance(pos_weight, (int, float, Tensor)):
                fail(fn, "pos_weight", "None, a number or a tensor", pos_weight, error=TypeError)
            pos_weight = torch.as_tensor(pos_weight, dtype=torch.float32) if not isinstance(pos_weight, Tensor) \
                else pos_weight
            if bool((pos_weight < 0).any()):
                fail(fn, "pos_weight", "non-negative", pos_weight)
        self.register_buffer("pos_weight", pos_weight)
        self.ignore_index, self.reduction = ignore_index, reduction

    def extra_repr(self) -> str:
        return f"ignore_index={self.ignore_index}, reduction={self.reduction!r}"

    def forward(self, logits: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        return weighted_bce_loss(logits, target, pos_weight=self.pos_weight, weight=weight,
                                 ignore_index=self.ignore_index, reduction=self.reduction)
