"""Built-in ``train(criterion, run)`` functions of :func:`seesaw_losses.experiments.api.compare`.

Each is a picklable dataclass holding its data and settings (so worker processes can run it), called as
``trainer(criterion, run)``: it seeds from ``run.seed``, scores on the validation split when ``run.tuning`` and on
the held-out split otherwise, trains on ``run.device``, reports the validation score every epoch
(``run.report``, so pruners act), and in final runs keeps outputs and costs in ``run.artifacts`` and per-sample
scores of the ranking metric (``run.record_samples``).
"""

from .classification import ClassificationTrainer
from .fit import Budget
from .long_tail import LongTailTrainer
from .patch_segmentation import PatchSegmentationTrainer
from .segmentation import SegmentationTrainer

__all__ = ["Budget", "ClassificationTrainer", "LongTailTrainer", "PatchSegmentationTrainer", "SegmentationTrainer"]
