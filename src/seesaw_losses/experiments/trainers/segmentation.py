"""Whole-image segmentation with a small U-Net: the built-in trainer of ``seesaw compare --images --masks`` and
of ``seesaw demo``'s vessel task."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from .. import metrics, topology
from .. import BINARY, MULTICLASS
from ..api import Run
from ..data import SegmentationData, SegmentationSplit
from ..losses import SIGMOID, parse_loss
from ..unet import UNet
from .fit import Budget, fit, predict


def augment(x: Tensor, y: Tensor, generator: torch.Generator) -> Tuple[Tensor, Tensor]:
    """The same random flip / quarter turn for a whole batch of images and masks.

    Shape:
        - x: ``(N, C, H, W)``; y: ``(N, H, W)``.
    """
    flips, turns = torch.randint(0, 4, (2,), generator=generator).tolist()
    dims = [d for d, bit in ((-1, 1), (-2, 2)) if flips & bit]
    if dims:
        x, y = x.flip(dims), y.flip(dims)
    return x.rot90(turns, (-2, -1)), y.rot90(turns, (-2, -1))


@dataclass
class SegmentationTrainer:
    """Train a fresh U-Net (``width`` channels, ``depth`` levels) per call under ``budget``.

    A tuning trial returns the ranking metric on the validation split (binary: Dice at the threshold of the best
    validation F1); a final run returns every held-out metric (binary: at that validated threshold and at 0.5,
    plus topology), records the per-image ranking metric and keeps the held-out outputs (foreground
    probabilities ``(N, H, W)`` when binary, predicted classes otherwise) in ``run.artifacts["outputs"]``.
    """

    data: SegmentationData
    budget: Budget
    width: int = 16
    depth: int = 3
    name: str = "segmentation"

    @property
    def kind(self) -> str:
        return BINARY if self.data.binary else MULTICLASS

    @property
    def metric(self) -> str:
        """Dice at the validated threshold (binary), else mIoU."""
        return "dice" if self.data.binary else "mean_iou"

    def class_counts(self) -> list:
        """Training pixels per class (background first)."""
        return [int((self.data.train.masks == c).sum()) for c in range(self.data.num_classes)]

    def _outputs(self, model: nn.Module, split: SegmentationSplit, device: str) -> np.ndarray:
        logits = predict(model, torch.from_numpy(split.images), device)
        if self.data.binary:
            probability = torch.sigmoid(logits[:, 0]) if logits.shape[1] == 1 else torch.softmax(logits, 1)[:, 1]
            return probability.numpy()
        return logits.argmax(1).numpy()

    def _scores(self, found: np.ndarray, masks: np.ndarray, threshold: Optional[float] = None) -> Dict[str, float]:
        """The metrics of outputs; binary ones at ``threshold`` (None: the best F1 of these outputs)."""
        data = self.data
        if not data.binary:
            return metrics.multiclass_segmentation(found, masks, data.num_classes, ignore_index=data.ignore_index)
        if threshold is None:
            threshold = metrics.best_f1_threshold(found, masks, ignore_index=data.ignore_index)
        return metrics.binary_segmentation(found, masks, threshold=threshold, ignore_index=data.ignore_index)

    def __call__(self, criterion: nn.Module, run: Run) -> Dict[str, float]:
        data, device = self.data, run.device
        sigmoid = parse_loss(run.loss).family == SIGMOID
        torch.manual_seed(run.seed)
        model = UNet(data.channels, 1 if sigmoid else data.num_classes, width=self.width, depth=self.depth)

        def validate(model: nn.Module) -> float:
            return self._scores(self._outputs(model, data.validation, device), data.validation.masks)[self.metric]

        fit(model, criterion, torch.from_numpy(data.train.images), torch.from_numpy(data.train.masks), validate,
            self.budget, run, sigmoid=sigmoid, augment=augment)
        found = self._outputs(model, data.validation, device)
        threshold = metrics.best_f1_threshold(found, data.validation.masks, ignore_index=data.ignore_index) \
            if data.binary else None
        if run.tuning:
            return {self.metric: self._scores(found, data.validation.masks, threshold)[self.metric]}
        outputs = self._outputs(model, data.test, device)
        masks = data.test.masks
        scores = self._scores(outputs, masks, threshold)
        run.artifacts["outputs"] = outputs
        scored = masks != data.ignore_index if data.ignore_index is not None else np.ones(masks.shape, dtype=bool)
        if data.binary:
            predicted = (outputs >= threshold) & scored
            run.record_samples("dice", metrics.per_image_dice(predicted, (masks == 1) & scored))
            means, per_image = topology.topology_metrics(predicted, masks == 1)
            scores.update(means)
            for name, values in per_image.items():
                run.record_samples(name, values)
        else:
            run.record_samples("mean_iou", metrics.per_image_mean_iou(outputs, masks, data.num_classes, scored))
        return scores
