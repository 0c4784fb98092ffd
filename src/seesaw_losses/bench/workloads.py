"""The benchmark's workloads: shapes and label statistics of the jobs a loss runs on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import torch
from torch import Tensor

from ..functional._targets import count_labels

ZIPF_EXPONENT = 1.1
SEEN_BATCHES = 100
"""Cumulative counts handed to Seesaw: the batch's label counts as if this many such batches had been seen."""


@dataclass(frozen=True)
class Workload:
    """One job: ``kind`` is ``"binary"`` (one logit per element, ~``foreground`` positives) or ``"multiclass"``
    (``(N, C, *)`` logits, Zipf-distributed class indices)."""

    name: str
    description: str
    kind: str
    shape: Tuple[int, ...]
    quick_shape: Tuple[int, ...]
    foreground: float = 0.0

    def make(self, *, quick: bool, device: str = "cpu", seed: int = 0) -> Tuple[Tensor, Tensor, Tensor]:
        """``(logits, target, class_counts)`` in float32 on ``device``; counts are ``[background, foreground]``
        for binary workloads."""
        shape = self.quick_shape if quick else self.shape
        gen = torch.Generator().manual_seed(seed)
        logits = torch.randn(shape, generator=gen).mul_(2.0)
        if self.kind == "binary":
            target = (torch.rand(shape, generator=gen) < self.foreground).float()
            counts = torch.stack([(target == 0).sum(), (target == 1).sum()])
        else:
            num_classes = shape[1]
            ranks = torch.arange(1, num_classes + 1, dtype=torch.float64)
            probs = ranks.pow(-ZIPF_EXPONENT)[torch.randperm(num_classes, generator=gen)]
            positions = (shape[0],) + tuple(shape[2:])
            flat = torch.multinomial(probs, int(torch.tensor(positions).prod()), replacement=True, generator=gen)
            target = flat.view(positions)
            counts = count_labels(target, num_classes)
            # a positive logit margin for the true class, as a model partway through training would give
            logits.scatter_add_(1, target.unsqueeze(1), torch.full_like(target.unsqueeze(1), 2.0, dtype=logits.dtype))
        return logits.to(device), target.to(device), (counts * SEEN_BATCHES).to(device)


WORKLOADS = {
    w.name: w
    for w in (
        Workload("binary2d", "binary 2D segmentation, ~3% foreground", "binary", (16, 1, 512, 512), (2, 1, 64, 64),
                 foreground=0.03),
        Workload("binary3d", "binary 3D segmentation, ~1% foreground", "binary", (2, 1, 128, 128, 128),
                 (1, 1, 16, 24, 24), foreground=0.01),
        Workload("dense", "dense 19-class segmentation, Zipf labels", "multiclass", (8, 19, 256, 256),
                 (2, 19, 24, 24)),
        Workload("longtail", "long-tailed 1204-class classification, Zipf labels", "multiclass", (4096, 1204),
                 (64, 1204)),
    )
}
