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
from ..evaluation import metrics, topology
from ..models.sliding_window import BLENDS, sliding_window
from ..models.unet import UNet
from .fit import Budget, check_budget, default_loader_workers, fit_batches
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
    budget: Budget = field(default_factory=lambda: Budget(epochs=20, batch_size=16, lr=1e-3))
    patch_size: int = 128
    patches_per_image: int = 8
    width: int = 16
    depth: int = 3
    overlap: float = 0.5
    blend: str = "gaussian"
    loader_workers: Optional[int] = None
    tolerances: Tuple[float, ...] = (1, 2)
    name: str = "segmentation"

    def __post_init__(self) -> None:
        check_budget("PatchSegmentationTrainer", patch_size=self.patch_size, patches_per_image=self.patches_per_image,
                     epochs=self.budget.epochs, batch_size=self.budget.batch_size, width=self.width, depth=self.depth)
        if self.patch_size % 2**self.depth:
            raise ValueError(f"PatchSegmentationTrainer: patch_size must be a multiple of {2**self.depth} (the "
                             f"U-Net halves it {self.depth} times), got {self.patch_size}")
        if not 0 <= self.overlap < 1:
            raise ValueError(f"PatchSegmentationTrainer: overlap must be in [0, 1), got {self.overlap}")
        if self.blend not in BLENDS:
            raise ValueError(f"PatchSegmentationTrainer: blend must be one of {', '.join(BLENDS)}, got {self.blend!r}")

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
        for image, mask in whole_image_loader(WholeImages(pairs, self.data.channels, self.data.reading),
                                              self.workers):
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

    def image_scores(self, outputs: Sequence[np.ndarray], masks: Sequence[np.ndarray], threshold: Optional[float]
                     ) -> np.ndarray:
        """The rank metric of each image at its own size
        (:func:`~seesaw_losses.experiments.evaluation.metrics.image_scores`).

        Shape:
            - outputs, masks: one ``(H_k, W_k)`` array per image; output: ``(images,)``.
        """
        return metrics.image_scores(outputs, masks, self.data.num_classes, threshold=threshold,
                                    ignore_index=self.data.ignore_index)

    def scores(self, outputs: Sequence[np.ndarray], masks: Sequence[np.ndarray], threshold: Optional[float] = None
               ) -> Dict[str, float]:
        """Metrics pooled over every pixel of the images, binary ones at ``threshold`` (None: the best F1 of these
        outputs), and the mean per-image rank metric."""
        result = metrics.segmentation(outputs, masks, self.data.num_classes, threshold=threshold,
                                      ignore_index=self.data.ignore_index)
        threshold = result.get("threshold")  # binary: the one used, validated or the best F1 here
        result[self.metric] = float(np.nanmean(self.image_scores(outputs, masks, threshold)))
        return result

    def per_image(self, pairs: Sequence[ImagePair], outputs: Sequence[np.ndarray], masks: Sequence[np.ndarray],
                  threshold: Optional[float]) -> List[Dict[str, object]]:
        """One entry per image: name, height, width, the rank metric and (binary) the topology metrics."""
        entries = []
        for pair, output, mask, score in zip(pairs, outputs, masks, self.image_scores(outputs, masks, threshold)):
            entry: Dict[str, object] = {"name": pair.name, "height": pair.height, "width": pair.width,
                                        self.metric: float(score)}
            if self.data.binary:
                scored = mask != self.data.ignore_index if self.data.ignore_index is not None else True
                means, _ = topology.topology_metrics(((output >= threshold) & scored)[None], (mask == 1)[None],
                                                     tolerances=self.tolerances)
                entry.update(means)
            entries.append(entry)
        return entries

    def __call__(self, criterion: nn.Module, run) -> Dict[str, float]:
        data, device = self.data, run.device
        sigmoid = run.sigmoid
        torch.manual_seed(run.seed)
        model = UNet(data.channels, 1 if sigmoid else data.num_classes, width=self.width, depth=self.depth)
        sampler = EpochSampler(len(data.train), run.seed)
        dataset = PatchDataset(data.train, patch_size=self.patch_size, patches_per_image=self.patches_per_image,
                               channels=data.channels, reading=data.reading, seed=run.seed)
        loader = patch_loader(dataset, sampler, max(1, self.budget.batch_size // self.patches_per_image),
                              self.workers)
        validated: Dict[str, List[np.ndarray]] = {}

        def batches(epoch: int):
            sampler.set_epoch(epoch)
            return loader

        def validate(model: nn.Module) -> float:
            validated["outputs"], validated["masks"] = self.predict(model, data.validation, sigmoid, device)
            return self.scores(validated["outputs"], validated["masks"])[self.metric]

        fit_batches(model, criterion, batches, len(loader), validate, self.budget, run, sigmoid=sigmoid)
        outputs, masks = validated["outputs"], validated["masks"]
        threshold = metrics.best_f1_threshold(metrics.pooled(outputs), metrics.pooled(masks),
                                              ignore_index=data.ignore_index) \
            if data.binary else None
        if run.tuning:
            return self.scores(outputs, masks, threshold)
        outputs, masks = self.predict(model, data.test, sigmoid, device)
        result = self.scores(outputs, masks, threshold)
        entries = self.per_image(data.test, outputs, masks, threshold)
        if data.binary:
            result.update({name: float(np.mean([entry[name] for entry in entries])) for name in topology.METRICS
                           if name in entries[0]})
        for name in [self.metric] + [name for name in topology.METRICS if name in entries[0]]:
            run.record_samples(name, [entry[name] for entry in entries])
        run.artifacts.update({"outputs": outputs, "masks": masks, "threshold": threshold, "per_image": entries,
                              "images": HeldOutImages(data.test, data.channels, data.reading)})
        return result
