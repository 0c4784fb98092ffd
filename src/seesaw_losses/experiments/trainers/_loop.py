"""What the built-in trainers share: the loss's family, the optimiser and its schedule, one training step."""

from __future__ import annotations

import math
import os
from typing import Tuple

import torch
from torch import Tensor, nn

from .. import DataError
from ..losses import SIGMOID, parse_loss


def default_loader_workers() -> int:
    """The cores this process may run on (its CPU affinity); 0 (read in this process) in a daemonic process,
    which may not start worker processes."""
    import multiprocessing

    if multiprocessing.current_process().daemon:
        return 0
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def loss_family(run) -> str:
    """``"sigmoid"`` (one logit per pixel) or ``"softmax"`` (one logit per class) of the run's loss."""
    return parse_loss(run.loss).family


def check_budget(owner: str, **sizes: int) -> None:
    """Each of ``sizes`` (epochs, batch size, widths, ...) must be a positive integer."""
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")


def set_epoch(criterion: nn.Module, epoch: int) -> None:
    """Tell every part of the loss that has a schedule (e.g. deferred re-weighting) which epoch starts."""
    for module in criterion.modules():
        if callable(getattr(module, "set_epoch", None)):
            module.set_epoch(epoch)


def optimiser(model: nn.Module, lr: float, steps: int) -> Tuple[torch.optim.Optimizer, object]:
    """AdamW (weight decay 1e-4) with a cosine decay of the learning rate to 0 over ``steps`` steps."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, steps) / max(steps, 1))))
    return optimizer, schedule


def loss_of(model: nn.Module, criterion: nn.Module, x: Tensor, y: Tensor, family: str) -> Tensor:
    """``criterion(model(x), y)``; a sigmoid loss gets the mask as ``(N, 1, H, W)`` floats.

    Shape:
        - x: ``(N, C, ...)``; y: ``(N, ...)`` class indices.
    """
    logits = model(x)
    target = y.unsqueeze(1).to(logits.dtype) if family == SIGMOID and y.dim() > 1 else y
    return criterion(logits, target)


def train_step(model: nn.Module, criterion: nn.Module, optimizer: torch.optim.Optimizer, schedule, x: Tensor,
               y: Tensor, family: str, label: str) -> float:
    """One optimiser step on a batch (:func:`loss_of`); the loss value."""
    value = loss_of(model, criterion, x, y, family)
    if not torch.isfinite(value):
        raise DataError(f"{label}: the loss became {value.item()} during training; try a smaller --lr")
    optimizer.zero_grad(set_to_none=True)
    value.backward()
    optimizer.step()
    schedule.step()
    return float(value.item())


def step_peak_mb(model: nn.Module, criterion: nn.Module, x: Tensor, y: Tensor, family: str) -> float:
    """Peak tensor memory in MB of one forward and backward pass on a batch (gradients included)."""
    from ...bench.runner import peak_tensor_bytes

    peak = peak_tensor_bytes(lambda: loss_of(model, criterion, x, y, family).backward(), str(x.device)) / 2**20
    model.zero_grad(set_to_none=True)
    return peak
