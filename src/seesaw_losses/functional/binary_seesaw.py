"""Binary Seesaw loss for binary semantic segmentation, on one-logit (sigmoid) or two-logit (softmax) outputs."""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from ._forms import BINARY_SEESAW, SigmoidForm
from ._fused import CHUNK_ELEMENTS, compute_dtype, reduced_elementwise_loss
from ._scratch import Scratch
from ._math import softplus, softplus_sigmoid
from ._targets import count_labels, valid_mask
from ._validation import (
    already_checked, check_choice, check_counts, check_element_weight, check_finite, check_logits, check_number,
    fail, should_check_values,
)
from .seesaw import check_seesaw_options

VARIANTS = ("paper", "reweighted")
REWEIGHTED_DELTA = 1e-6
"""The reweighted variant's ``log(p + delta)`` and count offset, as in the original implementation."""
REWEIGHTED_BACKGROUND_FLOOR = 0.1
REWEIGHTED_COMPENSATION_CAP = 5.0


def _signed(x: Tensor, t: Tensor) -> Tensor:
    """``x`` for foreground targets (``t = 1``), ``-x`` for background (``t = 0``)."""
    return torch.where(t > 0.5, x, -x)


class PaperKernel:
    """The two-class case of Seesaw: ``softplus(-u + log S)`` with ``u = +-x`` the true class's logit margin."""

    def __init__(self, log_m_fg: Tensor, log_m_bg: Tensor, q: float, eps: float) -> None:
        self.log_m_fg, self.log_m_bg, self.q, self.log_eps = log_m_fg, log_m_bg, q, math.log(eps)
        self.log_m_gap = log_m_fg - log_m_bg

    def _margin(self, x: Tensor, t: Tensor) -> Tensor:
        """``-u + log S`` where ``u`` is the signed logit; ``log S`` is computed from detached values."""
        u = _signed(x, t)
        log_s = torch.where(t > 0.5, self.log_m_fg, self.log_m_bg)
        if self.q > 0:
            ud = u.detach()
            sp = softplus(ud)                      # -log s_other
            log_s_true = sp.neg() + ud             # -softplus(-u)
            log_s = log_s + (log_s_true.clamp(min=self.log_eps).add_(sp)).neg_().clamp_(min=0).mul_(self.q)
        return log_s - u

    def loss(self, x: Tensor, t: Tensor) -> Tensor:
        return softplus(self._margin(x, t))

    def triton_form(self) -> SigmoidForm:
        return SigmoidForm(BINARY_SEESAW, (self.log_m_gap, self.log_m_bg, self.q, self.log_eps))

    def evaluate(self, x: Tensor, t: Tensor, *, need_grad: bool, scratch: Scratch):
        # With v = -u = x (1 - 2t) and log s_other - log s_true = v, the compensation term above is
        # q relu(v - relu(softplus(v) + log eps)): one softplus, and d(margin)/dx = 1 - 2t.
        v = torch.addcmul(x, t, x, value=-2, out=scratch())
        margin = torch.addcmul(v, t, self.log_m_gap, out=scratch()).add_(self.log_m_bg)
        if self.q > 0:
            excess, _ = softplus_sigmoid(v, False, scratch)
            excess.add_(self.log_eps).relu_()                   # how far s_true lies below eps, in log
            margin.add_(torch.sub(v, excess, out=excess).relu_(), alpha=self.q)
        loss, s = softplus_sigmoid(margin, need_grad, scratch, scratch.gradient() if need_grad else None)
        return loss, (s.addcmul_(t, s, value=-2) if need_grad else None)


class ReweightedKernel:
    """The original Binary Seesaw formulation, in log space: ``-log(p_true + delta) * M * C``, gradient through C.

    ``M`` is per-batch mitigation (``m_fg`` for foreground, ``m_bg`` for background pixels); ``C`` is
    ``clamp((p_other / p_true)^q, 1, 5)``; logits are scaled by ``temperature``. Not a hot path: the engine
    differentiates this formula block by block.
    """

    def __init__(self, m_fg: Tensor, m_bg: Tensor, q: float, temperature: float) -> None:
        self.m_fg, self.m_bg, self.q, self.temperature = m_fg, m_bg, q, temperature
        self.log_cap = math.log(REWEIGHTED_COMPENSATION_CAP)
        self.log_delta = math.log(REWEIGHTED_DELTA)

    def loss(self, x: Tensor, t: Tensor) -> Tensor:
        u = _signed(x * self.temperature, t)
        log_p = softplus(-u).neg_()
        nll = torch.logaddexp(log_p, torch.full_like(log_p, self.log_delta)).neg_()
        m = torch.where(t > 0.5, self.m_fg, self.m_bg)
        compensation = torch.exp((-self.q * u).clamp(min=0, max=self.log_cap))
        return nll * m * compensation


