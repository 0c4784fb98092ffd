"""Segmentation at native resolution: the U-Net trained on random patches, scored on whole images predicted by a
sliding window (thresholds and metrics on the images at their own sizes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from ..data.patches import (EpochSampler, HeldOutImages, ImagePair, PatchData, PatchDataset, WholeImages,
                            patch_loader, whole_image_loader)
from .. import DataError
from ..defaults import BATCH_SIZE, DEPTH, EPOCHS, LR, OVERLAP, PATCH_SIZE, PATCHES_PER_IMAGE, WIDTH
from ..models.sliding_window import BLENDS, sliding_window
from ..models.unet import UNet
from ..run import Run
from .fit import Budget, check_augment, check_budget, default_loader_workers, fit_batches, read_in_one_line
from .segmentation import SegmentationKind


@dataclass
class PatchSegmentationTrainer(SegmentationKind):
    """``train(criterion, run)`` for :class:`~seesaw_losses.experiments.data.patches.PatchData`: a fresh U-Net
    (``width``, ``depth``) seeded by ``run.seed`` trained under ``budget`` on ``patches_per_image`` random
    ``patch_size`` patches per training image and epoch, ``budget.batch_size`` patches a step (whole images'
    patches: ``max(1, batch_size // patches_per_image)`` images), read by ``loader_workers`` processes (None: the
    cores this process may use, or 0 in a daemonic process).

    Validation and held-out images are predicted whole by
    :func:`~seesaw_losses.experiments.models.sliding_window.sliding_window` (``overlap``, ``blend``, ``batch_size``
    windows at a time). Binary: the threshold of the best validation F1
    (Dice), metrics pooled over the pixels of every image at its own size, and ranked by ``image_dice``, the mean
    per-image Dice at that threshold (1 where prediction and truth are both empty); multi-class: pooled metrics,
    ranked by ``image_mean_iou``, the mean per-image mIoU. Final runs record the per-image rank metric (and,
    binary, the topology metrics) and keep per-image entries (name, size, metrics), the held-out outputs and the
    threshold in ``run.artifacts``.
    """

    data: PatchData
    budget: Budget = field(default_factory=lambda: Budget(EPOCHS, BATCH_SIZE["patches"], LR))
    patch_size: int = PATCH_SIZE
    patches_per_image: int = PATCHES_PER_IMAGE
    width: int = WIDTH["patches"]
    depth: int = DEPTH
    overlap: float = OVERLAP
    blend: str = "gaussian"
    loader_workers: Optional[int] = None
    tolerances: Tuple[float, ...] = (1, 2)
    name: str = "segmentation"
    augment: str = "flip"  #: "flip": each patch flipped and turned by quarter turns at random; "none": as read

    def __post_init__(self) -> None:
        check_budget("PatchSegmentationTrainer", patches_per_image=self.patches_per_image, epochs=self.budget.epochs,
                     batch_size=self.budget.batch_size, width=self.width)
        self.check_windows(self.patch_size, self.depth, self.overlap, self.blend)
        check_augment("PatchSegmentationTrainer", self.augment)

    @staticmethod
    def check_windows(patch_size: int, depth: int = DEPTH, overlap: float = OVERLAP, blend: str = "gaussian"
                      ) -> None:
        """The patch and sliding-window settings (:class:`DataError` when the U-Net cannot take them), before any
        data is read."""
        check_budget("PatchSegmentationTrainer", patch_size=patch_size, depth=depth)
        if patch_size % 2**depth:
            raise DataError(f"PatchSegmentationTrainer: patch_size must be a multiple of {2**depth} (the U-Net "
                            f"halves it {depth} times), got {patch_size}")
        if not 0 <= overlap < 1:
            raise DataError(f"PatchSegmentationTrainer: overlap must be in [0, 1), got {overlap}")
        if blend not in BLENDS:
            raise DataError(f"PatchSegmentationTrainer: blend must be one of {', '.join(BLENDS)}, got {blend!r}")

    def class_counts(self) -> List[int]:
        """Training pixels per class (background first)."""
        return self.data.class_counts

    @property
    def workers(self) -> int:
        return default_loader_workers() if self.loader_workers is None else self.loader_workers

    def predict(self, model: nn.Module, pairs: Sequence[ImagePair], sigmoid: bool, device: str
                ) -> Tuple[List[np.ndarray], List[np.ndarray]]:
        """Per image at its own size: the foreground probability (binary) or predicted classes, and the mask."""
        outputs, masks = [], []
        for image, mask in read_in_one_line(whole_image_loader(WholeImages(pairs, self.data.channels,
                                                                           self.data.reading), self.workers)):
            logits = sliding_window(model, image.to(device), size=self.patch_size, overlap=self.overlap,
                                    blend=self.blend, batch_size=self.budget.batch_size).cpu()
            if not self.data.binary:
                outputs.append(logits.argmax(0).numpy())
            elif sigmoid:
                outputs.append(torch.sigmoid(logits[0]).numpy())
            else:
                outputs.append(torch.softmax(logits, 0)[1].numpy())
            masks.append(mask.to(torch.int32).numpy())  # half the memory of int64, ignore_index included
        return outputs, masks

    def __call__(self, criterion: nn.Module, run: Run) -> Dict[str, float]:
        data, device, evaluator, sigmoid = self.data, run.device, self.evaluator, run.sigmoid
        torch.manual_seed(run.seed)
        model = UNet(data.channels, 1 if sigmoid else data.num_classes, width=self.width, depth=self.depth)
        sampler = EpochSampler(len(data.train), run.seed)
        dataset = PatchDataset(data.train, patch_size=self.patch_size, patches_per_image=self.patches_per_image,
                               channels=data.channels, reading=data.reading, seed=run.seed,
                               augment=self.augment == "flip")
        loader = patch_loader(dataset, sampler, max(1, self.budget.batch_size // self.patches_per_image),
                              self.workers)
        validated: Dict[str, List[np.ndarray]] = {}

        def batches(epoch: int):
            sampler.set_epoch(epoch)
            return loader

        def validate(model: nn.Module) -> float:
            validated["outputs"], validated["masks"] = self.predict(model, data.validation, sigmoid, device)
            return evaluator.score(validated["outputs"], validated["masks"])

        fit_batches(model, criterion, batches, len(loader), validate, self.budget, run, sigmoid=sigmoid)
        threshold = evaluator.threshold(validated["outputs"], validated["masks"])
        if run.tuning:
            return evaluator.evaluate(validated["outputs"], validated["masks"], threshold).scores
        outputs, masks = self.predict(model, data.test, sigmoid, device)
        evaluation = evaluator.evaluate(outputs, masks, threshold, per_image=True)
        evaluation.record(run)
        kept = [pair for pair, keep in zip(data.test, evaluation.kept) if keep]
        entries = [{"name": pair.name, "height": pair.height, "width": pair.width,
                    **{name: float(values[k]) for name, values in evaluation.per_image.items()}}
                   for k, pair in enumerate(kept)]
        run.artifacts.update({"outputs": outputs, "masks": masks, "threshold": threshold, "per_image": entries,
                              "images": HeldOutImages(data.test, data.channels, data.reading)})
        return evaluation.scores
