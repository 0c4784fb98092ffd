"""The fused, memory-lean engine behind every pointwise and per-position loss.

A loss is written once as a *kernel*: ``loss(...)`` is the plain formula, correct under autograd (it is what
``torch.compile`` fuses, and what the fused path is tested against). A kernel on a hot path may also provide
``evaluate(..., need_grad, scratch)``, the loss together with its hand-derived derivative with respect to the
logits, sharing the transcendentals between the two; without it the engine differentiates ``loss`` with
autograd, one block at a time, so memory stays bounded either way. On CPU the engine runs the kernel over large
tensors in blocks of about :data:`CHUNK_ELEMENTS` elements (:data:`CLASSWISE_BLOCK_FACTOR` times more for the
classwise layout), so temporaries stay cache-sized whatever the input size (on a GPU, in one whole-tensor pass:
:func:`block_elements`):

- forward computes the loss (a scalar sum, or the unreduced map) and, when the logits require a gradient, writes
  the gradient of that block straight into the gradient tensor: the only input-sized allocation of the whole
  forward + backward, allocated in forward instead of backward. Nothing else is kept: no intermediate of the
  formula survives its block.
- backward scales that gradient by ``grad_output`` in place and hands it over, in the logits' own shape (never a
  view, so that autograd can add the gradients of several losses in place). A second backward through a
  retained graph recomputes it block by block from the saved inputs.

Half-precision inputs are read block by block and computed in float32; the gradient comes back in the input's
dtype. While ``torch.compile`` traces (or inside :func:`plain_formula`), the plain formula runs under autograd
instead, so that inductor can fuse it.

For CUDA tensors with Triton installed, both passes run as one fused Triton kernel where :mod:`._triton` has one
for the kernel (the sigmoid and softmax families); everything else stays as described here.
``SEESAW_LOSSES_TRITON=0`` or :func:`~seesaw_losses.functional.use_triton` switches the Triton kernels off, and a
kernel that fails on a device falls back to this path there (:mod:`._triton_guard`).

Two layouts exist: *elementwise* kernels (sigmoid family: one logit per element, a same-shape target) and
*classwise* kernels (softmax family: ``(N, C, *)`` logits with ``(N, *)`` class-index targets, one loss per
position). The same code runs on CUDA tensors. A kernel that a Triton kernel covers says so itself, with a
``triton_form`` method (:mod:`._forms`): the engine and :mod:`._triton` know no loss.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import itertools
import sys
from collections.abc import Iterator
from typing import Callable, List, Optional, Protocol, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from . import _triton_guard
from ._shapes import flatten_from
from ._targets import mask_ignored, valid_mask
from ._reduction import count_valid, reduce_loss
from ._scratch import Scratch

CHUNK_ELEMENTS = 1 << 18
"""Elements per block on CPU: above ATen's parallel grain size (32K), small enough for the temporaries to stay in
cache."""


CLASSWISE_BLOCK_FACTOR = 4
"""Blocks of the classwise layout are this many times larger: ATen's softmax kernels over blocks of a few hundred
rows run at half their speed, and each block also costs a dozen small operations on its targets."""


def block_elements(device: torch.device, classwise: bool = False) -> int:
    """Elements per block on ``device``: :data:`CHUNK_ELEMENTS` on CPU (times :data:`CLASSWISE_BLOCK_FACTOR` for
    the classwise layout); the whole tensor elsewhere, where every op is a kernel launch and cache-sized blocks
    would multiply the launches for nothing."""
    if device.type != "cpu":
        return sys.maxsize
    return CHUNK_ELEMENTS * (CLASSWISE_BLOCK_FACTOR if classwise else 1)

_plain_formula = False


class ElementwiseKernel(Protocol):
    """A pointwise loss ``l(x, t, *operands)`` of a logit ``x`` and a target ``t`` (same shape, computing dtype).

    ``operands`` are the extra per-element tensors given to :func:`elementwise_loss` (e.g. a per-channel
    ``pos_weight``), each a broadcast view over the block (or a 0-dim tensor). Targets at ignored elements are
    replaced by 0 before the kernel sees them.
    """

    def loss(self, x: Tensor, t: Tensor, *operands: Tensor) -> Tensor: ...


class ClasswiseKernel(Protocol):
    """A per-position loss of logits ``z`` of shape ``(B, C, L)`` and class indices ``t`` of shape ``(B, L)``.

    ``loss`` returns ``(B, L)``; an optional ``evaluate`` returns it with the derivative of each position's loss,
    ``(B, C, L)``. Targets at ignored positions are replaced by 0 before the kernel sees them.
    """

    def loss(self, z: Tensor, t: Tensor) -> Tensor: ...


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; everything else is computed in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


@contextlib.contextmanager
def plain_formula(enabled: bool = True) -> Iterator[None]:
    """Run every loss as its plain formula under autograd, as under ``torch.compile`` (for tests and benchmarks)."""
    global _plain_formula
    previous, _plain_formula = _plain_formula, enabled
    try:
        yield
    finally:
        _plain_formula = previous


def _use_plain_formula() -> bool:
    return _plain_formula or torch.compiler.is_compiling()


_triton_on_cpu = False


@contextlib.contextmanager
def triton_kernels_on_cpu(enabled: bool = True) -> Iterator[None]:
    """Send CPU tensors through the Triton kernels too: for tests, with ``TRITON_INTERPRET=1`` set before
    ``triton`` is first imported (Triton's interpreter then runs the kernels on CPU tensors)."""
    global _triton_on_cpu
    previous, _triton_on_cpu = _triton_on_cpu, enabled
    try:
        yield
    finally:
        _triton_on_cpu = previous


@functools.lru_cache(maxsize=None)
def _triton_installed() -> bool:
    return importlib.util.find_spec("triton") is not None


def _triton_pass(kernel, logits: Tensor, target: Tensor, weight: Optional[Tensor], ignore_index: Optional[int],
                 reduce_sum: bool, operands: Optional[Tuple[Tensor, ...]],
                 need_grad: bool) -> Optional[Tuple[Tensor, Optional[Tensor]]]:
    """The pass as one fused Triton kernel (:mod:`._triton`) for CUDA tensors below float64 when Triton is
    installed and not switched off, behind the guard of :mod:`._triton_guard`; None where the engine's own path
    runs."""
    if logits.dtype == torch.float64 or not (logits.is_cuda or _triton_on_cpu) or not _triton_installed() \
            or not _triton_guard.triton_enabled():
        return None

    def launch():
        from . import _triton
        return _triton.fused_pass(kernel, logits, target, weight, ignore_index, reduce_sum, operands, need_grad)
    return _triton_guard.guarded(kernel, logits.device, launch)


def _evaluate(kernel, x: Tensor, t: Tensor, operands: Sequence[Tensor], need_grad: bool,
              scratch: Scratch) -> Tuple[Tensor, Optional[Tensor]]:
    """One block's loss and, if asked, its gradient: the kernel's ``evaluate`` where it has one, else autograd of
    its ``loss`` on this block alone (each element's loss depends on its own logits only)."""
    evaluate = getattr(kernel, "evaluate", None)
    if evaluate is not None:
        return evaluate(x, t, *operands, need_grad=need_grad, scratch=scratch)
    if not need_grad:
        return kernel.loss(x, t, *operands), None
    with torch.enable_grad():
        leaf = x.detach().requires_grad_()
        loss = kernel.loss(leaf, t, *operands)
        grad, = torch.autograd.grad(loss.sum(), leaf)
    return loss.detach(), grad


def _apply(run_pass, logits: Tensor, target: Tensor, weight: Optional[Tensor], grad_output_shape) -> Tensor:
    """The fused autograd Function when a gradient is wanted, else one pass that computes no gradient."""
    if torch.is_grad_enabled() and logits.requires_grad:
        return _FusedLoss.apply(logits, target, weight, run_pass, grad_output_shape)
    return run_pass(logits, target, weight, False)[0]


class _FusedLoss(torch.autograd.Function):
    """Forward runs ``run_pass(logits, target, weight, need_grad) -> (loss, gradient of its sum or None)`` and
    keeps the gradient; backward scales it in place by ``grad_output`` (viewed as ``grad_output_shape``, which
    broadcasts over the logits), or recomputes it for a second backward through a retained graph."""

    @staticmethod
    def forward(ctx, logits: Tensor, target: Tensor, weight: Optional[Tensor], run_pass,
                grad_output_shape) -> Tensor:
        loss, ctx.grad = run_pass(logits, target, weight, ctx.needs_input_grad[0])
        ctx.save_for_backward(logits, target, weight)
        ctx.run_pass, ctx.grad_output_shape = run_pass, grad_output_shape
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: Tensor):
        grad, ctx.grad = ctx.grad, None
        if grad is None:
            _, grad = ctx.run_pass(*ctx.saved_tensors, True)
        scale = grad_output if grad_output.dim() == 0 else grad_output.reshape(ctx.grad_output_shape)
        return grad.mul_(scale), None, None, None, None


