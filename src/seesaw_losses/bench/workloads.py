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
    """One job of a task kind (:data:`seesaw_losses.registry.TASKS`): ``"binary"`` (one logit per element,
    ~``foreground`` positives), ``"multi-label"`` (``(N, C)`` logits, class ``c`` positive with probability
    ``foreground`` times a Zipf weight), ``"multi-class"`` or ``"long-tailed"`` (``(N, C, *)`` logits,
    Zipf-distributed class indices)."""

    name: str
    description: str
    task: str
    shape: Tuple[int, ...]
    quick_shape: Tuple[int, ...]
    foreground: float = 0.0

    @property
    def activation(self) -> str:
        """How the workload's logits are read: ``"sigmoid"`` (binary, multi-label) or ``"softmax"``."""
        return "sigmoid" if self.task in ("binary", "multi-label") else "softmax"

    @property
    def target(self) -> str:
        """The target its losses take (:data:`seesaw_losses.registry.TARGETS`): ``"binary"`` or ``"index"``."""
        return "binary" if self.activation == "sigmoid" else "index"

    def make(self, *, quick: bool, device: str = "cpu", seed: int = 0) -> Tuple[Tensor, Tensor, Tensor]:
        """``(logits, target, class_counts)`` in float32 on ``device``; counts are ``[background, foreground]``
        for the sigmoid tasks (binary, multi-label), per class otherwise."""
        shape = self.quick_shape if quick else self.shape
        gen = torch.Generator().manual_seed(seed)
        logits = torch.randn(shape, generator=gen).mul_(2.0)
        if self.activation == "sigmoid":
            rate = torch.full(shape[1:], self.foreground)
            if self.task == "multi-label":
                rate = rate * _zipf(shape[1], gen) * shape[1]
            target = (torch.rand(shape, generator=gen) < rate).float()
            counts = torch.stack([(target == 0).sum(), (target == 1).sum()])
        else:
            num_classes = shape[1]
            probs = _zipf(num_classes, gen)
            positions = (shape[0],) + tuple(shape[2:])
            flat = torch.multinomial(probs, int(torch.tensor(positions).prod()), replacement=True, generator=gen)
            target = flat.view(positions)
            counts = count_labels(target, num_classes)
            # a positive logit margin for the true class, as a model partway through training would give
            logits.scatter_add_(1, target.unsqueeze(1), torch.full_like(target.unsqueeze(1), 2.0, dtype=logits.dtype))
        return logits.to(device), target.to(device), (counts * SEEN_BATCHES).to(device)


def _zipf(num_classes: int, gen: torch.Generator) -> Tensor:
    """Class frequencies falling as ``rank^-ZIPF_EXPONENT`` (summing to 1), the ranks in random order."""
    weights = torch.arange(1, num_classes + 1, dtype=torch.float64).pow(-ZIPF_EXPONENT)
    return (weights / weights.sum())[torch.randperm(num_classes, generator=gen)].float()


WORKLOADS = {
    w.name: w
    for w in (
        Workload("binary2d", "binary 2D segmentation, ~3% foreground", "binary", (16, 1, 512, 512), (2, 1, 64, 64),
                 foreground=0.03),
        Workload("binary3d", "binary 3D segmentation, ~1% foreground", "binary", (2, 1, 128, 128, 128),
                 (1, 1, 16, 24, 24), foreground=0.01),
        Workload("dense", "dense 19-class segmentation, Zipf labels", "multi-class", (8, 19, 256, 256),
                 (2, 19, 24, 24)),
        Workload("longtail", "long-tailed 1204-class classification, Zipf labels", "long-tailed",
                 (4096, 1204), (64, 1204)),
        Workload("multilabel", "multi-label 80-class classification, ~3% positives, Zipf class rates",
                 "multi-label", (4096, 80), (64, 80), foreground=0.03),
    )
}
