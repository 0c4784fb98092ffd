"""The training loop every built-in trainer shares: AdamW with a cosine schedule, seeded order, optional mixed
precision, a validation score per epoch reported to the run; batches from tensors in memory or from a
``DataLoader`` that reads files on demand."""

from __future__ import annotations

import math
import os
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Optional, Tuple, TypeVar

import torch
from torch import Tensor, nn

from .. import DataError
from ..run import Diverged, Run

Augment = Callable[[Tensor, Tensor, torch.Generator], Tuple[Tensor, Tensor]]
Batches = Callable[[int], Iterable[Tuple[Tensor, Tensor]]]  #: epoch -> that epoch's ``(x, y)`` batches
Item = TypeVar("Item")


@dataclass
class Budget:
    """What every loss of a comparison gets: epochs, batch size, AdamW learning rate, mixed precision."""

    epochs: int
    batch_size: int
    lr: float
    amp: bool = False


AUGMENTS = ("flip", "none")  #: a built-in trainer's ``augment``: random flips (the default), or none


def check_augment(owner: str, augment: str) -> None:
    """``augment`` must be one of :data:`AUGMENTS`."""
    if augment not in AUGMENTS:
        raise DataError(f"{owner}: augment must be one of {', '.join(map(repr, AUGMENTS))}, got {augment!r}")


def check_budget(owner: str, **sizes: int) -> None:
    """Each of ``sizes`` (epochs, batch size, widths, ...) must be a positive integer."""
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise DataError(f"{owner}: {name} must be a positive integer, got {value!r}")


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def running_elsewhere(readings: int = 5) -> int:
    """Threads of other processes running right now: the kernel's count of runnable threads
    (``/proc/loadavg``) less this one, the least of ``readings`` a few milliseconds apart (a short-lived process
    is not a busy one); 0 where the count is unknown."""
    counts = []
    for reading in range(readings):
        try:
            with open("/proc/loadavg") as file:
                counts.append(int(file.read().split()[3].split("/")[0]) - 1)
        except (OSError, ValueError, IndexError):
            return 0
        if reading + 1 < readings:
            time.sleep(0.005)
    return max(0, min(counts))


def idle_cores() -> int:
    """The usable cores that no other process keeps busy right now (at least 1): what this process's threads
    and loader processes may take without waiting on each other for a core."""
    return max(1, usable_cores() - running_elsewhere())


def default_loader_workers(cores: Optional[int] = None) -> int:
    """Half of ``cores`` (None: :func:`usable_cores`), the torch threads taking the other half; 0 (read in this
    process) in a daemonic process, which may not start worker processes, and with a single core."""
    import multiprocessing

    if multiprocessing.current_process().daemon:
        return 0
    return (usable_cores() if cores is None else cores) // 2


def read_in_one_line(batches: Iterable[Item]) -> Iterator[Item]:
    """``batches`` (a ``DataLoader``), a :class:`DataError` raised in one of its worker processes re-raised with
    its own one-line message: the ``DataLoader`` wraps it in the worker's traceback."""
    try:
        yield from batches
    except DataError as error:
        lines = str(error).strip().splitlines()
        if len(lines) < 2:
            raise
        raise DataError(lines[-1].partition(": ")[2]) from None  # "...DataError: cannot read ..."


