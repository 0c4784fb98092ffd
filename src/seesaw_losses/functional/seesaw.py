"""Seesaw loss (Wang et al., "Seesaw Loss for Long-Tailed Instance Segmentation", CVPR 2021)."""

from __future__ import annotations

import math
from typing import Optional, Union

import torch
from torch import Tensor

from ._forms import SEESAW, SoftmaxForm
from ._fused import classwise_loss, compute_dtype
from ._scratch import Scratch
from ._math import softmax_and_target_log_prob
from ._reduction import count_valid, reduce_loss
from ._shapes import flatten_from
from ._targets import mask_ignored
from ._validation import (
    check_avg_factor, check_class_weight, check_counts, check_element_weight, check_index_target, check_logits,
    check_number, check_reduction, fail,
)
from .weighting import log_prior

LOG_SAFE_FACTOR = 60.0
"""Largest log-factor that ``FusedSeesawKernel.evaluate`` multiplies in directly (float32 overflows past 88)."""


class SeesawKernel:
    """Per-position Seesaw cross-entropy on ``(B, C, L)`` logits; with ``p = q = 0`` it is cross-entropy.

    ``log_counts`` holds ``log(max(n_c, 1))`` per class (None when ``p = 0``). The Seesaw factors are computed
    from the counts and the detached logits, so they carry no gradient. This is the formula in log space, valid
    for any ``p`` and ``q``; :func:`seesaw_kernel` picks the hand-derived :class:`FusedSeesawKernel` where its
    factors stay within float32's range.
    """

    def __init__(self, log_counts: Optional[Tensor], p: float, q: float, eps: float) -> None:
        self.log_counts, self.p, self.q, self.eps, self.log_eps = log_counts, p, q, eps, math.log(eps)

    def _adjusted(self, z: Tensor, t: Tensor) -> Tensor:
        """Logits with ``log S_ij`` added to every non-target class ``j`` (``log S_ii = 0``)."""
        adjust = None
        if self.p > 0 and self.log_counts is not None:
            log_n_target = self.log_counts[t].unsqueeze(1)
            adjust = (self.log_counts.view(1, -1, 1) - log_n_target).clamp_(max=0).mul_(self.p)
        if self.q > 0:
            log_s = torch.log_softmax(z.detach(), dim=1)
            log_s_target = log_s.gather(1, t.unsqueeze(1)).clamp_(min=self.log_eps)
            compensation = log_s.sub_(log_s_target).clamp_(min=0).mul_(self.q)
            adjust = compensation if adjust is None else adjust.add_(compensation)
        return z if adjust is None else z + adjust

    def loss(self, z: Tensor, t: Tensor) -> Tensor:
        # shifted so that the largest logit is 0: ``log S`` (up to q log(1/eps) + p log(n_max)) then adds to
        # logits of its own size, not to logits of 1e4 whose float32 spacing (1e-3) would round it away
        z = z - z.detach().amax(1, keepdim=True)
        z_target = z.gather(1, t.unsqueeze(1)).squeeze(1)
        return torch.logsumexp(self._adjusted(z, t), dim=1) - z_target

    def triton_form(self) -> SoftmaxForm:
        return SoftmaxForm(SEESAW, self.log_counts if self.p > 0 else None, p=self.p, q=self.q, eps=self.eps)


class FusedSeesawKernel(SeesawKernel):
    """:class:`SeesawKernel` with its gradient derived by hand, for factors that float32 can multiply in directly:
    ``q * log(1/eps)`` and ``p * 63 log(2) / 2`` (the count ratios, centred) below :data:`LOG_SAFE_FACTOR`."""

    def __init__(self, log_counts: Optional[Tensor], p: float, q: float, eps: float) -> None:
        super().__init__(log_counts, p, q, eps)
        self.count_power = None
        if p > 0 and log_counts is not None:
            middle = log_counts.max() * (p / 2)
            self.count_power = log_counts.mul(p).sub_(middle).exp_()

    @staticmethod
    def applies(p: float, q: float, eps: float) -> bool:
        return q * -math.log(eps) < LOG_SAFE_FACTOR and p * math.log(2.0**63) / 2 < LOG_SAFE_FACTOR

    def evaluate(self, z: Tensor, t: Tensor, *, need_grad: bool, scratch: Scratch):
        """Loss and gradient from one native softmax ``s`` (:func:`~._math.softmax_and_target_log_prob`), scaled
        by ``S`` in place.

        ``S_ij = min(1, (n_j / n_i)^p) * max(1, s_j / max(s_i, eps))^q``; the loss is
        ``log(sum_j S_ij s_j) - log s_i`` and the gradient ``softmax(z + log S) - onehot(t)``.
        """
        t1 = t.unsqueeze(1)
        prob, log_p_target = softmax_and_target_log_prob(z, t1, True, scratch)
        ratio = scratch() if self.q > 0 or self.count_power is not None else None
        if self.q > 0:
            floor = prob.gather(1, t1).clamp_(min=self.eps)
            torch.div(prob, floor, out=ratio).clamp_(min=1)
            prob.mul_(ratio.square_() if self.q == 2 else ratio.pow_(self.q))
        if self.count_power is not None:
            torch.div(self.count_power.view(1, -1, 1), self.count_power[t1], out=ratio).clamp_(max=1)
            prob.mul_(ratio)
        total = prob.sum(1, keepdim=True)
        loss = total.log().sub_(log_p_target).squeeze(1)
        if not need_grad:
            return loss, None
        grad = prob.div_(total)
        return loss, grad.scatter_add_(1, t1, torch.full(t1.shape, -1.0, dtype=grad.dtype, device=grad.device))


