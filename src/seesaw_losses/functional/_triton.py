"""Fused Triton kernels for the engine's two layouts (optional: ``pip install 'seesaw-losses[triton]'``).

One kernel launch reads the logits once and writes the loss (per-program partial sums, or the unreduced map) and
the gradient of its sum: the gradient is the only logits-sized allocation, and the backward only scales it (the
engine's :class:`~seesaw_losses.functional._fused._FusedLoss`). Partial sums are added in a fixed order by a
second, single-program kernel: no atomics, the same bits on every run.

- :func:`sigmoid_kernel`: one logit per element; BCE (scalar ``pos_weight``), sigmoid focal (``alpha`` a number
  or one per class of dimension 1),
  Binary Seesaw (paper variant) and the asymmetric loss, each with an optional per-element weight and
  ``ignore_index``.
- :func:`softmax_kernel`: ``(N, C, S)`` logits with ``(N, S)`` class indices, every class of a position in one
  tile; cross-entropy with per-class logit offsets, margins and a scale (logit adjustment, Balanced Softmax,
  LDAM), softmax focal and Seesaw, each with an optional per-position weight and
  ``ignore_index``.

The engine calls :func:`fused_pass` for CUDA tensors when Triton is importable; with ``TRITON_INTERPRET=1`` set
before Triton is imported, the same kernels run on CPU tensors (how the tests check them), under
:func:`seesaw_losses.functional._fused.triton_kernels_on_cpu`. Each kernel of the engine declares the form it
runs as (:mod:`._forms`); one that declares none (or none for its options, such as a per-channel ``pos_weight``)
keeps the engine's path. This module knows no loss.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import torch
import triton
import triton.language as tl
from torch import Tensor

from ._forms import SigmoidForm, SoftmaxForm

ELEMENT_BLOCK = 1024
TILE_ELEMENTS = 4096
"""Elements of a softmax tile (classes x positions); the classes of a position always share a tile."""


@triton.jit
def _softplus_sigmoid(v):
    """``softplus(v)`` and ``sigmoid(v)`` from one ``exp`` and one ``log`` (plus one ``exp``), never overflowing."""
    softplus = tl.maximum(v, 0.0) + tl.log(1.0 + tl.exp(-tl.abs(v)))
    return softplus, tl.exp(v - softplus)


@triton.jit
def _power(base, exponent):
    """``base ** exponent`` for ``base >= 0`` (0 at 0 for a positive exponent, 1 for exponent 0)."""
    positive = tl.exp(exponent * tl.log(tl.maximum(base, 1e-38)))
    return tl.where(exponent == 0.0, 1.0, tl.where(base > 0.0, positive, 0.0))


@triton.jit
def _one_minus_exp(x):
    """``1 - exp(x)`` for ``x <= 0``, accurate near 0 (a series there) where ``1 - exp`` would cancel."""
    series = -x * (1.0 + x * (0.5 + x * (1.0 / 6.0 + x * (1.0 / 24.0))))
    return tl.where(x > -1e-2, series, 1.0 - tl.exp(x))


@triton.jit
def _target_and_scale(t, w_ptr, offsets, inside, ignore_value, HAS_IGNORE: tl.constexpr, HAS_WEIGHT: tl.constexpr):
    """The target with ignored entries replaced by 0, and each entry's loss scale: 0 outside the tensor or where
    ignored, else its weight (or 1)."""
    scale = tl.where(inside, 1.0, 0.0)
    if HAS_IGNORE:
        valid = t != ignore_value
        scale = tl.where(valid, scale, 0.0)
        t = tl.where(valid, t, 0)
    if HAS_WEIGHT:
        scale = scale * tl.load(w_ptr + offsets, mask=inside, other=0.0).to(tl.float32)
    return t, scale


@triton.jit
def sigmoid_kernel(x_ptr, t_ptr, w_ptr, params_ptr, class_ptr, out_ptr, grad_ptr, n, ignore_value, inner, classes,
                   FAMILY: tl.constexpr, HAS_IGNORE: tl.constexpr, HAS_WEIGHT: tl.constexpr,
                   HAS_CLASS_VALUES: tl.constexpr, REDUCE: tl.constexpr, NEED_GRAD: tl.constexpr,
                   BLOCK: tl.constexpr):
    """Loss and gradient of ``BLOCK`` elements; the loss summed into ``out_ptr[program]`` (``REDUCE``) or stored
    per element. ``class_ptr`` holds one value per class of dimension 1 (``classes`` of them, each spanning
    ``inner`` consecutive elements) when ``HAS_CLASS_VALUES``."""
    pid = tl.program_id(0)
    offsets = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    inside = offsets < n
    x = tl.load(x_ptr + offsets, mask=inside, other=0.0).to(tl.float32)
    t, scale = _target_and_scale(tl.load(t_ptr + offsets, mask=inside, other=0.0).to(tl.float32), w_ptr, offsets,
                                 inside, ignore_value, HAS_IGNORE, HAS_WEIGHT)
    a = tl.load(params_ptr)
    b = tl.load(params_ptr + 1)
    sign = 1.0 - 2.0 * t
    if FAMILY == 0:      # BCE: k softplus(x) - pw t x with k = 1 + (pw - 1) t
        softplus, p = _softplus_sigmoid(x)
        k = 1.0 + (a - 1.0) * t
        loss = k * softplus - a * t * x
        grad = k * p - a * t
    elif FAMILY == 1:    # focal: a_t m^gamma BCE with m = 1 - p_t = t + p (1 - 2t)
        softplus, p = _softplus_sigmoid(x)
        ce = softplus - t * x
        m = t + p * sign
        if HAS_CLASS_VALUES:
            a = tl.load(class_ptr + (offsets // inner) % classes, mask=inside, other=0.0).to(tl.float32)
        a_t = tl.where(a < 0.0, 1.0, (1.0 - a) + (2.0 * a - 1.0) * t)
        loss = a_t * _power(m, b) * ce
        grad = a_t * ((p - t) * _power(m, b) + b * _power(m, b - 1.0) * ce * p * (1.0 - p) * sign)
    elif FAMILY == 3:    # asymmetric: t L+ + (1 - t) L-, see AsymmetricKernel for the gradient
        clip = tl.load(params_ptr + 2)
        eps = tl.load(params_ptr + 3)
        softplus, p = _softplus_sigmoid(x)
        q = tl.exp(-softplus)                    # sigmoid(-x), never 1 - p
        r = tl.minimum(q + clip, 1.0)            # 1 - p_m
        p_m = tl.maximum(p - clip, 0.0)
        log_p = tl.log(tl.maximum(p, eps))
        log_r = tl.log(tl.maximum(r, eps))
        w_pos = _power(q, a)
        w_neg = _power(p_m, b)
        loss = -(t * w_pos * log_p + (1.0 - t) * w_neg * log_r)
        g_pos = w_pos * (a * p * log_p - tl.where(p > eps, q, 0.0))
        g_neg = p * q * (tl.where(r > eps, w_neg / r, 0.0) - b * _power(p_m, b - 1.0) * log_r)
        grad = t * g_pos + (1.0 - t) * tl.where(p > clip, g_neg, 0.0)
    else:                # Binary Seesaw: softplus(margin), margin = v + log S with v = x (1 - 2t)
        q = tl.load(params_ptr + 2)
        log_eps = tl.load(params_ptr + 3)
        v = x * sign
        margin = v + t * a + b
        softplus_v, _ = _softplus_sigmoid(v)
        margin += q * tl.maximum(v - tl.maximum(softplus_v + log_eps, 0.0), 0.0)
        loss, s = _softplus_sigmoid(margin)
        grad = s * sign
    loss = loss * scale
    if REDUCE:
        tl.store(out_ptr + pid, tl.sum(loss, axis=0))
    else:
        tl.store(out_ptr + offsets, loss, mask=inside)
    if NEED_GRAD:
        tl.store(grad_ptr + offsets, (grad * scale).to(grad_ptr.dtype.element_ty), mask=inside)


@triton.jit
def softmax_kernel(z_ptr, t_ptr, w_ptr, class_ptr, margin_ptr, out_ptr, grad_ptr, positions, classes, length,
                   ignore_value, gamma, p, q, log_eps, logit_scale,
                   FAMILY: tl.constexpr, HAS_CLASS_VALUES: tl.constexpr, HAS_MARGIN: tl.constexpr,
                   HAS_IGNORE: tl.constexpr, HAS_WEIGHT: tl.constexpr, REDUCE: tl.constexpr,
                   NEED_GRAD: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr):
    """Loss and gradient of ``BLOCK_P`` positions of ``(N, C, S)`` logits (``S = length``), all classes at once."""
    pid = tl.program_id(0)
    position = pid.to(tl.int64) * BLOCK_P + tl.arange(0, BLOCK_P)
    cls = tl.arange(0, BLOCK_C)
    inside = position < positions
    image, spot = position // length, position % length
    address = (image * classes * length + spot)[None, :] + (cls.to(tl.int64) * length)[:, None]
    real = (cls < classes)[:, None]
    tile = real & inside[None, :]
    z = tl.load(z_ptr + address, mask=tile, other=0.0).to(tl.float32)
    t, scale = _target_and_scale(tl.load(t_ptr + position, mask=inside, other=0).to(tl.int64), w_ptr, position,
                                 inside, ignore_value, HAS_IGNORE, HAS_WEIGHT)
    is_target = cls[:, None] == t[None, :]
    if HAS_CLASS_VALUES:
        class_values = tl.load(class_ptr + cls, mask=cls < classes, other=0.0).to(tl.float32)
    if FAMILY == 0:      # cross-entropy of scale (z + offsets - margin_t onehot(t)): logit adjustment, LDAM
        if HAS_CLASS_VALUES:
            z = z + class_values[:, None]
        if HAS_MARGIN:
            margins = tl.load(margin_ptr + cls, mask=cls < classes, other=0.0).to(tl.float32)
            z = z - tl.where(is_target, margins[:, None], 0.0)
        z = z * logit_scale
    z = tl.where(real, z, -float("inf"))    # padding classes (positions past the end read zeros)
    z_max = tl.max(z, axis=0)
    e = tl.exp(z - z_max[None, :])
    total = tl.sum(e, axis=0)
    z_target = tl.sum(tl.where(is_target, z, 0.0), axis=0)
    log_p_target = z_target - z_max - tl.log(total)
    if FAMILY == 1:      # softmax focal: -m^gamma log p_t, d/dz_j = K (delta_tj - p_j)
        m = _one_minus_exp(log_p_target)
        modulation = _power(m, gamma)
        loss = -modulation * log_p_target
        k = gamma * _power(m, gamma - 1.0) * tl.exp(log_p_target) * log_p_target - modulation
        grad = k[None, :] * (tl.where(is_target, 1.0, 0.0) - e / total[None, :])
    else:
        if FAMILY == 2:  # Seesaw: z_j + log S_tj, S from the counts and the detached scores
            log_s = z - z_max[None, :] - tl.log(total)[None, :]
            log_s_target = tl.maximum(log_p_target, log_eps)
            adjust = q * tl.maximum(log_s - log_s_target[None, :], 0.0)
            if HAS_CLASS_VALUES:
                log_n_target = tl.sum(tl.where(is_target, class_values[:, None], 0.0), axis=0)
                adjust += p * tl.minimum(class_values[:, None] - log_n_target[None, :], 0.0)
            # shifted by the largest logit first: log S then adds to logits of its own size at full precision
            z = tl.where(real, (z - z_max[None, :]) + adjust, -float("inf"))
            z_target = z_target - z_max
            z_max = tl.max(z, axis=0)
            e = tl.exp(z - z_max[None, :])
            total = tl.sum(e, axis=0)
        loss = z_max + tl.log(total) - z_target
        grad = e / total[None, :] - tl.where(is_target, 1.0, 0.0)
        if FAMILY == 0:
            grad = grad * logit_scale
    loss = tl.where(inside, loss * scale, 0.0)
    if REDUCE:
        tl.store(out_ptr + pid, tl.sum(loss, axis=0))
    else:
        tl.store(out_ptr + position, loss, mask=inside)
    if NEED_GRAD:
        tl.store(grad_ptr + address, (grad * scale[None, :]).to(grad_ptr.dtype.element_ty), mask=tile)


@triton.jit
def _sum_in_order(partials_ptr, out_ptr, n, BLOCK: tl.constexpr):
    """One program adding ``n`` partial sums block after block: a fixed order, hence the same result every run."""
    acc = tl.zeros([BLOCK], dtype=tl.float32)
    for start in range(0, n, BLOCK):
        offsets = start + tl.arange(0, BLOCK)
        acc += tl.load(partials_ptr + offsets, mask=offsets < n, other=0.0)
    tl.store(out_ptr, tl.sum(acc, axis=0))


def _total(partials: Tensor) -> Tensor:
    out = torch.empty((), dtype=torch.float32, device=partials.device)
    _sum_in_order[(1,)](partials, out, partials.numel(), BLOCK=1024)
    return out


def _scalar_params(device: torch.device, *values) -> Tensor:
    """Four float32 numbers on ``device`` from floats or 0-dim tensors, without a host sync."""
    values = list(values) + [0.0] * (4 - len(values))
    return torch.stack([torch.as_tensor(v, dtype=torch.float32, device=device).reshape(()) for v in values])


def _loss_buffers(n: int, programs: int, reduce_sum: bool, device: torch.device) -> Tensor:
    return torch.empty(programs if reduce_sum else n, dtype=torch.float32, device=device)


def sigmoid_pass(form: SigmoidForm, logits: Tensor, target: Tensor, weight: Optional[Tensor],
                 ignore_index: Optional[int], reduce_sum: bool, need_grad: bool) -> Tuple[Tensor, Optional[Tensor]]:
    """The engine's elementwise pass in one launch: ``(loss sum or map, gradient of the sum or None)``."""
    x, t = logits.contiguous(), target.contiguous()
    n = x.numel()
    programs = max(1, triton.cdiv(n, ELEMENT_BLOCK))
    out = _loss_buffers(n, programs, reduce_sum, x.device)
    grad = torch.empty_like(x) if need_grad else None
    w = None if weight is None else weight.expand(x.shape).contiguous()
    values = None if form.class_values is None else form.class_values.to(device=x.device, dtype=torch.float32)
    classes = 1 if values is None else values.numel()
    inner = max(1, n // max(1, x.shape[0] * classes))
    sigmoid_kernel[(programs,)](
        x, t, x if w is None else w, _scalar_params(x.device, *form.params), x if values is None else values, out,
        x if grad is None else grad, n, 0 if ignore_index is None else ignore_index, inner, classes,
        FAMILY=form.family, HAS_IGNORE=ignore_index is not None, HAS_WEIGHT=w is not None,
        HAS_CLASS_VALUES=values is not None, REDUCE=reduce_sum, NEED_GRAD=need_grad, BLOCK=ELEMENT_BLOCK)
    return (_total(out) if reduce_sum else out.view(x.shape)), grad


def softmax_pass(form: SoftmaxForm, logits: Tensor, target: Tensor, weight: Optional[Tensor],
                 ignore_index: Optional[int], reduce_sum: bool, need_grad: bool) -> Tuple[Tensor, Optional[Tensor]]:
    """The engine's classwise pass in one launch: ``(loss sum or (N, S) map, gradient of the sum or None)``."""
    n, c = logits.shape[0], logits.shape[1]
    z = logits.reshape(n, c, -1).contiguous()
    length = z.shape[2]
    t = target.reshape(-1).contiguous()
    positions = n * length
    block_c = triton.next_power_of_2(c)
    block_p = max(1, TILE_ELEMENTS // block_c)
    programs = max(1, triton.cdiv(positions, block_p))
    out = _loss_buffers(positions, programs, reduce_sum, z.device)
    # in the logits' own shape, not a view: autograd then sums several losses' gradients in place
    grad = torch.empty(logits.shape, dtype=z.dtype, device=z.device) if need_grad else None
    w = None if weight is None else weight.reshape(-1).contiguous()
    values = None if form.class_values is None else form.class_values.to(device=z.device, dtype=torch.float32)
    margins = None if form.margins is None else form.margins.to(device=z.device, dtype=torch.float32)
    softmax_kernel[(programs,)](
        z, t, z if w is None else w, z if values is None else values, z if margins is None else margins, out,
        z if grad is None else grad, positions, c, length, -1 if ignore_index is None else ignore_index,
        float(form.gamma), float(form.p), float(form.q), math.log(form.eps), float(form.scale),
        FAMILY=form.family, HAS_CLASS_VALUES=values is not None, HAS_MARGIN=margins is not None,
        HAS_IGNORE=ignore_index is not None, HAS_WEIGHT=w is not None, REDUCE=reduce_sum, NEED_GRAD=need_grad,
        BLOCK_C=block_c, BLOCK_P=block_p)
    return (_total(out) if reduce_sum else out.view(n, length)), grad


def fused_pass(kernel, logits: Tensor, target: Tensor, weight: Optional[Tensor], ignore_index: Optional[int],
               reduce_sum: bool, operands: Optional[Sequence[Tensor]],
               need_grad: bool) -> Optional[Tuple[Tensor, Optional[Tensor]]]:
    """The engine's pass through the Triton kernel of the form ``kernel`` declares (``operands`` None: the
    classwise layout), or None where it declares none for these options."""
    triton_form = getattr(kernel, "triton_form", None)
    form = None if triton_form is None else triton_form(*(operands or ()))
    if form is None:
        return None
    run = softmax_pass if isinstance(form, SoftmaxForm) else sigmoid_pass
    return run(form, logits, target, weight, ignore_index, reduce_sum, need_grad)
