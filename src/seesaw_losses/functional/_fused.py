"""The fused, memory-lean engine behind every pointwise and per-position loss.

A loss is written once as a *kernel*: ``loss(...)`` is the plain formula, correct under autograd (it is what
``torch.compile`` fuses, and what the fused path is tested against), and ``grad(...)`` is its analytic
derivative with respect to the logits. The engine runs the kernel over large tensors in chunks of about
:data:`CHUNK_ELEMENTS` elements, so temporaries stay cache-sized whatever the input size:

- forward computes only the loss (a scalar sum, or the unreduced map) and saves the *inputs*, never the
  intermediates of the formula;
- backward recomputes each chunk's analytic gradient and writes it straight into the gradient tensor, which is
  the only input-sized allocation of the whole forward + backward.

Half-precision inputs are read chunk by chunk and computed in float32; the gradient comes back in the input's
dtype. While ``torch.compile`` traces, the plain formula is used instead so that inductor can fuse it.

Two layouts exist: *elementwise* kernels (sigmoid family: one logit per element, a same-shape target) and
*classwise* kernels (softmax family: ``(N, C, *)`` logits with ``(N, *)`` class-index targets, one loss per
position).
"""

from __future__ import annotations

from typing import Optional, Protocol, Sequence

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

CHUNK_ELEMENTS = 1 << 18
"""Elements per chunk: above ATen's parallel grain size (32K), small enough to stay in cache."""


class ElementwiseKernel(Protocol):
    """A pointwise loss ``l(x, t, *operands)`` of a logit ``x`` and a target ``t`` (same shape, computing dtype).

    ``operands`` are the extra per-element tensors given to :func:`elementwise_loss` (e.g. a per-channel
    ``pos_weight``), each already broadcast to the chunk (or a 0-dim tensor).
    """

    def loss(self, x: Tensor, t: Tensor, *operands: Tensor) -> Tensor: ...

    def grad(self, x: Tensor, t: Tensor, *operands: Tensor) -> Tensor: ...


class ClasswiseKernel(Protocol):
    """A per-position loss of logits ``z`` of shape ``(B, C, L)`` and class indices ``t`` of shape ``(B, L)``.

    ``loss`` returns ``(B, L)``; ``grad`` returns the derivative of each position's loss, ``(B, C, L)``.
    Targets at ignored positions are replaced by 0 before the kernel sees them.
    """

    def loss(self, z: Tensor, t: Tensor) -> Tensor: ...

    def grad(self, z: Tensor, t: Tensor) -> Tensor: ...


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; everything else is computed in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _valid_mask(t: Tensor, ignore_index: Optional[int]) -> Optional[Tensor]:
    return None if ignore_index is None else t != ignore_index


