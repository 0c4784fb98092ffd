"""The one evaluator of held-out segmentations that every segmentation trainer calls: pooled metrics, the per-image
ranking metric, and (binary) topology and surface Dice per image, on images of any sizes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import metrics, topology


@dataclass
class Evaluation:
    """What :meth:`SegmentationEvaluator.evaluate` found: ``scores`` (pooled metrics and the ranking metric's mean),
    ``per_image`` (metric name -> one value per kept image), ``kept`` (the images with a scored pixel, the only
    ones a per-image metric is defined on; the same images in every run, as they depend on the masks alone) and
    ``absent`` (classes in neither the masks nor the predictions: left out of mIoU and mean Dice)."""

    scores: Dict[str, float]
    per_image: Dict[str, np.ndarray] = field(default_factory=dict)
    kept: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    absent: List[int] = field(default_factory=list)

    def record(self, run) -> None:
        """Give ``run`` the per-image values (the statistics' samples) and the absent classes (a report note)."""
        for name, values in self.per_image.items():
            run.record_samples(name, values)
        run.artifacts["absent_classes"] = list(self.absent)


@dataclass
class SegmentationEvaluator:
    """Scores held-out outputs against masks: binary (``num_classes == 2``, outputs are foreground probabilities)
    or multi-class (outputs are class indices), pixels equal to ``ignore_index`` left out, surface Dice at
    ``tolerances`` pixels."""

    num_classes: int
    ignore_index: Optional[int] = None
    tolerances: Tuple[float, ...] = (1, 2)

    @property
    def binary(self) -> bool:
        return self.num_classes == 2

    @property
    def metric(self) -> str:
        """The ranking metric: mean per-image Dice at the validated threshold (binary), else mean per-image mIoU."""
        return metrics.image_rank_metric(self.binary)

    def threshold(self, outputs: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> Optional[float]:
        """The threshold of the best F1 of these outputs, pixels pooled (binary), else None."""
        if not self.binary:
            return None
        return metrics.best_f1_threshold(metrics.pooled(outputs), metrics.pooled(masks), ignore_index=self.ignore_index)

    def _scored(self, mask: np.ndarray) -> np.ndarray:
        return mask != self.ignore_index if self.ignore_index is not None else np.ones(mask.shape, dtype=bool)

    def _ranking(self, outputs: Sequence[np.ndarray], masks: Sequence[np.ndarray], threshold: Optional[float]
                 ) -> Tuple[np.ndarray, np.ndarray]:
        """The ranking metric of each kept image, and which images are kept (those with a scored pixel)."""
        kept = np.array([bool(self._scored(mask).any()) for mask in masks])
        values = metrics.image_scores(outputs, masks, self.num_classes, threshold=threshold,
                                      ignore_index=self.ignore_index)
        return values[kept], kept

    def score(self, outputs: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> float:
        """The ranking metric alone, binary at the best-F1 threshold of these outputs: the validation score of
        every epoch (no pooled metric computed)."""
        values, _ = self._ranking(outputs, masks, self.threshold(outputs, masks))
        return float(values.mean()) if len(values) else float("nan")

    def evaluate(self, outputs: Sequence[np.ndarray], masks: Sequence[np.ndarray], threshold: Optional[float] = None,
                 *, per_image: bool = False) -> Evaluation:
        """Pooled metrics at ``threshold`` (None: the best F1 of these outputs) and the ranking metric, the mean
        over the images with a scored pixel; with ``per_image`` (final runs) the per-image values of the ranking
        metric and, binary, of the topology metrics, whose means join the scores.

        Shape:
            - outputs, masks: ``(N, H, W)`` arrays or sequences of ``(H_k, W_k)`` arrays.
        """
        scores = metrics.segmentation(outputs, masks, self.num_classes, threshold=threshold,
                                      ignore_index=self.ignore_index)
        threshold = scores.get("threshold")  # binary: the one used, given or the best F1 of these outputs
        ranking, kept = self._ranking(outputs, masks, threshold)
        scores[self.metric] = float(ranking.mean()) if len(ranking) else float("nan")
        absent = metrics.absent_classes(scores)
        if not per_image:
            return Evaluation(scores, kept=kept, absent=absent)
        values = {self.metric: ranking}
        if self.binary:
            shown = [(output, mask) for output, mask, keep in zip(outputs, masks, kept) if keep]
            found = [topology.topology_metrics(((output >= threshold) & self._scored(mask))[None], (mask == 1)[None],
                                               tolerances=self.tolerances)[1] for output, mask in shown]
            for name in found[0] if found else ():
                values[name] = np.array([image[name][0] for image in found], dtype=np.float64)
                scores[name] = float(values[name].mean())
        return Evaluation(scores, values, kept, absent)
