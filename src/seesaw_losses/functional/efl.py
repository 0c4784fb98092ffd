"""Equalized focal loss (Li et al., "Equalized Focal Loss for Dense Long-Tailed Object Detection", CVPR 2022) for
sigmoid dense heads."""

from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from ._reduction import FLOAT32_EPS, count_valid, reduce_loss
from ._targets import mask_ignored
from ._validation import (
    check_avg_factor, check_element_weight, check_index_target, check_logits, check_number, check_reduction, fail,
)
from .eqlv2 import RATIO_EPS, check_gradient_statistics


def check_efl_args(fn: str, gamma: object, scale: object, alpha: object) -> None:
    check_number(fn, "gamma", gamma, low=0, low_open=True)
    check_number(fn, "scale", scale, low=0)
    if alpha is not None:
        check_number(fn, "alpha", alpha, low=0, high=1)


def efl_gammas(pos_grad: Tensor, neg_grad: Tensor, *, gamma: float = 2.0, scale: float = 8.0) -> Tensor:
    r"""EFL's focusing factor per class from the accumulated gradients.

    .. math::
        \gamma_j = \gamma_b + s (1 - g_j), \qquad
        g_j = \mathrm{clip}\Big(\frac{\sum |\nabla^{pos}_j|}{\sum |\nabla^{neg}_j| + 10^{-10}}, 0, 1\Big)

    Before any gradient is accumulated (all zeros) every :math:`\gamma_j = \gamma_b`: plain focal loss, as at the
    authors' first iteration.

    Shape:
        - pos_grad, neg_grad: ``(C,)``; output ``(C,)``, in their dtype.
    """
    ratio = (pos_grad / (neg_grad + RATIO_EPS)).clamp(0, 1)
    started = (pos_grad.sum() + neg_grad.sum()) > 0
    return gamma + scale * (1 - torch.where(started, ratio, torch.ones_like(ratio)))


def _efl_unchecked(logits: Tensor, target: Tensor, pos_grad: Tensor, neg_grad: Tensor, *, gamma: float,
                   scale: float, alpha: Optional[float], weight: Optional[Tensor], ignore_index: Optional[int],
                   reduction: str, avg_factor: Optional[Union[float, Tensor]] = None,
                   need_statistics: bool = False) -> Tuple[Tensor, Optional[Tensor]]:
    """:func:`equalized_focal_loss` on validated arguments, and, if asked, this batch's ``(2, C)`` positive and
    negative gradient magnitudes of the reduced loss."""
    num_classes = logits.shape[1]
    rows = logits.movedim(1, -1).reshape(-1, num_classes)
    labels = target.reshape(-1)
    safe, valid = mask_ignored(labels, ignore_index, num_classes)          # ignored rows: weight 0
    onehot = F.one_hot(safe.long(), num_classes + 1)[:, :num_classes].to(rows.dtype)
    gammas = efl_gammas(pos_grad, neg_grad, gamma=gamma, scale=scale)
    gammas = gammas.to(device=rows.device, dtype=rows.dtype)
    factor = gammas / gamma                                                 # the re-weighting factor
    if alpha is not None:
        factor = factor * ((1 - alpha) + (2 * alpha - 1) * onehot)          # alpha_t
    if weight is not None:
        factor = factor * weight.expand(target.shape).reshape(-1, 1).to(rows.dtype)
    if valid is not None:
        factor = factor * valid.unsqueeze(1)
    z = rows * (2 * onehot - 1)                                             # p_t = sigmoid(z)
    log_miss = F.logsigmoid(-z)                                             # log(1 - p_t)
    focusing = torch.exp(gammas * log_miss)                                 # (1 - p_t)^gamma_j
    statistics = None
    if need_statistics:
        with torch.no_grad():
            # |d loss / d x| = factor (1 - p_t)^gamma_j [(1 - p_t) - gamma_j p_t log p_t]
            magnitude = factor * focusing * (torch.exp(log_miss) - gammas * torch.sigmoid(z) * F.logsigmoid(z))
            if reduction == "mean":
                magnitude = magnitude / (avg_factor + FLOAT32_EPS if avg_factor is not None
                                         else torch.as_tensor(count_valid(labels, ignore_index)).clamp(min=1))
            positive = (magnitude * onehot).sum(0)
            statistics = torch.stack([positive, magnitude.sum(0) - positive])

    def run(reduce_sum: bool) -> Tensor:
        loss = factor * focusing * F.softplus(-z)                           # -log p_t = softplus(-z)
        if reduce_sum:
            return loss.sum()
        return loss.reshape(logits.movedim(1, -1).shape).movedim(-1, 1)

    return reduce_loss(run, reduction, lambda: count_valid(labels, ignore_index), avg_factor=avg_factor), statistics