def broadcast_chunk(operand: Tensor, shape: Sequence[int], start: int, end: int) -> Tensor:
    """Elements ``[start, end)`` of ``operand`` broadcast to ``shape`` and flattened, without materialising the
    broadcast (a per-channel ``(C, 1, 1)`` tensor stays ``C`` elements; only the chunk is gathered).

    A one-element operand is returned as a 0-dim tensor, which broadcasts against any chunk.
    """
    if operand.numel() == 1:
        return operand.reshape(())
    base = operand.contiguous()
    expanded = base.expand(tuple(shape))
    if expanded.is_contiguous():
        return expanded.reshape(-1)[start:end]
    index = torch.arange(start, end, device=operand.device)
    offset = torch.zeros_like(index)
    inner = 1
    for size, stride in zip(reversed(expanded.shape), reversed(expanded.stride())):
        if stride and size > 1:
            offset += (index // inner) % size * stride
        inner *= size
    return base.reshape(-1)[offset]


# ----------------------------------------------------------------------------------------------------------
# Elementwise layout
# ----------------------------------------------------------------------------------------------------------


def _elementwise_chunk(kernel: ElementwiseKernel, x: Tensor, t: Tensor, w: Optional[Tensor],
                       ignore_index: Optional[int], cdtype: torch.dtype, want_grad: bool,
                       operands: Sequence[Tensor] = ()) -> Tensor:
    valid = _valid_mask(t, ignore_index)
    tc = t.to(cdtype)
    if valid is not None:
        tc = tc.masked_fill(~valid, 0)
    xc = x.to(cdtype)
    out = kernel.grad(xc, tc, *operands) if want_grad else kernel.loss(xc, tc, *operands)
    if w is not None:
        out = out.mul_(w)
    if valid is not None:
        out = out.masked_fill_(~valid, 0)
    return out


class _ElementwiseLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: Tensor, target: Tensor, weight: Optional[Tensor], kernel: ElementwiseKernel,
                ignore_index: Optional[int], reduce_sum: bool, operands: tuple) -> Tensor:
        cdtype = compute_dtype(logits.dtype)
        x, t = logits.reshape(-1), target.reshape(-1)
        operands = tuple(o.to(cdtype) for o in operands)
        w = None if weight is None else weight.expand(logits.shape).reshape(-1).to(cdtype)
        n = x.numel()
        chunks = range(0, n, CHUNK_ELEMENTS)
        if reduce_sum:
            partial = torch.zeros(len(chunks), dtype=cdtype, device=logits.device)
        else:
            out = torch.empty(n, dtype=cdtype, device=logits.device)
        for i, s in enumerate(chunks):
            e = min(s + CHUNK_ELEMENTS, n)
            loss = _elementwise_chunk(kernel, x[s:e], t[s:e], None if w is None else w[s:e], ignore_index,
                                      cdtype, False, [broadcast_chunk(o, logits.shape, s, e) for o in operands])
            if reduce_sum:
                partial[i] = loss.sum()
            else:
                out[s:e] = loss
        ctx.save_for_backward(logits, target, w)
        ctx.kernel, ctx.ignore_index, ctx.reduce_sum, ctx.operands = kernel, ignore_index, reduce_sum, operands
        return partial.sum() if reduce_sum else out.view(logits.shape)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: Tensor):
        logits, target, w = ctx.saved_tensors
        cdtype = compute_dtype(logits.dtype)
        x, t = logits.reshape(-1), target.reshape(-1)
        go = grad_output.to(cdtype) if ctx.reduce_sum else grad_output.reshape(-1)
        grad = torch.empty(logits.shape, dtype=logits.dtype, device=logits.device)
        g_flat = grad.view(-1)
        n = x.numel()
        for s in range(0, n, CHUNK_ELEMENTS):
            e = min(s + CHUNK_ELEMENTS, n)
            g = _elementwise_chunk(ctx.kernel, x[s:e], t[s:e], None if w is None else w[s:e], ctx.ignore_index,
                                   cdtype, True, [broadcast_chunk(o, logits.shape, s, e) for o in ctx.operands])
            g.mul_(go if ctx.reduce_sum else go[s:e])
            g_flat[s:e] = g
        return grad, None, None, None, None, None, None


def elementwise_loss(kernel: ElementwiseKernel, logits: Tensor, target: Tensor, *, weight: Optional[Tensor],
                     ignore_index: Optional[int], reduce_sum: bool, operands: Sequence[Tensor] = ()) -> Tensor:
    """Per-element loss map (``reduce_sum=False``, in the computing dtype) or its sum over valid elements.

    ``operands``: extra tensors broadcastable to the logits, passed to the kernel chunk by chunk (constants).
    """
    if torch.compiler.is_compiling():
        cdtype = compute_dtype(logits.dtype)
        valid = _valid_mask(target, ignore_index)
        t = target.to(cdtype)
        if valid is not None:
            t = t.masked_fill(~valid, 0)
        loss = kernel.loss(logits.to(cdtype), t, *(o.to(cdtype) for o in operands))
        if weight is not None:
            loss = loss * weight
        if valid is not None:
            loss = loss.masked_fill(~valid, 0)
        return loss.sum() if reduce_sum else loss
    return _ElementwiseLoss.apply(logits, target, weight, kernel, ignore_index, reduce_sum, tuple(operands))


# ----------------------------------------------------------------------------------------------------------
# Classwise layout
# ----------------------------------------------------------------------------------------------------------


