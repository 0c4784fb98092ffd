"""Whole-image segmentation with a small U-Net: the built-in trainer of ``seesaw compare --images --masks`` and
of ``seesaw demo``'s vessel task."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from ..defaults import BATCH_SIZE, DEPTH, EPOCHS, LR, WIDTH
from ..evaluation.segmentation import SegmentationEvaluator
from .. import BINARY, MULTICLASS
from ..run import SIGMOID, SOFTMAX, Run
from ..data.generated import SegmentationData, SegmentationSplit
from ..models.unet import UNet
from .fit import Budget, check_augment, fit, predict


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
    """What both segmentation trainers are: binary or multi-class by their data (``self.data.binary``), scored by
    one :class:`~seesaw_losses.experiments.evaluation.segmentation.SegmentationEvaluator`."""

    families = (SIGMOID, SOFTMAX)

    @property
    def kind(self) -> str:
        """``"binary_segmentation"`` or ``"multiclass_segmentation"``, as the report's plots know them."""
        return BINARY if self.data.binary else MULTICLASS

    @property
    def ignore_index(self) -> Optional[int]:
        return self.data.ignore_index

    @property
    def epochs(self) -> int:
        return self.budget.epochs

    @property
    def evaluator(self) -> SegmentationEvaluator:
        return SegmentationEvaluator(self.data.num_classes, self.data.ignore_index, tuple(self.tolerances))

    @property
    def metric(self) -> str:
        """The ranking metric: mean per-image Dice at the validated threshold (binary), else mean per-image mIoU."""
        return self.evaluator.metric


@dataclass
class SegmentationTrainer(SegmentationKind):
    """Train a fresh U-Net (``width`` channels, ``depth`` levels) per call under ``budget``.

    Ranks by a per-image metric, as segmentation challenges do (:attr:`metric`): binary ``"image_dice"``, the mean
    over images of each image's Dice at the threshold of the best validation F1; multi-class
    ``"image_mean_iou"``, the mean over images of each image's mIoU. A tuning trial returns the pooled metrics and
    it on the validation split (also reported every epoch); a final run returns them on the held-out split
    (binary: at the validated threshold and at 0.5, plus topology and surface Dice at ``tolerances`` pixels),
    records the per-image values of the ranking and topology metrics and keeps the held-out outputs (foreground
    probabilities ``(N, H, W)`` when binary, predicted classes otherwise), masks and images in ``run.artifacts``.
    """

    data: SegmentationData
    budget: Budget = field(default_factory=lambda: Budget(EPOCHS, BATCH_SIZE["segmentation"], LR))
    width: int = WIDTH["segmentation"]
    depth: int = DEPTH
    name: str = "segmentation"
    tolerances: Tuple[float, ...] = (1, 2)
    augment: str = "flip"  #: "flip": each batch flipped and turned by quarter turns at random; "none": as read

    def __post_init__(self) -> None:
        check_augment("SegmentationTrainer", self.augment)

    def class_counts(self) -> list:
        """Training pixels per class (background first)."""
        return [int((self.data.train.masks == c).sum()) for c in range(self.data.num_classes)]

    def _outputs(self, model: nn.Module, split: SegmentationSplit, device: str) -> np.ndarray:
        logits = predict(model, torch.from_numpy(split.images), device)
        if self.data.binary:
            probability = torch.sigmoid(logits[:, 0]) if logits.shape[1] == 1 else torch.softmax(logits, 1)[:, 1]
            return probability.numpy()
        return logits.argmax(1).numpy()

    def __call__(self, criterion: nn.Module, run: Run) -> Dict[str, float]:
        data, device, evaluator = self.data, run.device, self.evaluator
        torch.manual_seed(run.seed)
        model = UNet(data.channels, 1 if run.sigmoid else data.num_classes, width=self.width, depth=self.depth)

        def validate(model: nn.Module) -> float:
            return evaluator.score(self._outputs(model, data.validation, device), data.validation.masks)

        fit(model, criterion, torch.from_numpy(data.train.images), torch.from_numpy(data.train.masks), validate,
            self.budget, run, sigmoid=run.sigmoid, augment=augment if self.augment == "flip" else None)
        found = self._outputs(model, data.validation, device)
        threshold = evaluator.threshold(found, data.validation.masks)
        if run.tuning:
            return evaluator.evaluate(found, data.validation.masks, threshold).scores
        outputs, masks = self._outputs(model, data.test, device), data.test.masks
        evaluation = evaluator.evaluate(outputs, masks, threshold, per_image=True)
        evaluation.record(run)
        run.artifacts.update({"outputs": outputs, "masks": masks, "images": data.test.images})
        return evaluation.scores
