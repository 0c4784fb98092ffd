"""Whole-image segmentation with a small U-Net: the built-in trainer of ``seesaw compare --images --masks`` and
of ``seesaw demo``'s vessel task."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from ..evaluation import metrics, topology
from .. import BINARY, MULTICLASS
from ..run import SIGMOID, SOFTMAX, Run
from ..data.generated import SegmentationData, SegmentationSplit
from ..models.unet import UNet
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


class SegmentationKind:
    """What both segmentation trainers are: binary or multi-class by their data (``self.data.binary``)."""

    @property
    def kind(self) -> str:
        """``"binary_segmentation"`` or ``"multiclass_segmentation"``, as the report's plots know them."""
        return BINARY if self.data.binary else MULTICLASS

    families = (SIGMOID, SOFTMAX)

    @property
    def ignore_index(self) -> Optional[int]:
        return self.data.ignore_index

    @property
    def epochs(self) -> int:
        return self.budget.epochs

    @property
    def metric(self) -> str:
        """The ranking metric: mean per-image Dice at the validated threshold (binary), else mean per-image mIoU."""
        return metrics.image_rank_metric(self.data.binary)


@dataclass
class SegmentationTrainer(SegmentationKind):
    """Train a fresh U-Net (``width`` channels, ``depth`` levels) per call under ``budget``.

    Ranks by a per-image metric, as segmentation challenges do (:attr:`metric`): binary ``"image_dice"``, the mean
    over images of each image's Dice at the threshold of the best validation F1; multi-class
    ``"image_mean_iou"``, the mean over images of each image's mIoU. A tuning trial returns it on the validation
    split (also reported every epoch); a final run returns it on the held-out split with the pooled metrics
    (binary: at the validated threshold and at 0.5, plus topology and surface Dice at ``tolerances`` pixels),
    records the per-image values of the ranking and topology metrics and keeps the held-out outputs (foreground
    probabilities ``(N, H, W)`` when binary, predicted classes otherwise) in ``run.artifacts["outputs"]``.
    """

    data: SegmentationData
    budget: Budget
    width: int = 16
    depth: int = 3
    name: str = "segmentation"
    tolerances: Tuple[float, ...] = (1, 2)

    def class_counts(self) -> list:
        """Training pixels per class (background first)."""
        return [int((self.data.train.masks == c).sum()) for c in range(self.data.num_classes)]

    def _outputs(self, model: nn.Module, split: SegmentationSplit, device: str) -> np.ndarray:
        logits = predict(model, torch.from_numpy(split.images), device)
        if self.data.binary:
            probability = torch.sigmoid(logits[:, 0]) if logits.shape[1] == 1 else torch.softmax(logits, 1)[:, 1]
            return probability.numpy()
        return logits.argmax(1).numpy()

    def _scored(self, masks: np.ndarray) -> np.ndarray:
        """The pixels that count (not ``ignore_index``).

        Shape:
            - masks: ``(N, H, W)``; output: ``(N, H, W)`` bool.
        """
        ignore = self.data.ignore_index
        return masks != ignore if ignore is not None else np.ones(masks.shape, dtype=bool)

    def _threshold(self, found: np.ndarray, masks: np.ndarray) -> Optional[float]:
        """The threshold of the best F1 of these outputs (binary), else None."""
        return metrics.best_f1_threshold(found, masks, ignore_index=self.data.ignore_index) \
            if self.data.binary else None

    def _per_image(self, found: np.ndarray, masks: np.ndarray, threshold: Optional[float]) -> np.ndarray:
        """The ranking metric of each image: Dice at ``threshold`` (binary), else mIoU over the classes present
        (images without a scored pixel left out).

        Shape:
            - found, masks: ``(N, H, W)``; output: ``(N,)`` (multi-class: images with a scored pixel).
        """
        values = metrics.image_scores(found, masks, self.data.num_classes, threshold=threshold,
                                      ignore_index=self.data.ignore_index)
        return values[~np.isnan(values)]

    def __call__(self, criterion: nn.Module, run: Run) -> Dict[str, float]:
        data, device = self.data, run.device
        sigmoid = run.sigmoid
        torch.manual_seed(run.seed)
        model = UNet(data.channels, 1 if sigmoid else data.num_classes, width=self.width, depth=self.depth)

        def validate(model: nn.Module) -> float:
            found = self._outputs(model, data.validation, device)
            masks = data.validation.masks
            return float(self._per_image(found, masks, self._threshold(found, masks)).mean())

        fit(model, criterion, torch.from_numpy(data.train.images), torch.from_numpy(data.train.masks), validate,
            self.budget, run, sigmoid=sigmoid, augment=augment)
        found = self._outputs(model, data.validation, device)
        threshold = self._threshold(found, data.validation.masks)
        if run.tuning:
            return {self.metric: float(self._per_image(found, data.validation.masks, threshold).mean())}
        outputs = self._outputs(model, data.test, device)
        masks = data.test.masks
        per_image = self._per_image(outputs, masks, threshold)
        scores = {self.metric: float(per_image.mean()), **metrics.segmentation(
            outputs, masks, data.num_classes, threshold=threshold, ignore_index=data.ignore_index)}
        run.record_samples(self.metric, per_image)
        run.artifacts.update({"outputs": outputs, "masks": masks, "images": data.test.images})
        if data.binary:
            scored = self._scored(masks)
            means, values = topology.topology_metrics((outputs >= threshold) & scored, masks == 1,
                                                      tolerances=self.tolerances)
            scores.update(means)
            for name, image_values in values.items():
                run.record_samples(name, image_values)
        return scores
