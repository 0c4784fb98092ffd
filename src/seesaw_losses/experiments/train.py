"""One training loop for every loss: same model initialisation, data order, augmentation and budget per seed."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from . import metrics
from .data import LongTailData, SegmentationData
from .losses import SIGMOID, BuiltLoss
from .unet import MLP, UNet


@dataclass
class Settings:
    """The budget shared by every loss of one comparison."""

    epochs: int
    batch_size: int
    lr: float
    seed: int = 0
    device: str = "cpu"
    width: int = 16
    depth: int = 3
    progress: bool = True


@dataclass
class Run:
    """One loss's result: per-epoch history, final held-out metrics and held-out outputs.

    ``outputs`` holds foreground probabilities ``(N, H, W)`` for binary segmentation, predicted classes
    ``(N, H, W)`` for multi-class segmentation and class probabilities ``(N, C)`` for classification.
    """

    label: str
    history: Dict[str, List[float]]
    metrics: Dict[str, object]
    outputs: np.ndarray
    seconds: float
    notes: List[str] = field(default_factory=list)


def _progress_bar(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", leave=True, dynamic_ncols=True,
                disable=not enabled, bar_format="{desc:<24.24} {percentage:3.0f}%|{bar}| {n}/{total} "
                                                "[{elapsed}<{remaining}{postfix}]")


def _augment(x: Tensor, y: Tensor, generator: torch.Generator) -> Tuple[Tensor, Tensor]:
    """The same random flip / quarter turn for a whole batch of images and masks."""
    flips, turns = torch.randint(0, 4, (2,), generator=generator).tolist()
    dims = [d for d, bit in ((-1, 1), (-2, 2)) if flips & bit]
    if dims:
        x, y = x.flip(dims), y.flip(dims)
    return x.rot90(turns, (-2, -1)), y.rot90(turns, (-2, -1))


def _predict(model: nn.Module, x: Tensor, device: str, batch_size: int = 32) -> Tensor:
    model.eval()
    with torch.no_grad():
        out = torch.cat([model(x[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)])
    model.train()
    return out


def _set_epoch(criterion: nn.Module, epoch: int) -> None:
    """Tell every part of the loss that has a schedule (e.g. deferred re-weighting) which epoch starts."""
    for module in criterion.modules():
        if callable(getattr(module, "set_epoch", None)):
            module.set_epoch(epoch)


def _fit(model: nn.Module, loss: BuiltLoss, x: Tensor, y: Tensor, evaluate: Callable[[nn.Module], Tuple[float, np.ndarray]],
         settings: Settings, *, augment: bool, score_name: str) -> Run:
    """Train ``model`` with ``loss`` under ``settings``; evaluate after every epoch."""
    device = settings.device
    model.to(device).train()
    criterion = loss.module.to(device).train()
    parameters = list(model.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=settings.lr, weight_decay=1e-4)
    steps_per_epoch = math.ceil(len(x) / settings.batch_size)
    total = settings.epochs * steps_per_epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / total)))
    generator = torch.Generator().manual_seed(settings.seed)
    history: Dict[str, List[float]] = {"train_loss": [], score_name: []}
    outputs = np.empty(0)
    start = time.perf_counter()
    with _progress_bar(total, loss.label, settings.progress) as bar:
        for epoch in range(settings.epochs):
            _set_epoch(criterion, epoch)
            order = torch.randperm(len(x), generator=generator)
            running, seen = 0.0, 0
            for i in range(0, len(x), settings.batch_size):
                xb, yb = x[order[i:i + settings.batch_size]], y[order[i:i + settings.batch_size]]
                if augment:
                    xb, yb = _augment(xb, yb, generator)
                xb, yb = xb.to(device), yb.to(device)
                logits = model(xb)
                target = yb.unsqueeze(1).to(logits.dtype) if loss.spec.family == SIGMOID else yb
                value = criterion(logits, target)
                if not torch.isfinite(value):
                    raise FloatingPointError(f"{loss.label}: the loss became {value.item()} during training; "
                                             "try a smaller --lr")
                optimizer.zero_grad(set_to_none=True)
                value.backward()
                optimizer.step()
                schedule.step()
                running += value.item() * len(xb)
                seen += len(xb)
                bar.update(1)
            score, outputs = evaluate(model)
            history["train_loss"].append(running / seen)
            history[score_name].append(score)
            bar.set_postfix_str(f"loss {running / seen:.4f}, {score_name} {score:.3f}")
    return Run(loss.label, history, {}, outputs, time.perf_counter() - start, list(loss.notes))


def train_segmentation(data: SegmentationData, loss: BuiltLoss, settings: Settings) -> Run:
    """Train a fresh U-Net (seeded identically for every loss) and score it on the held-out split."""
    torch.manual_seed(settings.seed)
    out_channels = 1 if loss.spec.family == SIGMOID else data.num_classes
    model = UNet(data.channels, out_channels, width=settings.width, depth=settings.depth)
    x, y = torch.from_numpy(data.train.images), torch.from_numpy(data.train.masks)
    val_x, val_mask = torch.from_numpy(data.val.images), data.val.masks

    def outputs(model: nn.Module) -> np.ndarray:
        logits = _predict(model, val_x, settings.device)
        if data.binary:
            probability = torch.sigmoid(logits[:, 0]) if out_channels == 1 else torch.softmax(logits, 1)[:, 1]
            return probability.numpy()
        return logits.argmax(1).numpy()

    def score(found: np.ndarray) -> Dict[str, object]:
        if data.binary:
            return metrics.binary_segmentation(found, val_mask)
        return metrics.multiclass_segmentation(found, val_mask, data.num_classes)

    key = "dice" if data.binary else "mean_iou"

    def evaluate(model: nn.Module):
        found = outputs(model)
        return float(score(found)[key]), found

    run = _fit(model, loss, x, y, evaluate, settings, augment=True, score_name=f"val_{key}")
    run.metrics = score(run.outputs)
    return run


def train_long_tail(data: LongTailData, loss: BuiltLoss, settings: Settings) -> Run:
    """Train a fresh MLP on the long-tailed set and score it on the balanced test set."""
    torch.manual_seed(settings.seed)
    model = MLP(data.train_x.shape[1], data.num_classes)
    x, y = torch.from_numpy(data.train_x), torch.from_numpy(data.train_y)
    test_x = torch.from_numpy(data.test_x)

    def evaluate(model: nn.Module):
        probability = torch.softmax(_predict(model, test_x, settings.device, batch_size=4096), 1).numpy()
        scores = metrics.classification(probability.argmax(1), data.test_y, data.num_classes, data.groups)
        return float(scores["balanced_accuracy"]), probability

    run = _fit(model, loss, x, y, evaluate, settings, augment=False, score_name="val_balanced_accuracy")
    run.metrics = metrics.classification(run.outputs.argmax(1), data.test_y, data.num_classes, data.groups)
    return run
