"""Logit adjustment (Menon et al., "Long-Tail Learning via Logit Adjustment", ICLR 2021), Balanced Softmax (Ren
et al., "Balanced Meta-Softmax for Long-Tailed Visual Recognition", NeurIPS 2020) and the post-hoc adjustment of
a model trained with plain cross-entropy."""

from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from ._forms import SoftmaxForm
from ._fused import compute_dtype
from ._scratch import Scratch
from ._math import log_softmax, softmax_and_target_log_prob
from ._validation import (
    check_class_weight, check_counts, check_index_target, check_logits, check_number, check_reduction, fail,
)
from .seesaw import softmax_loss
from .weighting import log_prior


def check_counts_for(fn: str, logits: Tensor, class_counts: object) -> Tensor:
    """``class_counts`` is a ``(C,)`` tensor of non-negative counts for the ``C`` channels of ``logits``."""
    counts = check_counts(fn, class_counts)
    if counts.numel() != logits.shape[1]:
        fail(fn, "class_counts", f"a 1-D tensor of {logits.shape[1]} class counts (one per channel of the logits)",
             counts, "count the training labels with seesaw_losses.class_counts(loader, num_classes)")
    return counts


class AdjustedSoftmaxKernel:
    r"""Cross-entropy of adjusted logits ``z' = scale * (z + bias - margin_t * onehot(t))`` on ``(B, C, L)``.

    ``bias`` (``(C,)``) is logit adjustment's ``tau * log(prior)``; ``margin`` (``(C,)``) is LDAM's per-class
    margin on the true class's logit; with neither and ``scale = 1`` it is cross-entropy. The gradient with
    respect to ``z`` is ``scale * (softmax(z') - onehot(t))``.
    """

    def __init__(self, bias: Optional[Tensor] = None, margin: Optional[Tensor] = None, scale: float = 1.0) -> None:
        self.bias, self.margin, self.scale = bias, margin, scale

    def _adjusted(self, z: Tensor, t: Tensor) -> Tensor:
        if self.bias is not None:
            z = z + self.bias.view(1, -1, 1)
        if self.margin is not None:
            z = z.scatter_add(1, t.unsqueeze(1), -self.margin[t].unsqueeze(1))
        return z * self.scale if self.scale != 1 else z

    def loss(self, z: Tensor, t: Tensor) -> Tensor:
        return -log_softmax(self._adjusted(z, t)).gather(1, t.unsqueeze(1)).squeeze(1)

    def triton_form(self) -> SoftmaxForm:
        return SoftmaxForm.cross_entropy(self.bias, self.margin, self.scale)

    def evaluate(self, z: Tensor, t: Tensor, *, need_grad: bool, scratch: Scratch):
        """Loss and gradient from one native ``softmax`` of the adjusted block, written where the gradient
        goes (:func:`~._math.softmax_and_target_log_prob`)."""
        t1 = t.unsqueeze(1)
        adjusted = z
        if self.scale != 1 or self.bias is not None or self.margin is not None:
            adjusted = scratch()
            if self.scale != 1:
                torch.mul(z, self.scale, out=adjusted)
                if self.bias is not None:
                    adjusted.add_(self.bias.view(1, -1, 1), alpha=self.scale)
            elif self.bias is not None:
                torch.add(z, self.bias.view(1, -1, 1), out=adjusted)
            else:
                adjusted.copy_(z)
            if self.margin is not None:
                adjusted.scatter_add_(1, t1, self.margin[t1].mul(-self.scale))
        prob, log_p_t = softmax_and_target_log_prob(adjusted, t1, need_grad, scratch)
        loss = log_p_t.neg_().squeeze(1)
        if prob is None:
            return loss, None
        grad = prob.scatter_add_(1, t1, torch.full(t1.shape, -1.0, dtype=prob.dtype, device=prob.device))
        return loss, (grad.mul_(self.scale) if self.scale != 1 else grad)


def check_tau(fn: str, tau: object) -> None:
    check_number(fn, "tau", tau, low=0)


def check_prior_tensors(fn: str, logits: Tensor, target: Tensor, ignore_index: Optional[int]) -> None:
    """The per-call checks of the prior losses: ``(N, C, *)`` logits and their class-index target."""
    check_logits(fn, logits, min_dim=2)
    check_index_target(fn, logits, target, ignore_index, num_classes=logits.shape[1])


def check_prior_call(fn: str, logits: Tensor, target: Tensor, class_counts: object, class_weight: object,
                     ignore_index: Optional[int], reduction: str) -> Tuple[Tensor, Optional[Tensor]]:
    """Every check of a prior loss's call but its own options; returns the counts and the class weights."""
    check_reduction(fn, reduction)
    check_prior_tensors(fn, logits, target, ignore_index)
    counts = check_counts_for(fn, logits, class_counts)
    return counts, check_class_weight(fn, class_weight, logits.shape[1])


