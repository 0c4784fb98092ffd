"""Asymmetric loss for multi-label classification (Ridnik et al., "Asymmetric Loss For Multi-Label
Classification", ICCV 2021)."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ._forms import ASYMMETRIC, SigmoidForm
from ._fused import reduced_elementwise_loss
from ._scratch import Scratch
from ._validation import (
    check_element_weight, check_logits, check_number, check_probability_target, check_reduction,
)
from ._math import power as _power


class AsymmetricKernel:
    r"""``t L+ + (1 - t) L-`` with ``L+ = -(1 - p)^{g+} log max(p, eps)`` and
    ``L- = -p_m^{g-} log max(1 - p_m, eps)``, ``p = sigmoid(x)``, ``p_m = max(p - clip, 0)``.

    ``1 - p`` is ``sigmoid(-x)`` and ``1 - p_m`` is ``min(sigmoid(-x) + clip, 1)``, never a difference that
    float32 rounds to 0 for large logits."""

    def __init__(self, gamma_pos: float, gamma_neg: float, clip: float, eps: float) -> None:
        self.gamma_pos, self.gamma_neg, self.clip, self.eps = gamma_pos, gamma_neg, clip, eps

    def loss(self, x: Tensor, t: Tensor) -> Tensor:
        p, q = torch.sigmoid(x), torch.sigmoid(-x)
        shifted, rest = ((p - self.clip).clamp(min=0), (q + self.clip).clamp(max=1)) if self.clip > 0 else (p, q)
        positive = -_power(q, self.gamma_pos) * p.clamp(min=self.eps).log()
        negative = -_power(shifted, self.gamma_neg) * rest.clamp(min=self.eps).log()
        return negative + t * (positive - negative)

    def triton_form(self) -> SigmoidForm:
        return SigmoidForm(ASYMMETRIC, (self.gamma_pos, self.gamma_neg, self.clip, self.eps))

    def evaluate(self, x: Tensor, t: Tensor, *, need_grad: bool, scratch: Scratch):
        # With q = 1 - p and r = 1 - p_m = min(q + clip, 1):
        # d L+/dx = q^{g+} (g+ p log P - q [p > eps]);
        # d L-/dx = [p > clip] p q (p_m^{g-} / r [r > eps] - g- p_m^{g- - 1} log max(r, eps)).
        # Every block buffer is fresh memory on each call, so values are overwritten in place once dead: six
        # buffers with the paper's settings (g+ = 0), eight at most.
        gp, gn, clip, eps = self.gamma_pos, self.gamma_neg, self.clip, self.eps
        clamped = clip < eps                                   # else r >= clip >= eps: the log needs no clamp
        p = torch.sigmoid(x, out=scratch())
        q = torch.neg(x, out=scratch()).sigmoid_()
        log_r = torch.add(q, clip, out=scratch()).clamp_(min=eps if clamped else None, max=1)   # r, for now
        shifted = None if gn == 0 else torch.sub(p, clip, out=scratch()).clamp_(min=0)
        w_neg = None if shifted is None else _power_into(shifted, gn, scratch())
        slope = None
        if need_grad:
            slope = torch.reciprocal(log_r, out=scratch())    # 1 / r, 0 where the log is clamped
            if clamped:
                slope.masked_fill_(log_r <= eps, 0)
            if w_neg is not None:
                slope.mul_(w_neg)
        log_r.log_()
        negative = log_r if w_neg is None else w_neg.mul_(log_r)
        if slope is not None:
            if shifted is not None:
                slope.sub_(_power_into(shifted, gn - 1, shifted).mul_(log_r), alpha=gn)
            slope.mul_(q).mul_(p)                              # the negative term's gradient
            if clip > 0 and gn < 1:
                slope.masked_fill_(p <= clip, 0)
        log_p = torch.clamp(p, min=eps, out=shifted if shifted is not None else scratch()).log_()
        g_pos = None
        if gp != 0:
            w_pos = _power_into(q, gp, scratch())
            if need_grad:
                g_pos = torch.neg(q, out=scratch()).masked_fill_(p <= eps, 0)
                g_pos.addcmul_(p, log_p, value=gp).mul_(w_pos)
            log_p.mul_(w_pos)                                  # the positive term, with its weight
        loss = torch.lerp(negative, log_p, t, out=negative).neg_()
        if slope is None:
            return loss, None
        if g_pos is None:
            g_pos = torch.neg(q, out=log_p).masked_fill_(p <= eps, 0)
        return loss, torch.lerp(slope, g_pos, t, out=slope)


def _power_into(base: Tensor, exponent: float, out: Tensor) -> Tensor:
    """``base ** exponent`` (``base >= 0``, ``exponent >= 0``, ``0 ** 0 = 1``) written to ``out`` (may be ``base``)."""
    if exponent == 1:
        return out.copy_(base) if out is not base else out
    if exponent == 2:
        return torch.mul(base, base, out=out)
    if exponent == 4:
        return torch.mul(base, base, out=out).square_()
    return torch.pow(base, exponent, out=out)


def check_asymmetric_args(fn: str, gamma_pos: object, gamma_neg: object, clip: object, eps: object) -> None:
    check_number(fn, "gamma_pos", gamma_pos, low=0)
    check_number(fn, "gamma_neg", gamma_neg, low=0)
    check_number(fn, "clip", clip, low=0, high=1, high_open=True)
    check_number(fn, "eps", eps, low=0, high=1, low_open=True, high_open=True)


def check_asymmetric_tensors(fn: str, logits: Tensor, target: Tensor, weight: Optional[Tensor],
                             ignore_index: Optional[int]) -> Tensor:
    """The per-call checks; returns the target (a boolean one as the logits' dtype)."""
    check_logits(fn, logits)
    target = check_probability_target(fn, logits, target, ignore_index, softmax_name="softmax_focal_loss")
    check_element_weight(fn, weight, target.shape)
    return target


def _asymmetric_unchecked(logits: Tensor, target: Tensor, *, gamma_pos: float, gamma_neg: float, clip: float,
                          eps: float, weight: Optional[Tensor], ignore_index: Optional[int], reduction: str) -> Tensor:
    """:func:`asymmetric_loss` on validated arguments."""
    kernel = AsymmetricKernel(float(gamma_pos), float(gamma_neg), float(clip), float(eps))
    return reduced_elementwise_loss(kernel, logits, target, weight=weight, ignore_index=ignore_index,
                                    reduction=reduction)


def asymmetric_loss(
    logits: Tensor,
    target: Tensor,
    *,
    gamma_pos: float = 0.0,
    gamma_neg: float = 4.0,
    clip: float = 0.05,
    eps: float = 1e-8,
    weight: Optional[Tensor] = None,
    ignore_index: Optional[int] = None,
    reduction: str = "mean",
) -> Tensor:
    r"""Asymmetric loss (ASL, Ridnik et al., ICCV 2021) for multi-label outputs: focal-style down-weighting with
    separate exponents for positives and negatives, and a probability shift that discards easy negatives.

    .. math::
        \ell = -t\,(1 - p)^{\gamma_+} \log p \;-\; (1 - t)\, p_m^{\gamma_-} \log(1 - p_m), \qquad
        p = \sigma(x), \quad p_m = \max(p - \text{clip}, 0)

    (the logs clamped at ``eps``). With a few positives among many labels, ``gamma_neg > gamma_pos`` keeps the
    many easy negatives from swamping the positives' gradient, and the shift ``clip`` zeroes negatives with
    ``p <= clip`` outright (and lessens the pull of mislabelled ones). For 0/1 targets it equals the authors'
    code (also timm's ``AsymmetricLossMultiLabel``) with ``reduction="sum"`` (theirs returns the sum), with the
    focusing weight's gradient kept (their default). For soft targets this is the paper's ``t L+ + (1 - t) L-``;
    the authors' code instead blends the exponents and probabilities before the power. ``gamma_pos =
    gamma_neg = clip = 0`` is binary cross-entropy. Forward and backward run in fused chunks.

    Args:
        logits: one logit per label.
        target: probabilities of each label in ``[0, 1]``, the logits' shape (0/1 for multi-label).
        gamma_pos: focusing exponent of positives, ``>= 0`` (the paper: 0).
        gamma_neg: focusing exponent of negatives, ``>= 0`` (the paper: 4).
        clip: probability shift of negatives, in ``[0, 1)`` (the paper: 0.05).
        eps: floor of the probabilities inside the logs, in ``(0, 1)``.
        weight: per-element weights broadcastable to the target (constants).
        ignore_index: target value whose elements contribute neither loss nor gradient; None for none.
        reduction: ``"none"`` | ``"mean"`` (over non-ignored elements) | ``"sum"``.

    Shape:
        - logits: ``(N, C)`` or ``(N, C, *)``; target: the same shape; weight: broadcastable to it.
        - output: scalar, or the target's shape for ``reduction="none"``.

    Examples:
        >>> logits = torch.randn(8, 20, requires_grad=True)
        >>> asymmetric_loss(logits, (torch.rand(8, 20) < 0.1).float()).backward()
    """
    fn = "asymmetric_loss"
    check_reduction(fn, reduction)
    check_asymmetric_args(fn, gamma_pos, gamma_neg, clip, eps)
    target = check_asymmetric_tensors(fn, logits, target, weight, ignore_index)
    return _asymmetric_unchecked(logits, target, gamma_pos=gamma_pos, gamma_neg=gamma_neg, clip=clip, eps=eps,
                                 weight=weight, ignore_index=ignore_index, reduction=reduction)
