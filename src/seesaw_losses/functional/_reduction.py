"""Reductions shared by every loss, written once.

``"mean"`` divides the sum by the number of elements that are not ignored (or, with per-class weights, by the sum
of the weights of the non-ignored elements' classes, as ``torch.nn.functional.cross_entropy`` does); a loss whose
every element is ignored is 0 with a zero gradient, not NaN. Per-element weights multiply the loss and do not
change the denominator. ``avg_factor`` (the MMDetection convention) replaces the denominator of ``"mean"``.
"""

from __future__ import annotations

from typing import Callable, Optional, Union

import torch
from torch import Tensor

from ._validation import fail

FLOAT32_EPS = torch.finfo(torch.float32).eps


def reduce_loss(
    fn: str, run: Callable[[bool], Tensor], reduction: str, denominator: Callable[[], Union[Tensor, float]],
    *, avg_factor: Optional[Union[float, Tensor]] = None,
) -> Tensor:
    """Reduce a loss produced by ``run(reduce_sum)`` (the unreduced map, or its sum over valid elements).

    ``denominator()`` is evaluated only for ``"mean"`` without ``avg_factor``.
    """
    if reduction == "none":
        return run(False)
    if avg_factor is not None and reduction == "sum":
        fail(fn, "avg_factor", "None when reduction='sum'", avg_factor,
             "avg_factor divides the summed loss, so it only goes with reduction='mean'")
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
    if ignore_index is None:
        return target.numel()
    return (target != ignore_index).sum()


def mean_or_zero(loss: Tensor) -> Tensor:
    """``loss.mean()``, or 0 (with a zero gradient) when ``loss`` has no element, instead of NaN."""
    return loss.sum() / max(loss.numel(), 1)
