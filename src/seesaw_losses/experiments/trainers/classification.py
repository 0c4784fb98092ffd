"""Long-tailed image classification from class folders: a small CNN trained with each loss, scored with
``torchmetrics`` on balanced accuracy, accuracy, macro-F1, per-class and many/medium/few-shot accuracy, each also
after post-hoc logit adjustment (Menon et al., ICLR 2021; ``tau = 1``, from the training counts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from ...functional.logit_adjusted import adjust_logits
from .. import CLASSIFICATION
from ..evaluation import metrics
from ..data.class_folders import ClassFolderData, ClassFolderDataset, LabelledImages
from ..data.groups import shot_groups
from ..run import SOFTMAX, Run
from ..evaluation.catalog import adjusted_key, per_class_key
from ..defaults import BATCH_SIZE, EPOCHS, LR, WIDTH
from ..models.cnn import SmallCNN
from .fit import Budget, check_augment, check_budget, default_loader_workers, fit_batches, read_in_one_line

RANK_METRIC = "balanced_accuracy"


def _summary(predicted: Tensor, labels: Tensor, classes: Sequence[str], groups: Dict[str, List[int]],
             adjusted: bool) -> Tuple[Dict[str, float], np.ndarray]:
    """:func:`~seesaw_losses.experiments.evaluation.metrics.classification` and macro-F1 (``adjusted``: keyed as
    after logit adjustment), and the per-class accuracy apart."""
    from torchmetrics.functional.classification import multiclass_f1_score

    scores = metrics.classification(predicted.numpy(), labels.numpy(), len(classes), groups, classes)
    per_class = np.array([scores.pop(per_class_key("accuracy", name)) for name in classes])
    ordered = {"balanced_accuracy": scores.pop("balanced_accuracy"), "accuracy": scores.pop("accuracy"),
               "macro_f1": float(multiclass_f1_score(predicted, labels, len(classes), average="macro")), **scores}
    return {adjusted_key(key) if adjusted else key: value for key, value in ordered.items()}, per_class


def classification_scores(logits: Tensor, labels: Tensor, classes: Sequence[str], class_counts: Sequence[int]
                          ) -> Tuple[Dict[str, float], Dict[str, np.ndarray]]:
    """The metrics of one evaluated split, and the per-sample and per-class arrays behind them.

    Balanced accuracy is the mean per-class accuracy over the classes that have samples (scikit-learn's
    convention; torchmetrics' macro average would count a predicted but absent class as 0). Group accuracies
    (:data:`~seesaw_losses.experiments.data.groups.SHOT_GROUPS`, by ``class_counts``) are NaN for an empty group.
    Keys: ``balanced_accuracy``, ``accuracy``, ``macro_f1``, ``<group>_accuracy``, the same ending in
    ``_adjusted`` after logit adjustment, and ``accuracy/<class name>``.

    Shape:
        - logits: ``(N, C)``; labels: ``(N,)``; class_counts: ``(C,)``.
        - arrays: ``correct`` and ``correct_adjusted`` ``(N,)`` 0/1, ``per_class`` and ``per_class_adjusted``
          ``(C,)``, ``confusion`` ``(C, C)`` (rows: true class).
    """
    from torchmetrics.functional.classification import multiclass_confusion_matrix

    groups = shot_groups(class_counts)
    predicted = logits.argmax(1)
    adjusted = adjust_logits(logits, torch.as_tensor(class_counts)).argmax(1)
    result, per_class = _summary(predicted, labels, classes, groups, False)
    more, per_class_adjusted = _summary(adjusted, labels, classes, groups, True)
    result.update(more)
    result.update({per_class_key("accuracy", name): float(value) for name, value in zip(classes, per_class)})
    arrays = {
        "correct": (predicted == labels).double().numpy(),
        "correct_adjusted": (adjusted == labels).double().numpy(),
        "per_class": per_class,
        "per_class_adjusted": per_class_adjusted,
        "confusion": multiclass_confusion_matrix(predicted, labels, len(classes)).numpy(),
    }
    return result, arrays


def _flip_half(x: Tensor, generator: torch.Generator) -> Tensor:
    """Each image mirrored left-right with probability 1/2."""
    flip = torch.rand(len(x), generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


@dataclass
class ClassificationTrainer:
    """``train(criterion, run)`` for class-folder data: a fresh :class:`SmallCNN` seeded by ``run.seed`` trained
    under ``budget`` (:func:`~seesaw_losses.experiments.trainers.fit.fit_batches`), images read on demand by
    ``loader_workers`` processes (None: the cores this process may use, or 0 in a daemonic process), each
    training image mirrored left-right at random with ``augment="flip"`` (``"none"``: as read). Scores the
    validation split every epoch (``run.report``) and returns the metrics of :func:`classification_scores` on the
    validation split (tuning trials) or the held-out split (final runs, which also record per-sample correctness
    grouped by true class and keep the confusion matrix and per-class accuracy in ``run.artifacts``)."""

    data: ClassFolderData
    budget: Budget = field(default_factory=lambda: Budget(EPOCHS, BATCH_SIZE["classification"], LR))
    width: int = WIDTH["classification"]
    loader_workers: Optional[int] = None
    augment: str = "flip"
    name: str = CLASSIFICATION
    kind: str = CLASSIFICATION
    metric: str = RANK_METRIC
    families: Tuple[str, ...] = (SOFTMAX,)
    ignore_index: Optional[int] = None

    def __post_init__(self) -> None:
        check_budget("ClassificationTrainer", epochs=self.budget.epochs, batch_size=self.budget.batch_size,
                     width=self.width)
        check_augment("ClassificationTrainer", self.augment)

    @property
    def epochs(self) -> int:
        return self.budget.epochs

    def class_counts(self) -> List[int]:
        """Training images per class, in the order of ``data.classes``."""
        return self.data.class_counts.tolist()

    def _loader(self, images: LabelledImages, seed: Optional[int] = None) -> DataLoader:
        workers = default_loader_workers() if self.loader_workers is None else self.loader_workers
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        dataset = ClassFolderDataset(images, self.data.channels, self.data.image_size)
        return DataLoader(dataset, batch_size=self.budget.batch_size, shuffle=seed is not None, generator=generator,
                          num_workers=workers, persistent_workers=workers > 0)

    def _logits(self, model: nn.Module, loader: DataLoader, device: str) -> Tuple[Tensor, Tensor]:
        model.eval()
        with torch.no_grad():
            pairs = [(model(x.to(device)).float().cpu(), y) for x, y in read_in_one_line(loader)]
        model.train()
        return torch.cat([logits for logits, _ in pairs]), torch.cat([labels for _, labels in pairs])

    def __call__(self, criterion: nn.Module, run: Run) -> Dict[str, float]:
        data, device, counts = self.data, run.device, self.class_counts()
        torch.manual_seed(run.seed)
        model = SmallCNN(data.channels, data.num_classes, width=self.width)
        train_loader, validation_loader = self._loader(data.train, seed=run.seed), self._loader(data.validation)
        generator = torch.Generator().manual_seed(run.seed)
        last: Dict[str, float] = {}

        def batches(epoch: int):
            if self.augment == "none":
                return train_loader
            return ((_flip_half(x, generator), y) for x, y in train_loader)

        def validate(model: nn.Module) -> float:
            last.update(classification_scores(*self._logits(model, validation_loader, device), data.classes,
                                              counts)[0])
            return last[RANK_METRIC]

        fit_batches(model, criterion, batches, len(train_loader), validate, self.budget, run, sigmoid=False)
        if run.tuning:
            return dict(last)
        logits, labels = self._logits(model, self._loader(data.test), device)
        scores, arrays = classification_scores(logits, labels, data.classes, counts)
        groups = labels.numpy()
        run.record_samples(RANK_METRIC, arrays["correct"], groups)
        run.record_samples(adjusted_key(RANK_METRIC), arrays["correct_adjusted"], groups)
        run.artifacts.update({
            "outputs": torch.softmax(logits, 1).numpy(), "labels": groups, "classes": list(data.classes),
            "class_counts": counts, "confusion": arrays["confusion"],
            "per_class_accuracy": dict(zip(data.classes, arrays["per_class"].tolist())),
            "per_class_accuracy_adjusted": dict(zip(data.classes, arrays["per_class_adjusted"].tolist())),
        })
        return scores
