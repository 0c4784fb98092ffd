"""LDAM: label-distribution-aware margin loss (Cao et al., "Learning Imbalanced Datasets with Label-Distribution-
Aware Margin Loss", NeurIPS 2019)."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from torch import Tensor

from ._fused import compute_dtype
from ._validation import check_number
from .logit_adjusted import AdjustedSoftmaxKernel, check_prior_call
from .seesaw import softmax_loss


def ldam_margins(class_counts: Tensor, max_margin: float = 0.5, *, dtype: torch.dtype = torch.float32,
                 device: Optional[torch.device] = None) -> Tensor:
    r"""LDAM's per-class margins :math:`m_c \propto n_c^{-1/4}`, the largest equal to ``max_margin``.

    A class with no samples counts as one (it gets ``max_margin``, the rarest class's margin).

    Shape:
        - class_counts: ``(C,)``; output: ``(C,)`` in ``dtype``.
    """
    counts = class_counts.to(device=device if device is not None else class_counts.device, dtype=torch.float64)
    raw = counts.clamp(min=1).pow(-0.25)
    return (raw * (max_margin / raw.max())).to(dtype)


def check_ldam_args(fn: str, max_margin: object, scale: object) -> None:
    check_number(fn, "max_margin", max_margin, low=0)
    check_number(fn, "scale", scale, low=0, low_open=True)


def _ldam_unchecked(logits: Tensor, target: Tensor, class_counts: Tensor, *, max_margin: float, scale: float,
                    class_weight: Optional[Tensor], ignore_index: Optional[int], reduction: str) -> Tensor:
    """:func:`ldam_loss` on validated arguments."""
    margin = None
    if max_margin > 0:
        margin = ldam_margins(class_counts, max_margin, dtype=compute_dtype(logits.dtype), device=logits.device)
    return softmax_loss(AdjustedSoftmaxKernel(margin=margin, scale=float(scale)), logits, target,
                        class_weight=class_weight, weight=None, ignore_index=ignore_index, reduction=reduction)


def ldam_loss(
    logits: Tensor,
    target: Tensor,
    class_counts: Tensor,
    *,
    max_margin: float = 0.5,
    scale: float = 30.0,
    class_weight: Optional[Union[Tensor, Sequence[float]]] = None,
    ignore_index: Optional[int] = -100,
    reduction: str = "mean",
) -> Tensor:
    r"""LDAM loss (Cao et al., NeurIPS 2019): cross-entropy after a class-dependent margin on the true logit.

    .. math::
        \ell = -\log \frac{e^{s (z_y - m_y)}}{e^{s (z_y - m_y)} + \sum_{j \ne y} e^{s z_j}}, \qquad
        m_c = \frac{\text{max\_margin}}{\max_k n_k^{-1/4}}\, n_c^{-1/4}

    Rare classes need a larger margin (their decision boundary is pushed away from their few samples).

    ``scale`` (:math:`s`): LDAM is meant for a normalised (cosine) classifier, e.g.
    :class:`seesaw_losses.nn.NormedLinear` with ``temperature=1``, whose logits are cosines in ``[-1, 1]``. A
    softmax over numbers that close together is nearly flat (every class near ``1 / C``), so the loss could not
    fall however well the classes separate; ``s`` stretches the range to ``[-s, s]`` (the paper uses 30). With a
    plain linear classifier, whose logits are already unbounded, use ``scale=1``; then ``max_margin`` is in the
    logits' own units. ``max_margin=0, scale=1`` is cross-entropy. Combine with deferred re-weighting
    (:class:`seesaw_losses.DeferredReweighting`) for the paper's LDAM-DRW.

    Args:
        logits: unnormalised scores (cosines for a normalised classifier).
        target: class indices.
        class_counts: training samples per class, non-negative.
        max_margin: the rarest class's margin, ``>= 0``.
        scale: factor on the logits, ``> 0``.
        class_weight: per-class weights ``(C,)`` as ``cross_entropy``'s ``weight``.
        ignore_index: target value that contributes neither loss nor gradient; None for none.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.

    Shape:
        - as :func:`seesaw_losses.functional.logit_adjusted_loss`.

    Examples:
        >>> cosines = torch.rand(8, 4, requires_grad=True) * 2 - 1
        >>> ldam_loss(cosines, torch.randint(0, 4, (8,)), torch.tensor([500, 100, 20, 2])).backward()
    """
    fn = "ldam_loss"
    check_ldam_args(fn, max_margin, scale)
    counts, class_weight = check_prior_call(fn, logits, target, class_counts, class_weight, ignore_index, reduction)
    return _ldam_unchecked(logits, target, counts, max_margin=max_margin, scale=scale, class_weight=class_weight,
                           ignore_index=ignore_index, reduction=reduction)