def _store_block(loss: Tensor, g: Optional[Tensor], scale: Optional[Tensor], grad_scale: Optional[Tensor],
                 sums: List[Tensor], out_block: Optional[Tensor], grad_block: Optional[Tensor]) -> None:
    """Weight a block's loss and gradient by ``scale`` (its shape, or ``grad_scale`` broadcast for the gradient),
    then add the loss to ``sums`` (``out_block`` None) or write it to ``out_block``, and the gradient to
    ``grad_block``."""
    if scale is not None:
        loss = loss.mul_(scale)
    if out_block is None:
        sums.append(loss.sum())
    else:
        out_block.copy_(loss)
    if grad_block is not None:
        in_place = g.data_ptr() == grad_block.data_ptr() and g.stride() == grad_block.stride()
        if scale is None:
            if not in_place:
                grad_block.copy_(g)
        elif in_place:
            g.mul_(grad_scale)
        else:
            torch.mul(g, grad_scale, out=grad_block)


def _result(sums: List[Tensor], out: Optional[Tensor], grad: Optional[Tensor], dtype: torch.dtype,
            device: torch.device) -> Tuple[Tensor, Optional[Tensor]]:
    """``(loss sum or map, gradient)`` once every block is stored."""
    if out is not None:
        return out, grad
    return (torch.stack(sums).sum() if sums else torch.zeros((), dtype=dtype, device=device)), grad