def predict(model: nn.Module, x: Tensor, device: str, batch_size: int = 32) -> Tensor:
    """Logits of ``model`` on ``x`` in evaluation mode, batch by batch, on the CPU in float32."""
    model.eval()
    with torch.no_grad():
        out = torch.cat([model(x[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)])
    model.train()
    return out


def _autocast(device: str, enabled: bool):
    """bfloat16 autocast on the CPU, float16 on CUDA (when ``enabled``)."""
    kind = "cuda" if device.startswith("cuda") else "cpu"
    return torch.autocast(kind, dtype=torch.float16 if kind == "cuda" else torch.bfloat16, enabled=enabled)


def _set_epoch(criterion: nn.Module, epoch: int) -> None:
    """Tell every part of the loss that has a schedule (e.g. deferred re-weighting) which epoch starts."""
    for module in criterion.modules():
        if callable(getattr(module, "set_epoch", None)):
            module.set_epoch(epoch)


def loss_value(model: nn.Module, criterion: nn.Module, xb: Tensor, yb: Tensor, *, sigmoid: bool,
               amp: bool = False) -> Tensor:
    """``criterion(model(xb), yb)``, the model under autocast with ``amp`` and the loss in float32; a
    one-logit (sigmoid) loss gets the masks as a float channel.

    Shape:
        - xb: ``(N, C, H, W)`` images or ``(N, D)`` features; yb: ``(N, H, W)`` masks or ``(N,)`` labels.
    """
    with _autocast(str(xb.device), amp):
        logits = model(xb)
    logits = logits.float()
    target = yb.unsqueeze(1).to(logits.dtype) if sigmoid and yb.dim() > 1 else yb
    return criterion(logits, target)


def _peak_mb(step: Callable[[], None], device: str) -> float:
    """Peak tensor memory in MB of one training step (forward, backward, gradients)."""
    from ...memory import peak_tensor_bytes

    return peak_tensor_bytes(step, device) / 2**20


def fit(model: nn.Module, criterion: nn.Module, x: Tensor, y: Tensor, validate: Callable[[nn.Module], float],
        budget: Budget, run: Run, *, sigmoid: bool, augment: Optional[Augment] = None) -> None:
    """:func:`fit_batches` on tensors in memory: ``budget.batch_size`` samples a step in an order seeded by
    ``run.seed``, each batch passed through ``augment`` when given.

    Shape:
        - x: ``(N, C, H, W)`` or ``(N, D)``; y: ``(N, H, W)`` or ``(N,)``.
    """
    generator = torch.Generator().manual_seed(run.seed)

    def batches(epoch: int) -> Iterable[Tuple[Tensor, Tensor]]:
        order = torch.randperm(len(x), generator=generator)
        for i in range(0, len(x), budget.batch_size):
            xb, yb = x[order[i:i + budget.batch_size]], y[order[i:i + budget.batch_size]]
            yield augment(xb, yb, generator) if augment is not None else (xb, yb)

    fit_batches(model, criterion, batches, math.ceil(len(x) / budget.batch_size), validate, budget, run,
                sigmoid=sigmoid)


def fit_batches(model: nn.Module, criterion: nn.Module, batches: Batches, steps_per_epoch: int,
                validate: Callable[[nn.Module], float], budget: Budget, run: Run, *, sigmoid: bool) -> None:
    """Train ``model`` with ``criterion`` on ``run.device`` for ``budget.epochs`` epochs of ``batches(epoch)``
    (``steps_per_epoch`` of them: the cosine schedule's length); after every epoch report the validation score
    to the run (which may prune it) and record the training loss in ``run.history``. A final run records
    ``epoch_seconds`` (the median epoch, training and validation, after the first: the first pays the process's
    warm-up, so the loss trained first would look slow; ``epoch_timing`` says which was measured) and ``peak_mb``
    (one step on the last epoch's first batch) in ``run.artifacts``.

    Raises :class:`~seesaw_losses.experiments.run.Diverged` when the loss is not finite.

    Shape:
        - each batch: ``x (N, C, H, W)`` or ``(N, D)``; ``y (N, H, W)`` or ``(N,)``.
    """
    device = run.device
    model.to(device).train()
    criterion = criterion.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=budget.lr, weight_decay=1e-4)
    total = budget.epochs * steps_per_epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total) / max(total, 1))))
    scaler = torch.amp.GradScaler("cuda", enabled=budget.amp and device.startswith("cuda"))
    run.history["train_loss"] = []
    first = None
    epoch_times = []
    for epoch in range(budget.epochs):
        start = time.perf_counter()
        _set_epoch(criterion, epoch)
        running, seen, first = 0.0, 0, None
        for xb, yb in read_in_one_line(batches(epoch)):
            first = first or (xb, yb)
            value = loss_value(model, criterion, xb.to(device), yb.to(device), sigmoid=sigmoid, amp=budget.amp)
            if not torch.isfinite(value):
                raise Diverged(f"{run.loss}: the loss became {value.item()} during training; try a smaller lr= "
                               f"than {budget.lr:g}")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(value).backward()
            scaler.step(optimizer)
            scaler.update()
            schedule.step()
            running += value.item() * len(xb)
            seen += len(xb)
        run.history["train_loss"].append(running / seen)
        score = validate(model)
        run.report(epoch, score)
        epoch_times.append(time.perf_counter() - start)
        run.progress(f"loss {running / seen:.4f}, validation {score:.3f}")
    if not run.tuning:
        run.artifacts["epoch_seconds"] = statistics.median(epoch_times[1:] or epoch_times)
        run.artifacts["epoch_timing"] = "after_first" if len(epoch_times) > 1 else "only"
        xb, yb = first[0].to(device), first[1].to(device)
        run.artifacts["peak_mb"] = _peak_mb(
            lambda: loss_value(model, criterion, xb, yb, sigmoid=sigmoid, amp=budget.amp).backward(), device)
        model.zero_grad(set_to_none=True)