def check_efl_inputs(fn: str, logits: object, target: object, num_classes: int, weight: object,
                     ignore_index: Optional[int]) -> None:
    check_logits(fn, logits, min_dim=2)
    assert isinstance(logits, Tensor)
    if logits.shape[1] != num_classes:
        fail(fn, "logits", f"of {num_classes} channels (dim 1)", logits,
             "a dense head has one logit per class and none for the background (label C)")
    check_index_target(fn, logits, target, ignore_index, num_classes=num_classes + 1)
    assert isinstance(target, Tensor)
    check_element_weight(fn, weight, target.shape)


def equalized_focal_loss(
    logits: Tensor,
    target: Tensor,
    *,
    gamma: float = 2.0,
    scale: float = 8.0,
    alpha: Optional[float] = 0.25,
    pos_grad: Optional[Tensor] = None,
    neg_grad: Optional[Tensor] = None,
    weight: Optional[Tensor] = None,
    ignore_index: Optional[int] = -100,
    reduction: str = "mean",
    avg_factor: Optional[Union[float, Tensor]] = None,
) -> Tensor:
    r"""Equalized focal loss (Li et al., CVPR 2022): a sigmoid focal loss whose focusing factor and weight are
    set per class from the positive/negative gradient ratio accumulated so far.

    .. math::
        \mathrm{EFL}(p_t) = -\sum_j \alpha_t \frac{\gamma_j}{\gamma_b} (1 - p_t)^{\gamma_j} \log p_t

    with :math:`\gamma_j` from :func:`efl_gammas`. A rare class, whose negative gradient outweighs its positive
    one (:math:`g_j \to 0`), gets a larger focusing factor (easy negatives stop counting) and a larger weight
    (its hard positives count more); a frequent class keeps the focal loss (:math:`g_j \to 1`). The function is
    pure: :class:`seesaw_losses.EqualizedFocalLoss` accumulates the statistics after each loss and sums them over
    processes. Labels run over ``[0, C]``, ``C`` meaning background (an anchor with no positive class), as in a
    dense head with one sigmoid logit per class. ``"mean"`` divides by the number of non-ignored samples, or by
    ``avg_factor`` (the number of positive anchors in the authors' and MMDetection's heads).

    Args:
        logits: one logit per class.
        target: class indices in ``[0, C]`` (``C``: background).
        gamma: the focal loss's focusing factor :math:`\gamma_b`, ``> 0``.
        scale: :math:`s`, the focusing factor added to a class with no positive gradient, ``>= 0``.
        alpha: the focal loss's balance of positives, in ``[0, 1]``; None for none.
        pos_grad: accumulated positive gradient magnitude per class, ``>= 0``; None (with ``neg_grad``) for
            none yet: the focal loss, as at the authors' first iteration.
        neg_grad: accumulated negative gradient magnitude per class, ``>= 0``.
        weight: per-sample weights broadcastable to the target's shape.
        ignore_index: label that contributes no loss; None for none.
        reduction: ``"none"`` (per logit) | ``"mean"`` | ``"sum"``.
        avg_factor: the denominator of ``"mean"`` instead of the number of samples.

    Shape:
        - logits: ``(N, C)`` or ``(N, C, d1, ..., dK)``; target: ``(N,)`` or ``(N, d1, ..., dK)``.
        - pos_grad, neg_grad: ``(C,)``.
        - output: scalar, or the logits' shape for ``reduction="none"``.

    Examples:
        >>> logits = torch.randn(8, 5, requires_grad=True)
        >>> labels = torch.tensor([0, 5, 5, 1, 5, 0, 5, 4])      # 5: background anchors
        >>> equalized_focal_loss(logits, labels, pos_grad=torch.rand(5), neg_grad=torch.rand(5) * 50).backward()
    """
    fn = "equalized_focal_loss"
    check_efl_args(fn, gamma, scale, alpha)
    check_reduction(fn, reduction)
    check_avg_factor(fn, avg_factor, reduction)
    pos_grad, neg_grad = check_gradient_statistics(fn, logits, pos_grad, neg_grad)
    check_efl_inputs(fn, logits, target, pos_grad.numel(), weight, ignore_index)
    loss, _ = _efl_unchecked(logits, target, pos_grad, neg_grad, gamma=gamma, scale=scale, alpha=alpha,
                             weight=weight, ignore_index=ignore_index, reduction=reduction, avg_factor=avg_factor)
    return loss
