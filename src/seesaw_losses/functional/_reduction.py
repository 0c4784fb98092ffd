"""Reductions shared by every loss, written once.

``reduction="none"`` returns the terms that ``"sum"`` adds up, one per unit the loss scores, in that unit's shape:

- a loss per element (the sigmoid family on a target of the logits' shape: BCE, focal, Binary Seesaw,
  asymmetric; and EQLv2, a sigmoid loss per logit of a class-index target): the logits' shape ``(N, *)``;
- a loss per position (the softmax family on class indices: cross-entropy, softmax focal, Seesaw, logit
  adjustment, Balanced Softmax, LDAM): the target's shape ``(N, d1, ..., dK)``;
- a loss per region (overlap and topology losses, one score per class of an image or of the pooled batch):
  ``(N, C')`` with ``per_image``, else ``(C',)`` (``C'`` without the background when it is left out);
- Lovasz losses, which average their classes inside each region: ``(N,)`` with ``per_image``, else 0-dim.

``"mean"`` divides the sum by the number of elements that are not ignored (or, with per-class weights, by the sum
of the weights of the non-ignored elements' classes, as ``torch.nn.functional.cross_entropy`` does); a loss whose
every element is ignored is 0 with a zero gradient, not NaN. Per-element weights multiply the loss and do not
change the denominator. ``avg_factor`` (the MMDetection convention) replaces the denominator of ``"mean"``.
"""

from __future__ import annotations

from typing import Callable, Optional, Union

import torch
from torch import Tensor

from ._targets import valid_mask

FLOAT32_EPS = torch.finfo(torch.float32).eps


def reduce_loss(
    run: Callable[[bool], Tensor], reduction: str, denominator: Callable[[], Union[Tensor, float]],
    *, avg_factor: Optional[Union[float, Tensor]] = None,
) -> Tensor:
    """Reduce a loss produced by ``run(reduce_sum)`` (the unreduced map, or its sum over valid elements).

    ``denominator()`` is evaluated only for ``"mean"`` without ``avg_factor`` (checked by the caller, see
    :func:`~seesaw_losses.functional._validation.check_avg_factor`).
    """
    if reduction == "none":
        return run(False)
    total = run(True)
    if reduction == "sum":
        return total
    if avg_factor is not None:
        return total / (avg_factor + FLOAT32_EPS)
    d = denominator()
    if isinstance(d, Tensor):
        d = torch.where(d > 0, d, torch.ones_like(d)).to(total.dtype)
        return total / d
    return total / max(d, 1)


def count_valid(target: Tensor, ignore_index: Optional[int]) -> Union[Tensor, int]:
    """Number of elements of ``target`` that are not ``ignore_index`` (a tensor, so no host sync)."""
    valid = valid_mask(target, ignore_index)
    return target.numel() if valid is None else valid.sum()


def reduce_rows(loss: Tensor, reduction: str, per_image: bool, weight: Optional[Tensor] = None) -> Tensor:
    """Reduce a ``(rows, ...)`` loss of the region losses, one row per image (``per_image``) or a single row for
    the pooled batch, with :func:`reduce_loss`: ``"none"`` keeps the rows (the pooled row's values alone),
    ``"mean"`` is the ``weight``-weighted average (``weight`` broadcast over the trailing dimensions)."""
    weighted = loss if weight is None else loss * weight

    def run(reduce_sum: bool) -> Tensor:
        return weighted.sum() if reduce_sum else (weighted if per_image else weighted[0])

    def denominator() -> Union[Tensor, int]:
        return loss.numel() if weight is None else weight.sum() * (loss.numel() // max(weight.numel(), 1))

    return reduce_loss(run, reduction, denominator)
