"""Target handling shared by the losses: the one ignore-index mask, and counting labels without a host sync."""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor


def valid_mask(target: Tensor, ignore_index: Optional[float], *, out: Optional[Tensor] = None) -> Optional[Tensor]:
    """Where ``target`` is not ``ignore_index`` (written to ``out`` if given, in its dtype); None when no index is
    ignored."""
    if ignore_index is None:
        return None
    return target != ignore_index if out is None else torch.ne(target, ignore_index, out=out)


def mask_ignored(target: Tensor, ignore_index: Optional[float], fill: float = 0) -> Tuple[Tensor, Optional[Tensor]]:
    """``target`` with its ignored elements replaced by ``fill``, and the valid mask (None when nothing is
    ignored), so that ignored elements can index, be counted or enter a formula harmlessly."""
    valid = valid_mask(target, ignore_index)
    return (target if valid is None else target.masked_fill(~valid, fill)), valid


def count_labels(target: Tensor, num_classes: int, ignore_index: Optional[int] = None) -> Tensor:
    """Number of elements of each class in an index target, ignoring ``ignore_index``.

    Never synchronises with the host (no ``.item()``, no Python loop over classes), so it is safe inside a
    training step on an accelerator and under ``torch.compile``.

    Shape:
        - target: any shape, integer class indices in ``[0, num_classes)`` or ``ignore_index``.
        - output: ``(num_classes,)``, int64.
    """
    flat, _ = mask_ignored(target.reshape(-1).long(), ignore_index, num_classes)
    if flat.device.type == "cpu" and not torch.compiler.is_compiling():
        return torch.bincount(flat, minlength=num_classes + 1)[:num_classes]
    counts = torch.zeros(num_classes + 1, dtype=torch.int64, device=flat.device)
    counts.scatter_add_(0, flat, torch.ones_like(flat))
    return counts[:num_classes]
