"""Which loss wins on *your* model: ``seesaw_losses.compare`` calls your own training function once per tuning
trial and final run, hands it the loss to use, and ranks the losses by the metric it returns.

    PYTHONPATH=src python examples/compare_custom_model.py             # a few minutes on a laptop CPU
    PYTHONPATH=src python examples/compare_custom_model.py --quick     # seconds: tiny budget

The model, data and loop here are the example's own: a small convolutional classifier of generated 16x16
images, 6 classes with a 50:1 long tail, AdamW for a few epochs. ``run.report`` after every epoch lets the
median pruner stop hopeless tuning trials early; the final runs are scored on a balanced held-out set.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from seesaw_losses import compare

CLASS_SIZES = (300, 150, 70, 35, 15, 6)


def images(sizes, seed: int):
    """One pattern per class (a bar at the class's angle) in noise: ``(N, 1, 16, 16)`` images, ``(N,)`` labels."""
    g = torch.Generator().manual_seed(seed)
    grid = torch.stack(torch.meshgrid(torch.linspace(-1, 1, 16), torch.linspace(-1, 1, 16), indexing="ij"))
    x, y = [], []
    for label, size in enumerate(sizes):
        angle = torch.tensor(label * 3.1416 / len(sizes))
        distance = (grid[0] * torch.cos(angle) - grid[1] * torch.sin(angle)).abs()
        pattern = (distance < 0.25).float()
        x.append(pattern + 1.2 * torch.randn(size, 1, 16, 16, generator=g))
        y.append(torch.full((size,), label))
    return torch.cat(x), torch.cat(y)


TRAIN = images(CLASS_SIZES, seed=0)
VALIDATION = images([20] * len(CLASS_SIZES), seed=1)
TEST = images([60] * len(CLASS_SIZES), seed=2)
EPOCHS = 8


def balanced_accuracy(model: nn.Module, split) -> float:
    x, y = split
    with torch.no_grad():
        predicted = model(x).argmax(1)
    return float(torch.stack([(predicted[y == c] == c).float().mean() for c in y.unique()]).mean())


def train(criterion: nn.Module, run) -> dict:
    """Your training loop: any model, any optimiser; ``criterion`` is the loss being compared."""
    torch.manual_seed(run.seed)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(16, len(CLASS_SIZES)))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    x, y = TRAIN
    order = torch.Generator().manual_seed(run.seed)
    run.history["train_loss"] = []
    for epoch in range(EPOCHS):
        model.train()
        for batch in torch.randperm(len(x), generator=order).split(64):
            loss = criterion(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        run.history["train_loss"].append(loss.item())
        model.eval()
        run.report(epoch, balanced_accuracy(model, VALIDATION))  # may stop a hopeless tuning trial here
    model.eval()
    evaluated = VALIDATION if run.tuning else TEST
    return {"balanced_accuracy": balanced_accuracy(model, evaluated),
            "accuracy": float((model(evaluated[0]).argmax(1) == evaluated[1]).float().mean())}


def main() -> None:
    global EPOCHS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny budget (2 epochs, 1 trial, 2 seeds)")
    parser.add_argument("--out", default=None, help="report folder (default: none written)")
    args = parser.parse_args()
    if args.quick:
        EPOCHS = 2
    counts = torch.bincount(TRAIN[1]).tolist()
    result = compare(train, ["ce", "seesaw", "logit_adjusted", "softmax_focal"], metric="balanced_accuracy",
                     class_counts=counts, seeds=2 if args.quick else 3, tune=1 if args.quick else 6,
                     pruner="median", epochs=EPOCHS, title="Long-tailed 16x16 images, your CNN", out=args.out,
                     progress=not args.quick)
    print(result)
    print(f"\nwinner: {result.winner}")


if __name__ == "__main__":
    main()
