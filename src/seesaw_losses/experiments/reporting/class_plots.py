"""Plots of a classification comparison (matplotlib, Agg): per-class accuracy against the training count, and the
winner's confusion matrix. They take plain arrays and dicts, so any trainer's artifacts can feed them."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

DPI = 120
LABELLED_CLASSES = 30  #: up to this many classes, the confusion matrix names every class on its axes


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_accuracy_by_count(class_counts: Sequence[int], accuracies: Mapping[str, Sequence[float]], path: Path,
                           *, title: str = "Per-class held-out accuracy against training images") -> Path:
    """One series per loss (in the mapping's order, e.g. the best few): each class's accuracy at its training
    count on a log axis, joined in order of count, with the ImageNet-LT group bounds (20 and 100) marked.

    Shape:
        - class_counts: ``(C,)``; accuracies: ``{loss: (C,)}`` (NaN: a class without held-out images, left out).
    """
    plt = _plt()
    counts = np.asarray(class_counts, dtype=np.float64)
    order = np.argsort(counts, kind="stable")
    fig, axis = plt.subplots(figsize=(7, 4.5), layout="constrained")
    for loss, values in accuracies.items():
        values = np.asarray(values, dtype=np.float64)[order]
        shown = ~np.isnan(values)
        axis.plot(counts[order][shown], values[shown], marker="o", markersize=4, linewidth=1.2, label=loss)
    for bound in (20, 100):
        if counts.min() < bound < counts.max():
            axis.axvline(bound, color="gray", linestyle=":", linewidth=1)
    axis.set_xscale("log")
    axis.set(xlabel="training images of the class (log scale)", ylabel="held-out accuracy", ylim=(-0.02, 1.02),
             title=title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return Path(path)


def plot_confusion_matrix(confusion: np.ndarray, classes: Sequence[str], path: Path, *,
                          title: str = "Confusion matrix (rows: true class, share of its images)") -> Path:
    """The confusion matrix normalised by row (each true class's images sum to 1), classes in the given order
    (e.g. by training count), named on the axes up to :data:`LABELLED_CLASSES` classes.

    Shape:
        - confusion: ``(C, C)`` counts, rows the true class, columns the predicted one.
    """
    plt = _plt()
    confusion = np.asarray(confusion, dtype=np.float64)
    rows = confusion.sum(axis=1, keepdims=True)
    shares = np.divide(confusion, rows, out=np.zeros_like(confusion), where=rows > 0)
    side = min(12.0, 3.0 + 0.35 * len(classes))
    fig, axis = plt.subplots(figsize=(side + 1.2, side), layout="constrained")
    image = axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=axis, shrink=0.8)
    if len(classes) <= LABELLED_CLASSES:
        ticks = np.arange(len(classes))
        axis.set_xticks(ticks, classes, rotation=90, fontsize=7)
        axis.set_yticks(ticks, classes, fontsize=7)
    axis.set(xlabel="predicted class", ylabel="true class", title=title)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return Path(path)
