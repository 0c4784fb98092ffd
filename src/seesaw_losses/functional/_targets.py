"""Target handling shared by the losses: counting labels without a host sync."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


def count_labels(target: Tensor, num_classes: int, ignore_index: Optional[int] = None) -> Tensor:
    """Number of elements of each class in an index target, ignoring ``ignore_index``.

    Never synchronises with the host (no ``.item()``, no Python loop over classes), so it is safe inside a
    training step on an accelerator and under ``torch.compile``.

    Shape:
        - target: any shape, integer class indices in ``[0, num_classes)`` or ``ignore_index``.
        - output: ``(num_classes,)``, int64.
    """
    flat = target.reshape(-1).long()
    if ignore_index is not None:
        flat = torch.where(flat == ignore_index, torch.full_like(flat, num_classes), flat)
    if flat.device.type == "cpu" and not torch.compiler.is_compiling():
        return torch.bincount(flat, minlength=num_classes + 1)[:num_classes]
    counts = torch.zeros(num_classes + 1, dtype=torch.int64, device=flat.device)
    counts.scatter_add_(0, flat, torch.ones_like(flat))
    return counts[:num_classes]
