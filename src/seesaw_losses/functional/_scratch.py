"""Block-sized temporaries that the engine's kernels reuse from block to block."""

from __future__ import annotations

import math
from typing import List, Optional, Tuple

import torch
from torch import Tensor

class Scratch:
    """Temporaries for the kernels, reused from block to block.

    Fresh memory costs more than the arithmetic done on it (the allocator hands large freed blocks back to the
    OS, and every page is faulted in again on the next use), so kernels take their block-sized temporaries from
    here and fill them with ``out=`` or in-place operations: ``scratch()`` is an uninitialised tensor of the
    current block's shape, ``scratch(shape)`` one of another shape; both stay valid until the next block.
    ``scratch.gradient()`` is where a kernel should build the block's gradient: the block of the gradient
    tensor itself when it can be written directly (the engine then copies nothing), else a scratch buffer.
    Each buffer holds at least ``min_elements``, so that blocks of varying sizes reuse it.
    """

    def __init__(self, dtype: torch.dtype, device: torch.device, min_elements: int) -> None:
        self.dtype, self.device, self.min_elements = dtype, device, min_elements
        self.shape: Tuple[int, ...] = ()
        self._buffers: List[Tensor] = []
        self._used = 0
        self._gradient: Optional[Tensor] = None

    def next_block(self, shape, gradient: Optional[Tensor] = None) -> None:
        """Start a block of ``shape``: every buffer is free again. ``gradient`` is the block of the gradient
        tensor, handed out by :meth:`gradient` when it is contiguous and of the computing dtype."""
        self.shape, self._used = tuple(shape), 0
        direct = gradient is not None and gradient.dtype == self.dtype and gradient.is_contiguous()
        self._gradient = gradient if direct else None

    def gradient(self) -> Tensor:
        """A tensor of the block's shape to build the gradient in: the gradient tensor's own block if writable
        directly, else a scratch buffer."""
        return self() if self._gradient is None else self._gradient

    def __call__(self, shape=None) -> Tensor:
        shape = self.shape if shape is None else tuple(shape)
        size = math.prod(shape)
        if self._used == len(self._buffers):
            self._buffers.append(torch.empty(max(size, self.min_elements), dtype=self.dtype, device=self.device))
        elif self._buffers[self._used].numel() < size:
            self._buffers[self._used] = torch.empty(size, dtype=self.dtype, device=self.device)
        buffer = self._buffers[self._used]
        self._used += 1
        return buffer[:size].view(shape)