def _binary_form(fn: str, logits: Tensor, target: Tensor) -> str:
    """``"one"`` (one logit per element, same-shape target) or ``"two"`` (``(N, 2, *)`` with index target)."""
    if not isinstance(target, Tensor):
        fail(fn, "target", "a torch.Tensor", type(target).__name__, error=TypeError)
    if tuple(target.shape) == tuple(logits.shape):
        return "one"
    if logits.dim() >= 2 and tuple(target.shape) == (logits.shape[0],) + tuple(logits.shape[2:]):
        if logits.shape[1] == 1:
            fail(fn, "target", f"of the logits' shape {tuple(logits.shape)} for a one-logit output", target,
                 "add the channel dimension with target.unsqueeze(1)")
        if logits.shape[1] != 2:
            fail(fn, "logits", "of 2 channels (background, foreground) for an index target", logits,
                 "for a one-logit output pass a target of the logits' shape; for C > 2 classes use seesaw_loss")
        if target.is_floating_point():
            fail(fn, "target", "an integer tensor of class indices {0, 1} for two-logit outputs", target,
                 "convert with target.long()", error=TypeError)
        return "two"
    fail(fn, "target", f"of the logits' shape {tuple(logits.shape)} (one logit) or "
         f"{(logits.shape[0],) + tuple(logits.shape[2:])} (two logits)", target)


def _is_binary(target: Tensor, ignore_index: Optional[int]) -> bool:
    """Whether every value is 0, 1 or ``ignore_index``: ``t (1 - t) (t - ignore)`` is 0 exactly for those (NaN
    and overflow make it non-zero). Read in blocks into one reused buffer: a target-sized temporary would cost
    more in fresh pages than the check itself."""
    flat = target.reshape(-1)
    dtype = flat.dtype if flat.is_floating_point() else torch.float64
    size = min(flat.numel(), CHUNK_ELEMENTS)
    off, shifted = (torch.empty(size, dtype=dtype, device=flat.device) for _ in range(2))
    for start in range(0, flat.numel(), CHUNK_ELEMENTS):
        t = flat[start:start + CHUNK_ELEMENTS].to(dtype)
        block = torch.addcmul(t, t, t, value=-1, out=off[:t.numel()])
        if ignore_index is not None:
            block.mul_(torch.sub(t, ignore_index, out=shifted[:t.numel()]))
        if bool(block.any()):
            return False
    return True


def binary_targets(fn: str, logits: Tensor, target: Tensor, ignore_index: Optional[int]):
    """Validate a binary target; return ``(x, t)``: one logit per element and the matching target.

    For two-logit outputs ``x = z_fg - z_bg``, which gives exactly the two-class softmax result; the difference
    is taken in the computing dtype (float32 for half-precision logits), as every loss computes.
    """
    check_logits(fn, logits)
    form = _binary_form(fn, logits, target)
    if target.device != logits.device:
        fail(fn, "target", f"on the logits' device {logits.device}", f"device {target.device}")
    if target.is_complex():
        fail(fn, "target", "a real tensor", target, error=TypeError)
    if target.numel() and target.dtype != torch.bool and should_check_values(target) \
            and not already_checked(target, "binary", ignore_index) and not _is_binary(target, ignore_index):
        keep = valid_mask(target, ignore_index)
        valid = target if keep is None else target[keep]
        bad = valid[(valid != 0) & (valid != 1)][0].item()
        check_finite(fn, "target", bad, bad)
        bad = int(bad) if float(bad).is_integer() else bad
        hint = f"if {bad} marks pixels to skip, pass ignore_index={bad}" if bad in (255, -1, -100) else (
            "binarise soft masks first, e.g. (mask > 0.5).float()")
        fail(fn, "target", "binary (0 = background, 1 = foreground)", f"a value {bad}", hint)
    if form == "one":
        return logits, target
    cdtype = compute_dtype(logits.dtype)
    return logits[:, 1].to(cdtype) - logits[:, 0].to(cdtype), target