# ----------------------------------------------------------------------------------------------------------
# Elementwise layout
# ----------------------------------------------------------------------------------------------------------


def _elementwise_blocks(shape, block: Optional[int] = None) -> Iterator[tuple]:
    """Index tuples covering a tensor of ``shape`` in blocks of about ``block`` elements (default
    :data:`CHUNK_ELEMENTS`), each contiguous in memory.

    Trailing dimensions that fit in a block are taken whole; the next one is split; the leading ones are iterated.
    """
    block = CHUNK_ELEMENTS if block is None else block
    split, inner = len(shape), 1
    while split > 0 and inner * shape[split - 1] <= block:
        split -= 1
        inner *= shape[split]
    if split == 0:
        yield ()
        return
    dim = split - 1
    step = max(1, block // inner)
    for outer in itertools.product(*(range(size) for size in shape[:dim])):
        for start in range(0, shape[dim], step):
            yield outer + (slice(start, min(start + step, shape[dim])),)


def _elementwise_pass(kernel: ElementwiseKernel, logits: Tensor, target: Tensor, weight: Optional[Tensor],
                      ignore_index: Optional[int], reduce_sum: bool, operands: Tuple[Tensor, ...],
                      need_grad: bool) -> Tuple[Tensor, Optional[Tensor]]:
    """The loss (sum or map, computing dtype) and, if asked, the gradient of that sum (logits' dtype)."""
    fused = _triton_pass(kernel, logits, target, weight, ignore_index, reduce_sum, operands, need_grad)
    if fused is not None:
        return fused
    cdtype = compute_dtype(logits.dtype)
    shape = logits.shape
    w = None if weight is None else weight.expand(shape)
    operands = tuple(o.to(cdtype) if o.dim() == 0 else o.to(cdtype).expand(shape) for o in operands)
    grad = torch.empty(shape, dtype=logits.dtype, device=logits.device) if need_grad else None
    out = None if reduce_sum else torch.empty(shape, dtype=cdtype, device=logits.device)
    scratch = Scratch(cdtype, logits.device, CHUNK_ELEMENTS)
    sums = []
    for idx in _elementwise_blocks(shape, block_elements(logits.device)):
        x, t_raw = logits[idx], target[idx]
        scratch.next_block(x.shape, None if grad is None else grad[idx])
        x = x if x.dtype == cdtype else scratch().copy_(x)
        t = t_raw if t_raw.dtype == cdtype else scratch().copy_(t_raw)
        scale = None
        if ignore_index is not None:
            scale = valid_mask(t_raw, ignore_index, out=scratch())
            t = torch.mul(t, scale, out=scratch())
        if w is not None:
            scale = w[idx] if scale is None else scale.mul_(w[idx])
        loss, g = _evaluate(kernel, x, t, tuple(o if o.dim() == 0 else o[idx] for o in operands), need_grad,
                            scratch)
        _store_block(loss, g, scale, scale, sums, None if out is None else out[idx],
                     None if grad is None else grad[idx])
    return _result(sums, out, grad, cdtype, logits.device)


def elementwise_loss(kernel: ElementwiseKernel, logits: Tensor, target: Tensor, *, weight: Optional[Tensor],
                     ignore_index: Optional[int], reduce_sum: bool, operands: Sequence[Tensor] = ()) -> Tensor:
    """Per-element loss map (``reduce_sum=False``, in the computing dtype) or its sum over valid elements.

    ``weight`` (broadcastable to the logits, treated as a constant) multiplies each element's loss;
    ``operands`` are extra tensors broadcastable to the logits, handed to the kernel block by block (constants).
    """
    if _use_plain_formula():
        cdtype = compute_dtype(logits.dtype)
        t, valid = mask_ignored(target.to(cdtype), ignore_index)
        loss = kernel.loss(logits.to(cdtype), t, *(o.to(cdtype) for o in operands))
        if weight is not None:
            loss = loss * weight
        if valid is not None:
            loss = loss.masked_fill(~valid, 0)
        return loss.sum() if reduce_sum else loss
    operands = tuple(operands)

    def run_pass(logits: Tensor, target: Tensor, weight: Optional[Tensor], need_grad: bool):
        return _elementwise_pass(kernel, logits, target, weight, ignore_index, reduce_sum, operands, need_grad)

    return _apply(run_pass, logits, target, weight, logits.shape)


def reduced_elementwise_loss(kernel: ElementwiseKernel, logits: Tensor, target: Tensor, *, weight: Optional[Tensor],
                             ignore_index: Optional[int], reduction: str, operands: Sequence[Tensor] = (),
                             denominator: Optional[Callable[[], Union[Tensor, int]]] = None) -> Tensor:
    """:func:`elementwise_loss` reduced by :func:`~._reduction.reduce_loss` (``weight`` taken in the computing
    dtype): ``"mean"`` divides by ``denominator()``, by default the number of non-ignored elements."""
    w = None if weight is None else weight.to(compute_dtype(logits.dtype))

    def run(reduce_sum: bool) -> Tensor:
        return elementwise_loss(kernel, logits, target, weight=w, ignore_index=ignore_index, reduce_sum=reduce_sum,
                                operands=operands)

    return reduce_loss(run, reduction, denominator or (lambda: count_valid(target, ignore_index)))


# ----------------------------------------------------------------------------------------------------------
# Classwise layout
# ----------------------------------------------------------------------------------------------------------


def _blocks(n: int, c: int, s: int, block: Optional[int] = None) -> Iterator[Tuple[slice, slice]]:
    """Slices ``(batch_slice, position_slice)`` covering an ``(N, C, S)`` tensor in blocks of about ``block``
    elements (default :data:`CHUNK_ELEMENTS`); a tensor that fits is one block."""
    block = CHUNK_ELEMENTS if block is None else block
    if n * c * s <= block:
        yield slice(0, n), slice(0, s)
        return
    length = max(1, block // max(c, 1))
    if s == 1:
        for b in range(0, n, length):
            yield slice(b, min(b + length, n)), slice(0, 1)
    else:
        for b in range(n):
            for p in range(0, s, length):
                yield slice(b, b + 1), slice(p, min(p + length, s))


def _classwise_pass(kernel: ClasswiseKernel, logits: Tensor, target: Tensor, weight: Optional[Tensor],
                    ignore_index: Optional[int], reduce_sum: bool,
                    need_grad: bool) -> Tuple[Tensor, Optional[Tensor]]:
    """The loss (sum, or the ``(N, S)`` map) and, if asked, the gradient of that sum, ``(N, C, S)``."""
    fused = _triton_pass(kernel, logits, target, weight, ignore_index, reduce_sum, None, need_grad)
    if fused is not None:
        return fused
    cdtype = compute_dtype(logits.dtype)
    n, c = logits.shape[0], logits.shape[1]
    z = flatten_from(logits, 2)
    t_all = flatten_from(target, 1)
    # the gradient is allocated in the logits' shape (a view returned from backward would keep autograd from
    # summing the gradients of several losses in place) and written through its (N, C, S) view
    grad_full = torch.empty(logits.shape, dtype=logits.dtype, device=logits.device) if need_grad else None
    grad = None if grad_full is None else grad_full.view(z.shape)
    out = None if reduce_sum else torch.empty(t_all.shape, dtype=cdtype, device=logits.device)
    scratch = Scratch(cdtype, logits.device, CHUNK_ELEMENTS)
    sums = []
    for bs, ps in _blocks(n, c, z.shape[2], block_elements(logits.device, classwise=True)):
        block = z[bs, :, ps]
        scratch.next_block(block.shape, None if grad is None else grad[bs, :, ps])
        block = block if block.dtype == cdtype else scratch().copy_(block)
        t = t_all[bs, ps]
        scale = None if weight is None else weight[bs, ps]
        t, valid = mask_ignored(t, ignore_index)
        if valid is not None:
            scale = valid.to(cdtype) if scale is None else scale * valid
        loss, g = _evaluate(kernel, block, t, (), need_grad, scratch)
        _store_block(loss, g, scale, None if scale is None else scale.unsqueeze(1), sums,
                     None if out is None else out[bs, ps], None if grad is None else grad[bs, :, ps])
    return _result(sums, out, grad_full, cdtype, logits.device)


def classwise_loss(kernel: ClasswiseKernel, logits: Tensor, target: Tensor, *, weight: Optional[Tensor],
                   ignore_index: Optional[int], reduce_sum: bool) -> Tensor:
    """Per-position loss of ``(N, C, *)`` logits: the ``(N, *)`` map (computing dtype) or its sum.

    ``weight`` is a per-position weight already shaped ``(N, prod(*))`` in the computing dtype, or None.
    """
    if _use_plain_formula():
        t, valid = mask_ignored(flatten_from(target, 1), ignore_index)
        loss = kernel.loss(flatten_from(logits, 2).to(compute_dtype(logits.dtype)), t)
        if weight is not None:
            loss = loss * weight
        if valid is not None:
            loss = loss.masked_fill(~valid, 0)
        return loss.sum() if reduce_sum else loss.view(target.shape)

    def run_pass(logits: Tensor, target: Tensor, weight: Optional[Tensor], need_grad: bool):
        loss, grad = _classwise_pass(kernel, logits, target, weight, ignore_index, reduce_sum, need_grad)
        return (loss if reduce_sum else loss.view(target.shape)), grad

    return _apply(run_pass, logits, target, weight, (logits.shape[0], 1) + tuple(logits.shape[2:]))
