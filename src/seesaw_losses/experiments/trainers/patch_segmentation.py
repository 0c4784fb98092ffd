"""Segmentation at native resolution: the U-Net trained on random patches, scored on whole images predicted by a
sliding window (thresholds and metrics on the images at their own sizes)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from .. import metrics, topology
from ..losses import SIGMOID
from ..patches import (BLENDS, EpochSampler, ImagePair, PatchData, PatchDataset, WholeImages, patch_loader,
                       sliding_window, whole_image_loader)
from ..unet import UNet
from ._loop import (check_budget, default_loader_workers, loss_family, optimiser, set_epoch, step_peak_mb,
                    train_step)


def _pooled(outputs: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate([output.ravel() for output in outputs])


@dataclass
class PatchSegmentationTrainer:
    """``train(criterion, run)`` for :class:`~seesaw_losses.experiments.patches.PatchData`: a fresh U-Net
    (``width``, ``depth``) seeded by ``run.seed`` trained for ``epochs`` on ``patches_per_image`` random
    ``patch_size`` patches per training image and epoch, ``batch_size`` patches a step (whole images' patches:
    ``max(1, batch_size // patches_per_image)`` images), read by ``loader_workers`` processes (None: the cores
    this process may use, or 0 in a daemonic process).

    Validation and held-out images are predicted whole by :func:`~seesaw_losses.experiments.patches.sliding_window`
    (``overlap``, ``blend``, ``batch_size`` windows at a time). Binary: the threshold of the best validation F1
    (Dice), metrics pooled over the pixels of every image at its own size, the topology metrics per image; ranks
    by :attr:`metric`. Final runs record the per-image rank and topology metrics and keep per-image entries (name, size, metrics),
    the held-out outputs and the threshold in ``run.artifacts``.
    """

    data: PatchData
    patch_size: int = 128
    patches_per_image: int = 8
    epochs: int = 20
    batch_size: int = 16
    lr: float = 1e-3
    width: int = 16
    depth: int = 3
    overlap: float = 0.5
    blend: str = "gaussian"
    loader_workers: Optional[int] = None
    name: str = "segmentation"

    def __post_init__(self) -> None:
        check_budget("PatchSegmentationTrainer", patch_size=self.patch_size, patches_per_image=self.patches_per_image,
                     epochs=self.epochs, batch_size=self.batch_size, width=self.width, depth=self.depth)
        if self.patch_size % 2**self.depth:
            raise ValueError(f"PatchSegmentationTrainer: patch_size must be a multiple of {2**self.depth} (the "
                             f"U-Net halves it {self.depth} times), got {self.patch_size}")
        if not 0 <= self.overlap < 1:
            raise ValueError(f"PatchSegmentationTrainer: overlap must be in [0, 1), got {self.overlap}")
        if self.blend not in BLENDS:
            raise ValueError(f"PatchSegmentationTrainer: blend must be one of {', '.join(BLENDS)}, got {self.blend!r}")

    @property
    def kind(self) -> str:
        """``"binary_segmentation"`` or ``"multiclass_segmentation"``, as the report's plots know them."""
        return "binary_segmentation" if self.data.binary else "multiclass_segmentation"

    @property
    def metric(self) -> str:
        """The ranking metric: Dice at the validated threshold (binary), else mIoU."""
        return "dice" if self.data.binary else "mean_iou"

    def class_counts(self) -> List[int]:
        """Training pixels per class (background first)."""
        return self.data.class_counts

    @property
    def workers(self) -> int:
        return default_loader_workers() if self.loader_workers is None else self.loader_workers

    def predict(self, model: nn.Module, pairs: Sequence[ImagePair], family: str, device: str
                ) -> Tuple[List[np.ndarray], List[np.ndarray]]:
        """Per image at its own size: the foreground probability (binary) or predicted classes, and the mask."""
        outputs, masks = [], []
        for image, mask in whole_image_loader(WholeImages(pairs, self.data.channels, self.data.reading),
                                              self.workers):
            logits = sliding_window(model, image.to(device), size=self.patch_size, overlap=self.overlap,
                                    blend=self.blend, batch_size=self.batch_size).cpu()
            if not self.data.binary:
                outputs.append(logits.argmax(0).numpy())
            elif family == SIGMOID:
                outputs.append(torch.sigmoid(logits[0]).numpy())
            else:
                outputs.append(torch.softmax(logits, 0)[1].numpy())
            masks.append(mask.to(torch.int32).numpy())  # half the memory of int64, ignore_index included
        return outputs, masks

    def scores(self, outputs: Sequence[np.ndarray], masks: Sequence[np.ndarray], threshold: Optional[float] = None
               ) -> Dict[str, float]:
        """Metrics pooled over every pixel of the images; binary ones at ``threshold`` (None: the best F1 of these
        outputs)."""
        found, truth, ignore = _pooled(outputs), _pooled(masks), self.data.ignore_index
        if not self.data.binary:
            return metrics.multiclass_segmentation(found, truth, self.data.num_classes, ignore_index=ignore)
        if threshold is None:
            threshold = metrics.best_f1_threshold(found, truth, ignore_index=ignore)
        return metrics.binary_segmentation(found, truth, threshold=threshold, ignore_index=ignore)

    def per_image(self, pairs: Sequence[ImagePair], outputs: Sequence[np.ndarray], masks: Sequence[np.ndarray],
                  threshold: Optional[float]) -> List[Dict[str, object]]:
        """One entry per image: name, height, width, the rank metric and (binary) the topology metrics."""
        entries = []
        for pair, output, mask in zip(pairs, outputs, masks):
            entry: Dict[str, object] = {"name": pair.name, "height": pair.height, "width": pair.width}
            entry[self.metric] = self.scores([output], [mask], threshold)[self.metric]
            if self.data.binary:
                scored = mask != self.data.ignore_index if self.data.ignore_index is not None else True
                means, _ = topology.topology_metrics(((output >= threshold) & scored)[None], (mask == 1)[None])
                entry.update(means)
            entries.append(entry)
        return entries

    def __call__(self, criterion: nn.Module, run) -> Dict[str, float]:
        data, device, family = self.data, run.device, loss_family(run)
        torch.manual_seed(run.seed)
        model = UNet(data.channels, 1 if family == SIGMOID else data.num_classes, width=self.width,
                     depth=self.depth).to(device).train()
        criterion = criterion.to(device).train()
        sampler = EpochSampler(len(data.train), run.seed)
        dataset = PatchDataset(data.train, patch_size=self.patch_size, patches_per_image=self.patches_per_image,
                               channels=data.channels, reading=data.reading, seed=run.seed)
        loader = patch_loader(dataset, sampler, max(1, self.batch_size // self.patches_per_image), self.workers)
        optimizer, schedule = optimiser(model, self.lr, self.epochs * len(loader))
        start = time.perf_counter()
        for epoch in range(self.epochs):
            set_epoch(criterion, epoch)
            sampler.set_epoch(epoch)
            losses = [train_step(model, criterion, optimizer, schedule, x.to(device), y.to(device), family, run.loss)
                      for x, y in loader]
            run.history.setdefault("train_loss", []).append(float(np.mean(losses)))
            outputs, masks = self.predict(model, data.validation, family, device)
            value = self.scores(outputs, masks)[self.metric]
            run.report(epoch, value)
            run.progress(f"loss {np.mean(losses):.4f}, validation {self.metric} {value:.3f}")
        seconds = time.perf_counter() - start
        threshold = metrics.best_f1_threshold(_pooled(outputs), _pooled(masks), ignore_index=data.ignore_index) \
            if data.binary else None
        pairs = data.validation if run.tuning else data.test
        if not run.tuning:
            outputs, masks = self.predict(model, pairs, family, device)
        result = self.scores(outputs, masks, threshold)
        if run.tuning:
            return result
        entries = self.per_image(pairs, outputs, masks, threshold)
        if data.binary:
            result.update({name: float(np.mean([entry[name] for entry in entries])) for name in topology.METRICS
                           if name in entries[0]})
        for name in [self.metric] + [name for name in topology.METRICS if name in entries[0]]:
            run.record_samples(name, [entry[name] for entry in entries])
        x, y = next(iter(loader))
        run.artifacts.update({"outputs": outputs, "threshold": threshold, "per_image": entries,
                              "epoch_seconds": seconds / self.epochs,
                              "peak_mb": step_peak_mb(model, criterion, x.to(device), y.to(device), family)})
        return result