def _logit_adjusted_unchecked(logits: Tensor, target: Tensor, class_counts: Tensor, *, tau: float,
                              class_weight: Optional[Tensor], ignore_index: Optional[int], reduction: str) -> Tensor:
    """:func:`logit_adjusted_loss` on validated arguments."""
    bias = None
    if tau > 0:
        bias = log_prior(class_counts, dtype=compute_dtype(logits.dtype), device=logits.device).mul_(tau)
    return softmax_loss(AdjustedSoftmaxKernel(bias), logits, target, class_weight=class_weight, weight=None,
                        ignore_index=ignore_index, reduction=reduction)


def logit_adjusted_loss(
    logits: Tensor,
    target: Tensor,
    class_counts: Tensor,
    *,
    tau: float = 1.0,
    class_weight: Optional[Union[Tensor, Sequence[float]]] = None,
    ignore_index: Optional[int] = -100,
    reduction: str = "mean",
) -> Tensor:
    r"""Logit-adjusted cross-entropy (Menon et al., ICLR 2021): cross-entropy of the logits plus
    ``tau * log(prior)``.

    .. math::
        \ell = -\log \frac{e^{z_y + \tau \log \pi_y}}{\sum_j e^{z_j + \tau \log \pi_j}}, \qquad
        \pi_c = \frac{n_c}{\sum_k n_k}

    Rare classes get a lower logit during training, so the model learns to raise theirs: at test time the plain
    ``argmax(z)`` is already balanced. Use this **or** :func:`adjust_logits` on a model trained with plain
    cross-entropy, never both. ``tau = 0`` is cross-entropy; ``tau = 1`` is Balanced Softmax
    (:func:`balanced_softmax_loss`). A class with no samples counts as one sample (never ``-inf``); counts of all
    zeros leave the logits unadjusted. Forward and backward run in fused chunks.

    Args:
        logits: unnormalised scores.
        target: class indices.
        class_counts: training samples per class (e.g. :func:`seesaw_losses.class_counts`), non-negative.
        tau: strength of the adjustment, ``>= 0``.
        class_weight: per-class weights ``(C,)``, as ``cross_entropy``'s ``weight`` (``"mean"`` divides by the
            summed weights of the non-ignored targets).
        ignore_index: target value that contributes neither loss nor gradient; None for none.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.

    Shape:
        - logits: ``(N, C)`` or ``(N, C, d1, ..., dK)``; target: ``(N,)`` or ``(N, d1, ..., dK)``, integer.
        - class_counts, class_weight: ``(C,)``.
        - output: scalar, or the target's shape for ``reduction="none"``.

    Examples:
        >>> logits = torch.randn(8, 4, requires_grad=True)
        >>> logit_adjusted_loss(logits, torch.randint(0, 4, (8,)), torch.tensor([500, 100, 20, 2])).backward()
    """
    fn = "logit_adjusted_loss"
    check_tau(fn, tau)
    counts, class_weight = check_prior_call(fn, logits, target, class_counts, class_weight, ignore_index, reduction)
    return _logit_adjusted_unchecked(logits, target, counts, tau=tau, class_weight=class_weight,
                                     ignore_index=ignore_index, reduction=reduction)


def balanced_softmax_loss(
    logits: Tensor,
    target: Tensor,
    class_counts: Tensor,
    *,
    class_weight: Optional[Union[Tensor, Sequence[float]]] = None,
    ignore_index: Optional[int] = -100,
    reduction: str = "mean",
) -> Tensor:
    r"""Balanced Softmax (Ren et al., NeurIPS 2020): :func:`logit_adjusted_loss` with ``tau = 1``, i.e.
    cross-entropy of ``softmax`` weighted by the class counts, :math:`n_j e^{z_j} / \sum_k n_k e^{z_k}`.

    Shape:
        - as :func:`logit_adjusted_loss`.
    """
    return logit_adjusted_loss(logits, target, class_counts, tau=1.0, class_weight=class_weight,
                               ignore_index=ignore_index, reduction=reduction)


def adjust_logits(logits: Tensor, class_counts: Tensor, tau: float = 1.0) -> Tensor:
    r"""Post-hoc logit adjustment for prediction: ``z - tau * log(prior)`` (Menon et al., ICLR 2021, Eq. 8).

    For a model trained with plain cross-entropy on long-tailed data, its ``argmax`` favours frequent classes;
    subtracting the log prior balances it (``tau = 1`` targets the balanced error). Not for a model trained with
    :func:`logit_adjusted_loss` or :func:`balanced_softmax_loss`, which already corrects for the prior.

    Args:
        logits: the model's scores.
        class_counts: training samples per class.
        tau: strength, ``>= 0``.

    Shape:
        - logits: ``(N, C)`` or ``(N, C, d1, ..., dK)``; class_counts: ``(C,)``; output: the logits' shape.

    Examples:
        >>> prediction = adjust_logits(torch.randn(8, 3), torch.tensor([900, 90, 9])).argmax(1)
    """
    fn = "adjust_logits"
    check_logits(fn, logits, min_dim=2)
    counts = check_counts_for(fn, logits, class_counts)
    check_tau(fn, tau)
    shift = log_prior(counts, dtype=logits.dtype, device=logits.device).mul_(tau)
    return logits - shift.view((1, -1) + (1,) * (logits.dim() - 2))