_EXACT_ROW = 1 << 22
"""Elements per partial sum when counting a float target: float32 holds every integer up to 2**24 exactly."""


def binary_counts(target: Tensor, ignore_index: Optional[int]) -> Tensor:
    """``[background, foreground]`` counts of a binary target (int64, no host sync).

    A float target is counted without a converted copy: its sum is the foreground count (taken in float32 rows
    of :data:`_EXACT_ROW` elements, so exact at any size); with ``ignore_index``, the elements equal to 1 are
    counted instead. The background is the rest of the valid elements.

    Shape:
        - target: any shape, values in ``{0, 1}`` or ``ignore_index``.
        - output: ``(2,)``.
    """
    if not target.is_floating_point():
        return count_labels(target, 2, ignore_index)
    valid = valid_mask(target, ignore_index)
    if valid is not None:
        count, foreground = valid.sum(), (target == 1).sum()
        return torch.stack([count - foreground, foreground])
    flat = target.reshape(-1)
    cut = flat.numel() - flat.numel() % _EXACT_ROW
    dtype = torch.float64 if flat.dtype == torch.float64 else torch.float32
    total = flat[cut:].sum(dtype=dtype).double()
    if cut:
        total = total + flat[:cut].view(-1, _EXACT_ROW).sum(1, dtype=dtype).double().sum()
    foreground = total.round().long()
    return torch.stack([flat.numel() - foreground, foreground])


def check_binary_seesaw_options(fn: str, p: float, q: float, eps: float, reduction: str, variant: str,
                                temperature: Optional[float]) -> None:
    """Options shared by :func:`binary_seesaw_loss` and its module (checked once, when a module is built)."""
    check_seesaw_options(fn, p, q, eps, reduction)
    check_choice(fn, "variant", variant, VARIANTS)
    if temperature is not None:
        if variant == "paper":
            fail(fn, "temperature", "None for variant='paper'", temperature,
                 "the temperature belongs to variant='reweighted'")
        check_number(fn, "temperature", temperature, low=0, low_open=True)


def check_binary_seesaw_tensors(fn: str, logits: Tensor, target: Tensor, weight: Optional[Tensor],
                                ignore_index: Optional[int]):
    """The per-call checks; returns ``(x, t)`` of :func:`binary_targets`."""
    x, t = binary_targets(fn, logits, target, ignore_index)
    check_element_weight(fn, weight, t.shape)
    return x, t


def _binary_seesaw_unchecked(x: Tensor, t: Tensor, class_counts: Optional[Tensor], *, p: float, q: float,
                             eps: float, variant: str, temperature: Optional[float], weight: Optional[Tensor],
                             ignore_index: Optional[int], reduction: str,
                             batch_counts: Optional[Tensor]) -> Tensor:
    """:func:`binary_seesaw_loss` on validated arguments, with ``(x, t)`` from :func:`binary_targets`."""
    cdtype = compute_dtype(x.dtype)
    if variant == "paper":
        log_n = class_counts.to(device=x.device).clamp(min=1).to(cdtype).log()
        gap = (log_n[0] - log_n[1]) * p
        kernel = PaperKernel(gap.clamp(max=0), (-gap).clamp(max=0), q, eps)
    else:
        if batch_counts is None:
            batch_counts = binary_counts(t, ignore_index)
        counts = batch_counts.to(device=x.device, dtype=cdtype) + REWEIGHTED_DELTA
        n_bg, n_fg = counts[0], counts[1]
        m_fg = (n_bg / n_fg).pow(p).clamp(max=1)
        m_bg = (n_fg / n_bg).pow(p).clamp(max=1).clamp(min=REWEIGHTED_BACKGROUND_FLOOR)
        kernel = ReweightedKernel(m_fg, m_bg, q, 3.0 if temperature is None else temperature)
    return reduced_elementwise_loss(kernel, x, t, weight=weight, ignore_index=ignore_index, reduction=reduction)


