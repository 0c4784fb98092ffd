"""Shape helpers shared by the losses: flattening that also holds for empty batches, and the empty-batch result.

``x.reshape(n, -1)`` cannot infer ``-1`` when ``n = 0`` (a tensor of 0 elements fits any size there), so every
loss flattens trailing dimensions with :func:`flatten_from`, which computes the size. An empty input (no element
to score: an empty batch, or zero-sized spatial dimensions) gives a zero loss with a zero gradient, as an
all-ignored batch does.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor


def flatten_from(x: Tensor, dim: int) -> Tensor:
    """``x`` with the dimensions from ``dim`` on merged into one: ``(d0, ..., d{dim-1}, prod(rest))``."""
    return x.reshape(*x.shape[:dim], math.prod(x.shape[dim:]))


def empty_loss(logits: Tensor, shape: Sequence[int] = ()) -> Tensor:
    """The loss of an input with no element: zeros of ``shape`` in the computing dtype, attached to the graph of
    ``logits`` (so ``backward()`` works and gives a zero gradient)."""
    dtype = torch.float64 if logits.dtype == torch.float64 else torch.float32   # the engine's computing dtype
    return (logits.sum() * 0).to(dtype).expand(tuple(shape)).clone()
