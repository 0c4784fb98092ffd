"""One training loop for every loss: same model initialisation, data order, augmentation and budget per seed.

A run fits the training split, draws its curve on the validation split (carved from the training data), and is
scored on the held-out split; the validation split also chooses the binary threshold and scores tuning trials.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from . import DataError, metrics
from .data import LongTailData, SegmentationData, SegmentationSplit
from .losses import SIGMOID, BuiltLoss
from .progress import QUIET, Tracker
from .unet import MLP, UNet


@dataclass
class Settings:
    """The budget shared by every loss of one comparison; ``seed`` sets initialisation and data order."""

    epochs: int
    batch_size: int
    lr: float
    seed: int = 0
    device: str = "cpu"
    width: int = 16
    depth: int = 3


@dataclass
class Run:
    """One training run: per-epoch history, held-out metrics (``{name: value}``, empty for a tuning trial), the
    validation score, held-out outputs (kept for plots) and costs.

    ``outputs`` holds foreground probabilities ``(N, H, W)`` for binary segmentation, predicted classes
    ``(N, H, W)`` for multi-class segmentation and class probabilities ``(N, C)`` for classification.
    """

    label: str
    seed: int
    history: Dict[str, List[float]]
    metrics: Dict[str, float]
    validation_score: float
    outputs: Optional[np.ndarray]
    seconds: float
    epoch_seconds: float
    peak_mb: float = math.nan
    notes: List[str] = field(default_factory=list)


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


def _loss_value(model: nn.Module, criterion: nn.Module, loss: BuiltLoss, xb: Tensor, yb: Tensor) -> Tensor:
    logits = model(xb)
    target = yb.unsqueeze(1).to(logits.dtype) if loss.spec.family == SIGMOID and yb.dim() > 1 else yb
    return criterion(logits, target)


def _peak_mb(model: nn.Module, criterion: nn.Module, loss: BuiltLoss, xb: Tensor, yb: Tensor, device: str) -> float:
    """Peak tensor memory of one forward + backward of the model and loss on a batch (gradients included)."""
    from ..bench.runner import peak_tensor_bytes

    def step() -> None:
        _loss_value(model, criterion, loss, xb, yb).backward()

    peak = peak_tensor_bytes(step, device) / 2**20
    model.zero_grad(set_to_none=True)
    return peak


def _fit(model: nn.Module, loss: BuiltLoss, x: Tensor, y: Tensor, validate: Callable[[nn.Module], float],
         settings: Settings, *, augment: bool, score_name: str, tracker: Tracker, description: str,
         measure: bool) -> Tuple[Dict[str, List[float]], float, float]:
    """Train ``model`` with ``loss`` under ``settings``, scoring the validation split after every epoch; returns
    the history, the training seconds and the peak memory of a step (NaN unless ``measure``)."""
    device = settings.device
    model.to(device).train()
    criterion = loss.module.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=1e-4)
    steps_per_epoch = math.ceil(len(x) / settings.batch_size)
    total = settings.epochs * steps_per_epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / total)))
    generator = torch.Generator().manual_seed(settings.seed)
    history: Dict[str, List[float]] = {"train_loss": [], score_name: []}
    start = time.perf_counter()
    with tracker.run(description, settings.epochs) as advance:
        for epoch in range(settings.epochs):
            _set_epoch(criterion, epoch)
            order = torch.randperm(len(x), generator=generator)
            running, seen = 0.0, 0
            for i in range(0, len(x), settings.batch_size):
                xb, yb = x[order[i:i + settings.batch_size]], y[order[i:i + settings.batch_size]]
                if augment:
                    xb, yb = _augment(xb, yb, generator)
                value = _loss_value(model, criterion, loss, xb.to(device), yb.to(device))
                if not torch.isfinite(value):
                    raise DataError(f"{loss.label}: the loss became {value.item()} during training; try a "
                                    "smaller --lr")
                optimizer.zero_grad(set_to_none=True)
                value.backward()
                optimizer.step()
                schedule.step()
                running += value.item() * len(xb)
                seen += len(xb)
            history["train_loss"].append(running / seen)
            history[score_name].append(validate(model))
            advance(f"loss {running / seen:.4f}, {score_name} {history[score_name][-1]:.3f}")
    seconds = time.perf_counter() - start
    peak = math.nan
    if measure:
        batch = slice(0, settings.batch_size)
        peak = _peak_mb(model, criterion, loss, x[batch].to(device), y[batch].to(device), device)
    return history, seconds, peak


def _segmentation_outputs(model: nn.Module, split: SegmentationSplit, binary: bool, device: str) -> np.ndarray:
    logits = _predict(model, torch.from_numpy(split.images), device)
    if binary:
        probability = torch.sigmoid(logits[:, 0]) if logits.shape[1] == 1 else torch.softmax(logits, 1)[:, 1]
        return probability.numpy()
    return logits.argmax(1).numpy()


def segmentation_scores(data: SegmentationData, found: np.ndarray, masks: np.ndarray,
                        threshold: Optional[float] = None) -> Dict[str, float]:
    """The metrics of segmentation outputs; binary ones at ``threshold`` (None: the best F1 of these outputs)."""
    if not data.binary:
        return metrics.multiclass_segmentation(found, masks, data.num_classes, ignore_index=data.ignore_index)
    if threshold is None:
        threshold = metrics.best_f1_threshold(found, masks, ignore_index=data.ignore_index)
    return metrics.binary_segmentation(found, masks, threshold=threshold, ignore_index=data.ignore_index)


def rank_metric(binary: bool) -> str:
    """The metric that ranks segmentation losses: Dice at the validated threshold (binary), else mIoU."""
    return "dice" if binary else "mean_iou"


def train_segmentation(data: SegmentationData, loss: BuiltLoss, settings: Settings, *, test: bool = True,
                       tracker: Tracker = QUIET, description: str = "", measure: bool = False,
                       keep_outputs: bool = False) -> Run:
    """Train a fresh U-Net (seeded by ``settings.seed``) on the training split; score it on the validation split
    and, with ``test``, on the held-out split (binary: at 0.5 and at the threshold of the best validation F1)."""
    torch.manual_seed(settings.seed)
    out_channels = 1 if loss.spec.family == SIGMOID else data.num_classes
    model = UNet(data.channels, out_channels, width=settings.width, depth=settings.depth)
    key = rank_metric(data.binary)

    def validate(model: nn.Module) -> float:
        found = _segmentation_outputs(model, data.validation, data.binary, settings.device)
        return segmentation_scores(data, found, data.validation.masks)[key]

    x, y = torch.from_numpy(data.train.images), torch.from_numpy(data.train.masks)
    history, seconds, peak = _fit(model, loss, x, y, validate, settings, augment=True, score_name=f"val_{key}",
                                  tracker=tracker, description=description or loss.label, measure=measure)
    found = _segmentation_outputs(model, data.validation, data.binary, settings.device)
    threshold = metrics.best_f1_threshold(found, data.validation.masks, ignore_index=data.ignore_index) \
        if data.binary else None
    validation_score = segmentation_scores(data, found, data.validation.masks, threshold)[key]
    scores, outputs = {}, None
    if test:
        outputs = _segmentation_outputs(model, data.test, data.binary, settings.device)
        scores = segmentation_scores(data, outputs, data.test.masks, threshold)
    return Run(loss.label, settings.seed, history, scores, validation_score, outputs if keep_outputs else None,
               seconds, seconds / settings.epochs, peak, list(loss.notes))


def train_long_tail(data: LongTailData, loss: BuiltLoss, settings: Settings, *, test: bool = True,
                    tracker: Tracker = QUIET, description: str = "", measure: bool = False,
                    keep_outputs: bool = False) -> Run:
    """Train a fresh MLP on the long-tailed training set; score it on the validation set and, with ``test``,
    on the balanced test set."""
    torch.manual_seed(settings.seed)
    model = MLP(data.train_x.shape[1], data.num_classes)

    def probabilities(model: nn.Module, x: np.ndarray) -> np.ndarray:
        return torch.softmax(_predict(model, torch.from_numpy(x), settings.device, batch_size=4096), 1).numpy()

    def validate(model: nn.Module) -> float:
        predicted = probabilities(model, data.val_x).argmax(1)
        return metrics.classification(predicted, data.val_y, data.num_classes, data.groups)["balanced_accuracy"]

    x, y = torch.from_numpy(data.train_x), torch.from_numpy(data.train_y)
    history, seconds, peak = _fit(model, loss, x, y, validate, settings, augment=False,
                                  score_name="val_balanced_accuracy", tracker=tracker,
                                  description=description or loss.label, measure=measure)
    scores, outputs = {}, None
    if test:
        outputs = probabilities(model, data.test_x)
        scores = metrics.classification(outputs.argmax(1), data.test_y, data.num_classes, data.groups)
    return Run(loss.label, settings.seed, history, scores, history["val_balanced_accuracy"][-1],
               outputs if keep_outputs else None, seconds, seconds / settings.epochs, peak, list(loss.notes))
