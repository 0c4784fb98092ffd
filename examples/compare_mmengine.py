"""``seesaw_losses.compare`` around an mmengine ``Runner``: the losses are compared on the model, loop, hooks and
evaluator of an mmengine training, the way an OpenMMLab project trains.

    PYTHONPATH=src python examples/compare_mmengine.py           # about a minute on a laptop CPU
    PYTHONPATH=src python examples/compare_mmengine.py --quick   # seconds: tiny budget

The compared loss goes into the model (``criterion``); a hook passes every validation epoch's metric to
``run.report`` so that the median pruner can stop hopeless tuning trials; the final runs evaluate the held-out
split with the same evaluator.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import uuid

import torch
from mmengine.evaluator import BaseMetric, Evaluator
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from seesaw_losses import compare

CLASS_SIZES = (400, 150, 60, 20, 8)
EPOCHS = 5


def features(sizes, seed: int) -> TensorDataset:
    """Gaussian clusters in 8 dimensions, one per class, ``sizes`` samples each."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(len(sizes), 8, generator=torch.Generator().manual_seed(0)) * 1.2
    x = torch.cat([centres[c] + torch.randn(n, 8, generator=g) for c, n in enumerate(sizes)])
    return TensorDataset(x, torch.cat([torch.full((n,), c) for c, n in enumerate(sizes)]))


TRAIN, VALIDATION, TEST = features(CLASS_SIZES, 1), features([30] * 5, 2), features([100] * 5, 3)


class Classifier(BaseModel):
    def __init__(self, criterion: nn.Module) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, len(CLASS_SIZES)))
        self.criterion = criterion

    def forward(self, inputs, labels, mode="tensor"):
        logits = self.net(inputs)
        if mode == "loss":
            return {"loss": self.criterion(logits, labels)}
        return logits.argmax(1), labels


class BalancedAccuracy(BaseMetric):
    default_prefix = ""  # the metric keeps its own name
    def process(self, data_batch, data_samples) -> None:
        predicted, labels = data_samples
        self.results.append((predicted, labels))

    def compute_metrics(self, results) -> dict:
        predicted = torch.cat([p for p, _ in results])
        labels = torch.cat([y for _, y in results])
        per_class = [(predicted[labels == c] == c).float().mean() for c in labels.unique()]
        return {"balanced_accuracy": float(torch.stack(per_class).mean())}


class ReportToCompare(Hook):
    """Every validation epoch's balanced accuracy to ``run.report`` (which may prune the trial)."""

    def __init__(self, run) -> None:
        self.run = run

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.run.report(runner.epoch, metrics["balanced_accuracy"])


def loader(dataset: TensorDataset, shuffle: bool, seed: int) -> DataLoader:
    def collate(batch):
        x, y = zip(*batch)
        return {"inputs": torch.stack(x), "labels": torch.stack(y)}

    return DataLoader(dataset, batch_size=64, shuffle=shuffle, collate_fn=collate,
                      generator=torch.Generator().manual_seed(seed))


def train(criterion: nn.Module, run) -> dict:
    """One mmengine training with ``criterion``; validation on the validation split (tuning) or the held-out
    split (final runs)."""
    torch.manual_seed(run.seed)
    evaluated = VALIDATION if run.tuning else TEST
    with tempfile.TemporaryDirectory() as work_dir:
        runner = Runner(model=Classifier(criterion), work_dir=work_dir,
                        train_dataloader=loader(TRAIN, True, run.seed),
                        val_dataloader=loader(evaluated, False, run.seed), val_evaluator=Evaluator(BalancedAccuracy()),
                        optim_wrapper={"optimizer": {"type": "AdamW", "lr": 3e-3}},
                        train_cfg={"by_epoch": True, "max_epochs": EPOCHS, "val_interval": 1}, val_cfg={},
                        custom_hooks=[ReportToCompare(run)], default_hooks={"checkpoint": None},
                        randomness={"seed": run.seed}, log_level="ERROR",
                        experiment_name=f"compare-{uuid.uuid4().hex}")  # a logger and visualizer of its own
        runner.train()
    return {"balanced_accuracy": run.history["validation"][-1]}


def main() -> None:
    global EPOCHS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny budget (1 epoch, 1 trial, 2 seeds)")
    args = parser.parse_args()
    if args.quick:
        EPOCHS = 1
    logging.getLogger("mmengine").setLevel(logging.ERROR)
    counts = [int(c) for c in torch.bincount(TRAIN.tensors[1])]
    result = compare(train, ["ce", "seesaw", "balanced_softmax"], metric="balanced_accuracy", class_counts=counts,
                     seeds=2 if args.quick else 3, tune=1 if args.quick else 4, pruner="median", epochs=EPOCHS,
                     title="mmengine Runner, long-tailed clusters", progress=not args.quick)
    print(result)
    print(f"\nwinner: {result.winner}")


if __name__ == "__main__":
    main()
