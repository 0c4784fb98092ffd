"""Binary cross-entropy with logits, with ``pos_weight`` and per-element weights, on the fused engine."""

from __future__ import annotations

from typing import Optional, Union

import torch
from torch import Tensor

from ._forms import BCE, SigmoidForm
from ._fused import compute_dtype, reduced_elementwise_loss
from ._scratch import Scratch
from ._math import softplus, softplus_sigmoid
from ._validation import (
    check_element_weight, check_logits, check_probability_target, check_reduction, check_weight, fail,
    non_negative_and_finite,
)


class WeightedBCEKernel:
    """``pw t softplus(-x) + (1 - t) softplus(x)``; without ``pos_weight`` (no operand) ``softplus(-x) + (1-t) x``."""

    def loss(self, x: Tensor, t: Tensor, *pos_weight: Tensor) -> Tensor:
        negative_part = (1 - t) * x
        if not pos_weight:
            return softplus(-x) + negative_part
        return softplus(-x) * ((pos_weight[0] - 1) * t + 1) + negative_part

    def triton_form(self, *pos_weight: Tensor) -> Optional[SigmoidForm]:
        """A scalar ``pos_weight`` (or none) runs in Triton; a per-channel one does not."""
        if pos_weight and pos_weight[0].dim() > 0:
            return None
        return SigmoidForm(BCE, (pos_weight[0] if pos_weight else 1.0,))

    def evaluate(self, x: Tensor, t: Tensor, *pos_weight: Tensor, need_grad: bool, scratch: Scratch):
        # with k = 1 + (pw - 1) t: loss = k softplus(x) - pw t x, d/dx = k sigmoid(x) - pw t
        softplus, p = softplus_sigmoid(x, need_grad, scratch, scratch.gradient() if need_grad else None)
        if not pos_weight:
            return softplus.addcmul_(t, x, value=-1), (p.sub_(t) if need_grad else None)
        positive = torch.mul(t, pos_weight[0], out=scratch())
        k = torch.sub(positive, t, out=scratch()).add_(1)
        loss = softplus.mul_(k).addcmul_(positive, x, value=-1)
        return loss, (p.mul_(k).sub_(positive) if need_grad else None)


def check_pos_weight(fn: str, pos_weight: object) -> Optional[Tensor]:
    """``pos_weight`` is None, a number or a non-negative tensor; returned as a tensor (or None)."""
    if pos_weight is None:
        return None
    if isinstance(pos_weight, bool) or not isinstance(pos_weight, (int, float, Tensor)):
        fail(fn, "pos_weight", "None, a number or a tensor", pos_weight, error=TypeError)
    if not isinstance(pos_weight, Tensor):
        pos_weight = torch.tensor(float(pos_weight))
    if pos_weight.device.type == "cpu" and not torch.compiler.is_compiling() \
            and not non_negative_and_finite(pos_weight):
        fail(fn, "pos_weight", "non-negative and finite", pos_weight)
    return pos_weight


def check_bce_tensors(fn: str, logits: Tensor, target: Tensor, weight: Optional[Tensor],
                      ignore_index: Optional[int], pos_weight: Optional[Tensor]) -> None:
    """The per-call checks: logits, target, per-element weight, and ``pos_weight``'s shape against the logits."""
    check_logits(fn, logits)
    check_probability_target(fn, logits, target, ignore_index, softmax_name="torch.nn.functional.cross_entropy")
    check_element_weight(fn, weight, target.shape)
    if pos_weight is None:
        return
    if pos_weight.dim() == 1 and pos_weight.numel() > 1 and logits.dim() > 2:
        ones = ", ".join("1" for _ in logits.shape[2:])
        fail(fn, "pos_weight", f"shaped to broadcast over the channel dimension, e.g. ({pos_weight.numel()}, "
             f"{ones}), for logits of shape {tuple(logits.shape)}", pos_weight,
             f"a 1-D pos_weight would broadcast along the last (spatial) dimension; use pos_weight.view(-1, {ones})")
    check_weight(fn, "pos_weight", pos_weight, logits.shape,
                 f"broadcastable to the logits' shape {tuple(logits.shape)} (e.g. (C, 1, 1) per channel)")


def _weighted_bce_unchecked(logits: Tensor, target: Tensor, *, pos_weight: Optional[Tensor],
                            weight: Optional[Tensor], ignore_index: Optional[int], reduction: str) -> Tensor:
    """:func:`weighted_bce_loss` on validated arguments (``pos_weight`` a tensor or None)."""
    cdtype = compute_dtype(logits.dtype)
    operands = () if pos_weight is None else (pos_weight.to(device=logits.device, dtype=cdtype),)
    return reduced_elementwise_loss(WeightedBCEKernel(), logits, target, weight=weight, ignore_index=ignore_index,
                                    reduction=reduction, operands=operands)


def weighted_bce_loss(
    logits: Tensor,
    target: Tensor,
    *,
    pos_weight: Optional[Union[float, Tensor]] = None,
    weight: Optional[Tensor] = None,
    ignore_index: Optional[int] = None,
    reduction: str = "mean",
) -> Tensor:
    r"""Binary cross-entropy with logits, weighting the positive term by ``pos_weight``.

    .. math::
        \ell = -w \,[\, p_w\, t \log \sigma(x) + (1 - t) \log(1 - \sigma(x)) \,]

    Equal to :func:`torch.nn.functional.binary_cross_entropy_with_logits` for the same ``pos_weight`` and
    ``weight``; ``ignore_index`` and the fused, memory-lean forward/backward are additions. A ``pos_weight`` of
    ``n_negative / n_positive`` (see :func:`pos_weight_from_counts`) balances the two classes.

    Args:
        logits: one logit per element (binary or multi-label).
        target: probabilities of the positive class in ``[0, 1]`` (hard or soft labels), the logits' shape.
        pos_weight: weight of the positive term: a number, or a tensor broadcastable to the logits (per class:
            ``(C,)`` for ``(N, C)`` logits, ``(C, 1, 1)`` for ``(N, C, H, W)``). Non-negative.
        weight: per-element weights broadcastable to the target (constants; "mean" still divides by the
            number of non-ignored elements, as in PyTorch).
        ignore_index: target value whose elements contribute neither loss nor gradient (e.g. 255).
        reduction: ``"none"`` | ``"mean"`` (over non-ignored elements) | ``"sum"``.

    Shape:
        - logits: ``(N, *)``; target: the same shape.
        - pos_weight: scalar or broadcastable to ``(N, *)``; weight: broadcastable to ``(N, *)``.
        - output: scalar, or ``(N, *)`` for ``reduction="none"``.

    Examples:
        >>> logits = torch.randn(4, 1, 16, 16, requires_grad=True)
        >>> mask = (torch.rand(4, 1, 16, 16) < 0.1).float()
        >>> weighted_bce_loss(logits, mask, pos_weight=9.0).backward()
    """
    fn = "weighted_bce_loss"
    check_reduction(fn, reduction)
    pos_weight = check_pos_weight(fn, pos_weight)
    check_bce_tensors(fn, logits, target, weight, ignore_index, pos_weight)
    return _weighted_bce_unchecked(logits, target, pos_weight=pos_weight, weight=weight, ignore_index=ignore_index,
                                   reduction=reduction)