def binary_seesaw_loss(
    logits: Tensor,
    target: Tensor,
    class_counts: Optional[Tensor],
    *,
    p: float = 0.8,
    q: float = 2.0,
    eps: float = 1e-2,
    variant: str = "paper",
    temperature: Optional[float] = None,
    weight: Optional[Tensor] = None,
    ignore_index: Optional[int] = None,
    reduction: str = "mean",
    batch_counts: Optional[Tensor] = None,
) -> Tensor:
    r"""Binary Seesaw loss for binary segmentation (background dominates the foreground).

    ``variant="paper"`` is the two-class case of :func:`seesaw_loss` with cumulative counts
    :math:`n = [n_{bg}, n_{fg}]`. With ``x`` the foreground logit margin,

    .. math::
        \ell_{fg} = \mathrm{softplus}(-x + \log S_{fg,bg}), \qquad \ell_{bg} = \mathrm{softplus}(x + \log S_{bg,fg}),

    :math:`S` as in Seesaw (mitigation from the counts, compensation from the detached probabilities, no
    gradient). ``p = q = 0`` gives exactly ``binary_cross_entropy_with_logits``.

    ``variant="reweighted"`` is the formulation of the original Binary Seesaw implementation: logits scaled by
    ``temperature`` (default 3.0), per-batch counts (``class_counts`` must be None), per-pixel loss
    :math:`-\log(p_{true} + 10^{-6}) \cdot M \cdot C` with :math:`M_{fg} = \min(1, (N_b/N_f)^p)`,
    :math:`M_{bg} = \max(0.1, \min(1, (N_f/N_b)^p))` and :math:`C = \mathrm{clamp}((p_{other}/p_{true})^q, 1, 5)`,
    whose gradient flows through :math:`C` as in the original; computed in log space so that it stays finite
    at any logit.

    Args:
        logits: one logit per element, or two logits ``(background, foreground)`` on dim 1.
        target: a same-shape binary target (one-logit form) or ``{0, 1}`` class indices (two-logit form).
        class_counts: cumulative ``[background, foreground]`` counts (paper variant); None for "reweighted".
        p: mitigation exponent, ``>= 0``.
        q: compensation exponent, ``>= 0``.
        eps: floor of the true class's probability in the paper variant's compensation, in ``(0, 1]``.
        variant: ``"paper"`` | ``"reweighted"``.
        temperature: logit scale of the reweighted variant (default 3.0); not used by "paper".
        weight: per-element weights broadcastable to the target (constants).
        ignore_index: target value to skip (e.g. 255); None for none.
        reduction: ``"none"`` | ``"mean"`` (over non-ignored elements) | ``"sum"``.
        batch_counts: "reweighted" only: the batch's ``[background, foreground]`` counts, by default counted
            from ``target``; a data-parallel caller passes the whole global batch's counts (summed over the
            processes) so that every shard is weighted as the global batch is.

    Shape:
        - one logit: logits ``(N, 1, *)`` or ``(N, *)``, target of the same shape (any real dtype).
        - two logits: logits ``(N, 2, *)``, target ``(N, *)`` integer, channel 1 = foreground.
        - class_counts, batch_counts: ``(2,)``, ordered ``[background, foreground]``.
        - output: scalar, or the target's shape for ``reduction="none"``.

    Examples:
        >>> logits = torch.randn(2, 1, 32, 32, requires_grad=True)
        >>> mask = (torch.rand(2, 1, 32, 32) < 0.05).float()
        >>> binary_seesaw_loss(logits, mask, torch.tensor([9700, 300])).backward()
    """
    fn = "binary_seesaw_loss"
    check_binary_seesaw_options(fn, p, q, eps, reduction, variant, temperature)
    x, t = check_binary_seesaw_tensors(fn, logits, target, weight, ignore_index)
    if variant == "paper":
        if class_counts is None:
            fail(fn, "class_counts", "a (2,) tensor [background, foreground] for variant='paper'", None,
                 "BinarySeesawLoss keeps cumulative counts for you")
        if batch_counts is not None:
            fail(fn, "batch_counts", "None for variant='paper'", batch_counts,
                 "the paper variant uses the cumulative class_counts")
        check_counts(fn, class_counts, 2)
    else:
        if class_counts is not None:
            fail(fn, "class_counts", "None for variant='reweighted'", class_counts,
                 "the reweighted variant uses each batch's own counts")
        if batch_counts is not None:
            check_counts(fn, batch_counts, 2, arg="batch_counts")
    return _binary_seesaw_unchecked(x, t, class_counts, p=p, q=q, eps=eps, variant=variant,
                                    temperature=temperature, weight=weight, ignore_index=ignore_index,
                                    reduction=reduction, batch_counts=batch_counts)
