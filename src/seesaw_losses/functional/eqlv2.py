"""Equalization loss v2 (Tan et al., "Equalization Loss v2: A New Gradient Balance Approach for Long-tailed Object
Detection", CVPR 2021) for sigmoid classification heads."""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ._reduction import count_valid, reduce_loss
from ._targets import mask_ignored
from ._validation import check_index_target, check_logits, check_number, check_reduction, fail

RATIO_EPS = 1e-10
"""Added to the accumulated negative gradient before the ratio, as the authors' code does."""


def check_eqlv2_args(fn: str, gamma: object, mu: object, alpha: object) -> None:
    check_number(fn, "gamma", gamma, low=0)
    check_number(fn, "mu", mu, low=0)
    check_number(fn, "alpha", alpha, low=0)


def eqlv2_weights(pos_grad: Tensor, neg_grad: Tensor, *, gamma: float = 12.0, mu: float = 0.8,
                  alpha: float = 4.0) -> Tuple[Tensor, Tensor]:
    r"""EQLv2's per-class weights of the positive and the negative terms from the accumulated gradients.

    .. math::
        r_j = \frac{1}{1 + e^{-\gamma (g_j - \mu)}}, \quad q_j = 1 + \alpha (1 - r_j), \qquad
        g_j = \frac{\sum |\nabla^{pos}_j|}{\sum |\nabla^{neg}_j| + 10^{-10}}

    Before any gradient is accumulated (all zeros) both weights are 1, as in the authors' first iteration.

    Shape:
        - pos_grad, neg_grad: ``(C,)``; outputs ``(q, r)``: ``(C,)`` each, in their dtype.
    """
    ratio = pos_grad / (neg_grad + RATIO_EPS)
    started = (pos_grad.sum() + neg_grad.sum()) > 0
    neg_w = torch.where(started, torch.sigmoid(gamma * (ratio - mu)), torch.ones_like(ratio))
    return 1 + alpha * (1 - neg_w), neg_w


def check_gradient_statistics(fn: str, logits: object, pos_grad: Optional[Tensor], neg_grad: Optional[Tensor], *,
                              background_channel: bool = False) -> Tuple[Tensor, Tensor]:
    """The accumulated positive and negative gradients of a gradient-balancing loss (EQLv2, EFL), checked; zeros
    (no statistics yet) for one per class of ``logits`` when neither is given."""
    if (pos_grad is None) != (neg_grad is None):
        fail(fn, "neg_grad" if neg_grad is None else "pos_grad", "given together with the other statistic",
             None, "pass both accumulated gradients, or neither (no statistics yet)")
    if pos_grad is None or neg_grad is None:
        check_logits(fn, logits, min_dim=2)
        assert isinstance(logits, Tensor)
        num_classes = logits.shape[1] - (1 if background_channel else 0)
        pos_grad = neg_grad = torch.zeros(max(num_classes, 1), dtype=torch.float64, device=logits.device)
    for name, value in (("pos_grad", pos_grad), ("neg_grad", neg_grad)):
        if not isinstance(value, Tensor) or value.dim() != 1 or not value.is_floating_point():
            fail(fn, name, "a 1-D floating-point tensor of accumulated gradients per class", value, error=TypeError)
    if neg_grad.shape != pos_grad.shape:
        fail(fn, "neg_grad", f"of pos_grad's shape {tuple(pos_grad.shape)}", neg_grad)
    return pos_grad, neg_grad


def _eqlv2_unchecked(logits: Tensor, target: Tensor, pos_grad: Tensor, neg_grad: Tensor, *, gamma: float,
                     mu: float, alpha: float, background_channel: bool, ignore_index: Optional[int], reduction: str,
                     need_statistics: bool) -> Tuple[Tensor, Optional[Tensor]]:
    """:func:`eqlv2_loss` on validated arguments, and, if asked, this batch's ``(2, C)`` positive and negative
    gradient magnitudes (weighted; the background channel and ignored samples excluded)."""
    num_classes = pos_grad.numel()
    k = logits.shape[1]
    rows = logits.movedim(1, -1).reshape(-1, k)
    labels = target.reshape(-1)
    safe, valid = mask_ignored(labels, ignore_index, num_classes)                # ignored rows: all negatives
    onehot = F.one_hot(safe.long(), num_classes + 1)[:, :k].to(rows.dtype)
    q, r = eqlv2_weights(pos_grad, neg_grad, gamma=gamma, mu=mu, alpha=alpha)
    if background_channel:                                                       # weight 1 on the background logit
        q, r = (torch.cat([w, w.new_ones(1)]) for w in (q, r))
    q, r = q.to(device=rows.device, dtype=rows.dtype), r.to(device=rows.device, dtype=rows.dtype)
    weight = torch.lerp(r.expand_as(onehot), q.expand_as(onehot), onehot)
    if valid is not None:
        weight = weight * valid.unsqueeze(1)
    statistics = None
    if need_statistics:
        with torch.no_grad():
            p = torch.sigmoid(rows.detach())
            magnitude = torch.lerp(p, 1 - p, onehot) * weight                # |d BCE / d x| times the weight
            positive = (magnitude * onehot).sum(0)[:num_classes]
            statistics = torch.stack([positive, magnitude.sum(0)[:num_classes] - positive])

    def run(reduce_sum: bool) -> Tensor:
        if reduce_sum:
            return F.binary_cross_entropy_with_logits(rows, onehot, weight=weight, reduction="sum")
        loss = F.binary_cross_entropy_with_logits(rows, onehot, weight=weight, reduction="none")
        return loss.reshape(logits.movedim(1, -1).shape).movedim(-1, 1)

    return reduce_loss(run, reduction, lambda: count_valid(labels, ignore_index)), statistics


