"""Long-tailed classification with a small MLP: the built-in trainer of ``seesaw demo``'s long-tail task."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from ..evaluation import metrics
from .. import LONG_TAIL
from ..run import SOFTMAX, Run
from ..data.generated import LongTailData
from ..models.unet import MLP
from .fit import Budget, fit, predict


@dataclass
class LongTailTrainer:
    """Train a fresh MLP per call under ``budget``; rank by balanced accuracy.

    A tuning trial returns the last epoch's validation balanced accuracy; a final run returns every held-out
    metric, records 1/0 correct per test sample with the true class as its group (so that the statistic is
    balanced accuracy) and keeps the class probabilities ``(N, C)`` in ``run.artifacts["outputs"]``.
    """

    data: LongTailData
    budget: Budget
    name: str = "long_tail"
    kind: str = LONG_TAIL
    metric: str = "balanced_accuracy"
    families: Tuple[str, ...] = (SOFTMAX,)
    ignore_index: Optional[int] = None

    @property
    def epochs(self) -> int:
        return self.budget.epochs

    def class_counts(self) -> List[int]:
        """Training samples per class."""
        return [int(c) for c in self.data.class_counts]

    def _probabilities(self, model: nn.Module, x: np.ndarray, device: str) -> np.ndarray:
        return torch.softmax(predict(model, torch.from_numpy(x), device, batch_size=4096), 1).numpy()

    def __call__(self, criterion: nn.Module, run: Run) -> Dict[str, float]:
        data, device = self.data, run.device
        torch.manual_seed(run.seed)
        model = MLP(data.train_x.shape[1], data.num_classes)

        def validate(model: nn.Module) -> float:
            predicted = self._probabilities(model, data.val_x, device).argmax(1)
            return metrics.classification(predicted, data.val_y, data.num_classes, data.groups)[self.metric]

        fit(model, criterion, torch.from_numpy(data.train_x), torch.from_numpy(data.train_y), validate,
            self.budget, run, sigmoid=False)
        if run.tuning:
            return {self.metric: run.history["validation"][-1]}
        outputs = self._probabilities(model, data.test_x, device)
        predicted = outputs.argmax(1)
        run.artifacts["outputs"] = outputs
        run.record_samples(self.metric, (predicted == data.test_y).astype(np.float64), groups=data.test_y)
        return metrics.classification(predicted, data.test_y, data.num_classes, data.groups)