def _blocks(n: int, c: int, s: int):
    """Slices ``(batch_slice, position_slice)`` covering an ``(N, C, S)`` tensor in chunks of ~CHUNK elements."""
    if s == 1:
        rows = max(1, CHUNK_ELEMENTS // max(c, 1))
        for b in range(0, n, rows):
            yield slice(b, min(b + rows, n)), slice(0, 1)
    else:
        length = max(1, CHUNK_ELEMENTS // max(c, 1))
        for b in range(n):
            for p in range(0, s, length):
                yield slice(b, b + 1), slice(p, min(p + length, s))


def _classwise_chunk(kernel: ClasswiseKernel, z: Tensor, t: Tensor, w: Optional[Tensor],
                     ignore_index: Optional[int], cdtype: torch.dtype, want_grad: bool) -> Tensor:
    valid = _valid_mask(t, ignore_index)
    if valid is not None:
        t = t.masked_fill(~valid, 0)
    zc = z.to(cdtype)
    if want_grad:
        out = kernel.grad(zc, t)
        scale = w
        if valid is not None:
            scale = valid.to(cdtype) if scale is None else scale * valid
        if scale is not None:
            out = out.mul_(scale.unsqueeze(1))
        return out
    out = kernel.loss(zc, t)
    if w is not None:
        out = out.mul_(w)
    if valid is not None:
        out = out.masked_fill_(~valid, 0)
    return out


class _ClasswiseLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: Tensor, target: Tensor, weight: Optional[Tensor], kernel: ClasswiseKernel,
                ignore_index: Optional[int], reduce_sum: bool) -> Tensor:
        cdtype = compute_dtype(logits.dtype)
        n, c = logits.shape[0], logits.shape[1]
        z = logits.reshape(n, c, -1)
        t = target.reshape(n, -1)
        blocks = list(_blocks(n, c, z.shape[2]))
        if reduce_sum:
            partial = torch.zeros(len(blocks), dtype=cdtype, device=logits.device)
        else:
            out = torch.empty(t.shape, dtype=cdtype, device=logits.device)
        for i, (bs, ps) in enumerate(blocks):
            loss = _classwise_chunk(kernel, z[bs, :, ps], t[bs, ps], None if weight is None else weight[bs, ps],
                                    ignore_index, cdtype, want_grad=False)
            if reduce_sum:
                partial[i] = loss.sum()
            else:
                out[bs, ps] = loss
        ctx.save_for_backward(logits, target, weight)
        ctx.kernel, ctx.ignore_index, ctx.reduce_sum = kernel, ignore_index, reduce_sum
        return partial.sum() if reduce_sum else out.view(target.shape)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: Tensor):
        logits, target, weight = ctx.saved_tensors
        cdtype = compute_dtype(logits.dtype)
        n, c = logits.shape[0], logits.shape[1]
        z = logits.reshape(n, c, -1)
        t = target.reshape(n, -1)
        go = grad_output.to(cdtype) if ctx.reduce_sum else grad_output.reshape(n, -1)
        grad = torch.empty(z.shape, dtype=logits.dtype, device=logits.device)
        for bs, ps in _blocks(n, c, z.shape[2]):
            g = _classwise_chunk(ctx.kernel, z[bs, :, ps], t[bs, ps], None if weight is None else weight[bs, ps],
                                 ctx.ignore_index, cdtype, want_grad=True)
            g.mul_(go if ctx.reduce_sum else go[bs, ps].unsqueeze(1))
            grad[bs, :, ps] = g
        return grad.view(logits.shape), None, None, None, None, None


def classwise_loss(kernel: ClasswiseKernel, logits: Tensor, target: Tensor, *, weight: Optional[Tensor],
                   ignore_index: Optional[int], reduce_sum: bool) -> Tensor:
    """Per-position loss of ``(N, C, *)`` logits: the ``(N, *)`` map (computing dtype) or its sum.

    ``weight`` is a per-position weight already shaped ``(N, prod(*))`` in the computing dtype, or None.
    """
    if torch.compiler.is_compiling():
        n, c = logits.shape[0], logits.shape[1]
        t = target.reshape(n, -1)
        valid = _valid_mask(t, ignore_index)
        if valid is not None:
            t = t.masked_fill(~valid, 0)
        loss = kernel.loss(logits.reshape(n, c, -1).to(compute_dtype(logits.dtype)), t)
        if weight is not None:
            loss = loss * weight
        if valid is not None:
            loss = loss.masked_fill(~valid, 0)
        return loss.sum() if reduce_sum else loss.view(target.shape)
    return _ClasswiseLoss.apply(logits, target, weight, kernel, ignore_index, reduce_sum)