def check_eqlv2_inputs(fn: str, logits: object, target: object, num_classes: int, background_channel: bool,
                       ignore_index: Optional[int]) -> None:
    check_logits(fn, logits, min_dim=2)
    assert isinstance(logits, Tensor)
    channels = num_classes + 1 if background_channel else num_classes
    if logits.shape[1] != channels:
        hint = ("with background_channel=True the head has C + 1 outputs, the last for the background"
                if background_channel else "pass background_channel=True if the last logit is the background's")
        fail(fn, "logits", f"of {channels} channels (dim 1)", logits, hint)
    check_index_target(fn, logits, target, ignore_index, num_classes=channels)


def eqlv2_loss(
    logits: Tensor,
    target: Tensor,
    *,
    pos_grad: Optional[Tensor] = None,
    neg_grad: Optional[Tensor] = None,
    gamma: float = 12.0,
    mu: float = 0.8,
    alpha: float = 4.0,
    background_channel: bool = False,
    ignore_index: Optional[int] = -100,
    reduction: str = "mean",
) -> Tensor:
    r"""Equalization loss v2 (Tan et al., CVPR 2021): sigmoid cross-entropy of a one-vs-all head whose positive
    and negative terms of class :math:`j` are weighted by :math:`q_j` and :math:`r_j`
    (:func:`eqlv2_weights`), from the positive and negative gradient magnitudes accumulated so far.

    A rare class receives far more negative than positive gradient (every other class's sample pushes it down);
    EQLv2 lowers its negative weight and raises its positive weight until the two balance. The function is pure:
    :class:`seesaw_losses.EQLv2Loss` accumulates the statistics (after each loss, as the authors do) and sums
    them over processes. With ``background_channel`` (the authors' ``C + 1`` detection head) the last logit is the
    background's, always weighted 1, and label ``C`` means background (a negative proposal: no positive class);
    without it labels run over ``[0, C)``. ``"mean"`` divides by the number of non-ignored samples
    (the authors' normalisation), not by the number of logits.

    Args:
        logits: one logit per class (and background).
        target: class indices in ``[0, C)`` (``[0, C]`` with background_channel, ``C``: background).
        pos_grad: accumulated positive gradient magnitude per class, ``>= 0``; None (with ``neg_grad``) for
            none yet: every weight is 1, as at the authors' first iteration.
        neg_grad: accumulated negative gradient magnitude per class, ``>= 0``.
        gamma: slope of the mapping function, ``>= 0``.
        mu: centre of the mapping function, ``>= 0``.
        alpha: extra weight of the positives, ``>= 0``.
        background_channel: the last logit is the background's.
        ignore_index: label that contributes neither loss nor statistics; None for none.
        reduction: ``"none"`` (per logit) | ``"mean"`` | ``"sum"``.

    Shape:
        - logits: ``(N, K)`` or ``(N, K, d1, ..., dK)`` with ``K = C`` (``C + 1`` with background_channel).
        - target: ``(N,)`` or ``(N, d1, ..., dK)``; pos_grad, neg_grad: ``(C,)``.
        - output: scalar, or the logits' shape for ``reduction="none"``.

    Examples:
        >>> logits = torch.randn(8, 5, requires_grad=True)
        >>> stats = {"pos_grad": torch.rand(5), "neg_grad": torch.rand(5) * 50}
        >>> eqlv2_loss(logits, torch.randint(0, 5, (8,)), **stats).backward()
    """
    fn = "eqlv2_loss"
    check_eqlv2_args(fn, gamma, mu, alpha)
    check_reduction(fn, reduction)
    pos_grad, neg_grad = check_gradient_statistics(fn, logits, pos_grad, neg_grad,
                                                   background_channel=background_channel)
    check_eqlv2_inputs(fn, logits, target, pos_grad.numel(), background_channel, ignore_index)
    loss, _ = _eqlv2_unchecked(logits, target, pos_grad, neg_grad, gamma=gamma, mu=mu, alpha=alpha,
                               background_channel=background_channel, ignore_index=ignore_index,
                               reduction=reduction, need_statistics=False)
    return loss