def seesaw_kernel(log_counts: Optional[Tensor], p: float, q: float, eps: float) -> SeesawKernel:
    """The Seesaw kernel for these factors: hand-derived gradient where it is exact in float32, else autograd."""
    kind = FusedSeesawKernel if FusedSeesawKernel.applies(p, q, eps) else SeesawKernel
    return kind(log_counts, p, q, eps)


def softmax_loss(
    kernel, logits: Tensor, target: Tensor, *, class_weight: Optional[Tensor], weight: Optional[Tensor],
    ignore_index: Optional[int], reduction: str, avg_factor: Optional[Union[float, Tensor]] = None,
) -> Tensor:
    """Run a classwise kernel with per-class ``class_weight``, per-element ``weight``, ``ignore_index`` and a
    reduction. Arguments are assumed validated. Returns ``(N, *)`` for ``reduction="none"``, else a scalar."""
    cdtype = compute_dtype(logits.dtype)
    w = class_w = None
    if class_weight is not None:
        safe, valid = mask_ignored(flatten_from(target, 1), ignore_index)
        w = class_weight.to(device=logits.device, dtype=cdtype)[safe]
        class_w = w if valid is None else w * valid
    if weight is not None:
        ew = flatten_from(weight.to(cdtype).expand(target.shape), 1)
        w = ew if w is None else w * ew

    def denominator():
        return count_valid(target, ignore_index) if class_weight is None else class_w.sum()

    def run(reduce_sum: bool) -> Tensor:
        out = classwise_loss(kernel, logits, target, weight=w, ignore_index=ignore_index, reduce_sum=reduce_sum)
        return out if reduce_sum else out.view(target.shape)

    return reduce_loss(run, reduction, denominator, avg_factor=avg_factor)


def check_seesaw_options(fn: str, p: float, q: float, eps: float, reduction: str) -> None:
    """Options shared by the Seesaw functions and modules (checked once, when a module is built)."""
    check_number(fn, "p", p, low=0, high=None)
    check_number(fn, "q", q, low=0, high=None)
    check_number(fn, "eps", eps, low=0, high=1, low_open=True)
    check_reduction(fn, reduction)


def check_seesaw_tensors(fn: str, logits: Tensor, target: Tensor, num_classes: int, channels_rule: str, *,
                         weight: Optional[Tensor], ignore_index: Optional[int], reduction: str,
                         avg_factor: Optional[Union[float, Tensor]]) -> None:
    """The per-call checks of Seesaw: logits of ``num_classes`` channels (``channels_rule`` says why), the
    target, the per-element weight and ``avg_factor``."""
    check_logits(fn, logits, min_dim=2)
    if logits.shape[1] != num_classes:
        fail(fn, "logits", f"of {num_classes} channels (dim 1) {channels_rule}", logits,
             "the channel dimension must hold one logit per class")
    check_index_target(fn, logits, target, ignore_index, num_classes=num_classes,
                       hint_float="Seesaw needs class indices; for one-logit binary outputs use binary_seesaw_loss")
    check_element_weight(fn, weight, target.shape, num_classes)
    check_avg_factor(fn, avg_factor, reduction)


def _seesaw_loss_unchecked(logits: Tensor, target: Tensor, class_counts: Optional[Tensor], *, p: float, q: float,
                           eps: float, class_weight: Optional[Tensor], weight: Optional[Tensor],
                           ignore_index: Optional[int], reduction: str,
                           avg_factor: Optional[Union[float, Tensor]], tau: float = 0.0) -> Tensor:
    """:func:`seesaw_loss` on validated arguments (``class_counts`` may be None when ``p = tau = 0``)."""
    if tau > 0:
        prior = log_prior(class_counts, dtype=compute_dtype(logits.dtype), device=logits.device).mul_(tau)
        logits = logits + prior.view((1, -1) + (1,) * (logits.dim() - 2))
    log_counts = None
    if p > 0:
        log_counts = class_counts.to(device=logits.device).clamp(min=1).to(compute_dtype(logits.dtype)).log()
    return softmax_loss(seesaw_kernel(log_counts, p, q, eps), logits, target, class_weight=class_weight,
                        weight=weight, ignore_index=ignore_index, reduction=reduction, avg_factor=avg_factor)


