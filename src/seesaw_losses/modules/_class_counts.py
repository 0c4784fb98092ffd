"""Cumulative class counts kept as module state."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ClassCountsMixin(nn.Module):
    """Keeps ``class_counts``, an int64 buffer (exact beyond 2**24, saved in ``state_dict``, moved by ``.to()``).

    Subclasses call :meth:`accumulate` with a batch's counts in ``forward``; it adds them in training mode only.
    """

    class_counts: Tensor

    def _init_counts(self, num_classes: int) -> None:
        self.register_buffer("class_counts", torch.zeros(num_classes, dtype=torch.int64))

    def accumulate(self, batch_counts: Tensor) -> None:
        """Add a batch's counts (training mode only); no host synchronisation."""
        if self.training:
            self.class_counts.add_(batch_counts.to(self.class_counts.device))

    def reset_counts(self) -> None:
        """Forget the counts seen so far."""
        self.class_counts.zero_()