def seesaw_loss(
    logits: Tensor,
    target: Tensor,
    class_counts: Tensor,
    *,
    p: float = 0.8,
    q: float = 2.0,
    eps: float = 1e-2,
    class_weight: Optional[Tensor] = None,
    weight: Optional[Tensor] = None,
    ignore_index: Optional[int] = -100,
    reduction: str = "mean",
    avg_factor: Optional[Union[float, Tensor]] = None,
    tau: float = 0.0,
) -> Tensor:
    r"""Seesaw loss for multi-class logits, given the cumulative class counts.

    For a sample of true class :math:`i` with logits :math:`z`,

    .. math::
        \ell = -\log \frac{e^{z_i}}{e^{z_i} + \sum_{j \ne i} S_{ij} e^{z_j}}, \quad S_{ij} = M_{ij} C_{ij},

    with mitigation :math:`M_{ij} = (n_j / n_i)^p` if :math:`n_j < n_i` else 1 (counts clamped to at least 1) and
    compensation :math:`C_{ij} = (s_j / \max(s_i, \epsilon))^q` if that ratio exceeds 1 else 1, where :math:`s` is
    the softmax of the detached logits. :math:`S` carries no gradient. ``p = q = 0`` gives cross-entropy.
    With ``tau > 0`` the logits are first adjusted by ``tau * log(prior)`` from the same counts (logit adjustment,
    :func:`logit_adjusted_loss`), and the Seesaw factors act on the adjusted logits; ``tau = 0`` is Seesaw as
    published.

    The function is pure: the caller owns the counts (see :class:`seesaw_losses.SeesawLoss`, which accumulates
    them). Forward and backward run in fused chunks; the gradient is derived by hand
    where float32 holds the factors (autograd per chunk beyond).

    Args:
        logits: unnormalised scores.
        target: class indices.
        class_counts: number of samples seen per class (any real dtype; int64 keeps counts exact).
        p: mitigation exponent, ``>= 0``.
        q: compensation exponent, ``>= 0``.
        eps: floor of the true class's probability in the compensation ratio, in ``(0, 1]``.
        class_weight: per-class weights, as ``weight`` of :func:`torch.nn.functional.cross_entropy`; ``"mean"``
            then divides by the summed weights of the non-ignored targets.
        weight: per-element weights (e.g. a detection head's ``label_weights``), broadcastable to the target;
            they multiply the loss and leave the ``"mean"`` denominator unchanged. Treated as constants.
        ignore_index: target value whose elements contribute neither loss nor gradient; ``None`` for none.
        reduction: ``"none"`` | ``"mean"`` (over non-ignored elements) | ``"sum"``.
        avg_factor: if given with ``reduction="mean"``, the sum is divided by it instead (MMDetection).
        tau: strength of the logit adjustment before the Seesaw factors, ``>= 0``.

    Shape:
        - logits: ``(N, C)`` or ``(N, C, d1, ..., dK)``.
        - target: ``(N,)`` or ``(N, d1, ..., dK)``, integer.
        - class_counts: ``(C,)``.
        - class_weight: ``(C,)``; weight: broadcastable to the target's shape.
        - output: scalar, or the target's shape for ``reduction="none"``.

    Examples:
        >>> logits = torch.randn(8, 5, requires_grad=True)
        >>> target = torch.randint(0, 5, (8,))
        >>> counts = torch.tensor([1000, 300, 50, 10, 2])
        >>> seesaw_loss(logits, target, counts).backward()
    """
    fn = "seesaw_loss"
    check_seesaw_options(fn, p, q, eps, reduction)
    check_number(fn, "tau", tau, low=0)
    check_counts(fn, class_counts)
    check_seesaw_tensors(fn, logits, target, class_counts.numel(), "to match class_counts", weight=weight,
                         ignore_index=ignore_index, reduction=reduction, avg_factor=avg_factor)
    class_weight = check_class_weight(fn, class_weight, class_counts.numel())
    return _seesaw_loss_unchecked(logits, target, class_counts, p=p, q=q, eps=eps, class_weight=class_weight,
                                  weight=weight, ignore_index=ignore_index, reduction=reduction,
                                  avg_factor=avg_factor, tau=tau)
