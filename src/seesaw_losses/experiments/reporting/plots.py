"""The report's PNG plots (matplotlib, Agg): training curves, held-out precision-recall and predictions, per-class
bars, the classification plots. They read the results and what the first seed's runs kept in ``run.artifacts``
(``outputs``, ``masks``, ``images``, ``confusion``, ``classes``), never the data."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import BINARY
from ..evaluation.catalog import PER_CLASS, at_half_key, describe, per_class_key
from ..evaluation.metrics import pooled, precision_recall_curve
from ..result import Comparison

DPI = 100  #: PNG pixels per figure inch: a figure of (w, h) inches is a w*100 x h*100 image


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=DPI)
    _plt().close(fig)
    return path


def _colors(count: int):
    cmap = _plt().get_cmap("tab10")
    return [cmap(i % 10) for i in range(count)]


EMPHASISED = 3  #: the best losses drawn bold and coloured in the curve plots; the others thin and grey-ish


def _styles(count: int) -> List[Dict[str, object]]:
    """Line styles of ``count`` losses in rank order: the :data:`EMPHASISED` best in distinct strong colours, the
    others thin, half transparent and their colours mixed with grey (still told apart by the legend)."""
    styles = []
    for k, colour in enumerate(_colors(count)):
        if k < EMPHASISED:
            styles.append({"color": colour, "linewidth": 2.0, "alpha": 1.0, "zorder": 3})
        else:
            grey = tuple(0.55 * c + 0.45 * 0.6 for c in colour[:3])
            styles.append({"color": grey, "linewidth": 0.9, "alpha": 0.8, "zorder": 2})
    return styles


def _band(axis, epochs: np.ndarray, curves: np.ndarray, style: Dict[str, object], label: str, band: bool) -> None:
    """The median over seeds as a line; with ``band``, the range over the seeds as a light band."""
    axis.plot(epochs, np.median(curves, axis=0), label=label, **style)
    if band and curves.shape[0] > 1:
        axis.fill_between(epochs, curves.min(axis=0), curves.max(axis=0), color=style["color"], alpha=0.12,
                          linewidth=0, zorder=1)


def plot_curves(comparison: Comparison, path: Path) -> Path:
    """Training loss (relative to its first epoch) and validation score per epoch: the median over seeds, the
    range over the seeds as a light band for the best few losses."""
    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    for k, (result, style) in enumerate(zip(comparison.ranking, _styles(len(comparison.ranking)))):
        loss = np.array([run.history["train_loss"] for run in result.runs])
        loss = loss / np.where(loss[:, :1] > 0, loss[:, :1], 1.0)
        epochs = np.arange(1, loss.shape[1] + 1)
        _band(left, epochs, loss, style, result.loss, k < EMPHASISED)
        _band(right, epochs, np.array([run.history["validation"] for run in result.runs]), style, result.loss,
              k < EMPHASISED)
    seeds = len(comparison.seeds)
    spread = f"; band: range over {seeds} seeds" if seeds > 1 else ""
    left.set(xlabel="epoch", ylabel="training loss / first epoch's", yscale="log", title="Training loss")
    right.set(xlabel="epoch", ylabel=f"validation {describe(comparison.metric).header}", ylim=(0, 1),
              title=f"Validation score (line: median{spread})")
    right.legend(fontsize=7, loc="lower right", ncol=2 if len(comparison.ranking) > 5 else 1)
    for axis in (left, right):
        axis.grid(alpha=0.3)
        axis.xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(f"{comparison.title} (bold: the {min(EMPHASISED, len(comparison.ranking))} best on the held-out "
                 "split)")
    return _save(fig, path)


@dataclass
class HeldOut:
    """The held-out segmentations the plots draw: images ``(C, H, W)`` and masks ``(H, W)`` as the first seed's
    run kept them in ``run.artifacts`` (each at the size it was scored at), with the classes and ignored label."""

    images: Sequence[np.ndarray]
    masks: Sequence[np.ndarray]
    num_classes: int
    ignore_index: Optional[int]
    binary: bool


def held_out(comparison: Comparison) -> Optional[HeldOut]:
    """The :class:`HeldOut` of ``comparison``, or None when its runs kept no held-out images, masks and outputs."""
    artifacts = comparison.ranking[0].runs[0].artifacts
    if not all(key in artifacts for key in ("images", "masks", "outputs")) or not comparison.class_counts:
        return None
    return HeldOut(artifacts["images"], artifacts["masks"], len(comparison.class_counts), comparison.ignore_index,
                   comparison.kind == BINARY)


def plot_precision_recall(comparison: Comparison, data: HeldOut, path: Path) -> Path:
    """Held-out foreground precision-recall curve of every loss for the first seed, pixels pooled over every
    held-out image (each at the size it was scored at), labelled with that run's own AP; dots: the validated
    threshold (filled) and 0.5 (open)."""
    plt = _plt()
    fig, axis = plt.subplots(figsize=(6, 5), layout="constrained")
    masks = pooled(data.masks)
    seed = comparison.seeds[0]
    for result, style in zip(comparison.ranking, _styles(len(comparison.ranking))):
        run = result.runs[0]
        precision, recall, _ = precision_recall_curve(pooled(run.artifacts["outputs"]), masks,
                                                      ignore_index=data.ignore_index)
        keep = np.unique(np.linspace(0, len(recall) - 1, 600).astype(int))
        axis.plot(recall[keep], precision[keep], label=f"{result.loss} (AP {run.metrics['average_precision']:.3f})",
                  **style)
        marker = {"color": style["color"], "alpha": style["alpha"], "zorder": style["zorder"]}
        axis.plot(run.metrics["recall"], run.metrics["precision"], "o", **marker)
        axis.plot(run.metrics[at_half_key("recall")], run.metrics[at_half_key("precision")], "o", mfc="none", **marker)
    labelled = masks[masks != data.ignore_index] if data.ignore_index is not None else masks
    prevalence = float(labelled.mean())
    axis.axhline(prevalence, color="gray", linestyle=":", label=f"chance ({prevalence:.3f})")
    axis.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
    axis.set_title(f"Held-out precision-recall, first seed ({seed}), pixels pooled over the held-out images\n"
                   f"AP in the legend: this seed's (the table: mean over {len(comparison.seeds)} seed(s)); "
                   "dot: validated threshold, ring: 0.5", fontsize=8)
    axis.legend(fontsize=7, loc="lower left")
    axis.grid(alpha=0.3)
    return _save(fig, path)


ERROR_COLOURS = {"correct foreground": (1, 1, 1), "false positive": (1, 0.15, 0.15), "missed": (0, 0.8, 1),
                 "background": (0, 0, 0), "skipped (ignore_index)": (0.5, 0.5, 0.5)}


def _error_map(predicted: np.ndarray, truth: np.ndarray, skipped: np.ndarray) -> np.ndarray:
    rgb = np.zeros(truth.shape + (3,))
    rgb[predicted & truth] = ERROR_COLOURS["correct foreground"]
    rgb[predicted & ~truth] = ERROR_COLOURS["false positive"]
    rgb[~predicted & truth] = ERROR_COLOURS["missed"]
    rgb[skipped] = ERROR_COLOURS["skipped (ignore_index)"]
    return rgb


def _show_image(axis, image: np.ndarray) -> None:
    if image.shape[0] == 1:
        axis.imshow(image[0], cmap="gray")
    else:
        rgb = np.moveaxis(image[:3], 0, -1)
        low, high = rgb.min(), rgb.max()
        axis.imshow((rgb - low) / (high - low) if high > low else np.zeros_like(rgb))


def prediction_grid_size(rows: int, losses: int) -> Tuple[float, float]:
    """Figure size in inches of :func:`plot_predictions` for ``rows`` images and ``losses`` losses."""
    return 1.7 * (2 + losses), 1.8 * rows + 1.0


def plot_predictions(comparison: Comparison, data: HeldOut, path: Path, rows: int = 4) -> Path:
    """Held-out images, ground truth and every loss's prediction (first seed; binary at the validated threshold,
    errors coloured), each image at the size it was scored at and on one pixel scale, with a colour legend."""
    from matplotlib.patches import Patch

    plt = _plt()
    picks = np.linspace(0, len(data.masks) - 1, min(rows, len(data.masks))).astype(int)
    fig, axes = plt.subplots(len(picks), 2 + len(comparison.ranking),
                             figsize=prediction_grid_size(len(picks), len(comparison.ranking)), squeeze=False,
                             layout="constrained")
    cmap = _plt().get_cmap("tab20" if data.num_classes > 10 else "tab10")
    ignore = data.ignore_index

    def classes(mask: np.ndarray) -> np.ndarray:
        rgb = np.array([cmap(int(c) % cmap.N)[:3] for c in range(data.num_classes)])[np.clip(mask, 0, data.num_classes - 1)]
        if ignore is not None:
            rgb[mask == ignore] = ERROR_COLOURS["skipped (ignore_index)"]
        return rgb

    for row, index in enumerate(picks):
        truth = data.masks[index]
        skipped = truth == ignore if ignore is not None else np.zeros(truth.shape, dtype=bool)
        _show_image(axes[row, 0], data.images[index])
        axes[row, 1].imshow(_error_map(truth == 1, truth == 1, skipped) if data.binary else classes(truth),
                            interpolation="nearest")
        for column, result in enumerate(comparison.ranking, start=2):
            output = result.runs[0].artifacts["outputs"][index]
            if data.binary:
                shown = _error_map(output >= result.runs[0].metrics["threshold"], truth == 1, skipped)
            else:
                shown = classes(np.where(skipped, ignore if ignore is not None else 0, output))
            axes[row, column].imshow(shown, interpolation="nearest")
    for column, title in enumerate(["image", "ground truth"] + [r.loss for r in comparison.ranking]):
        axes[0, column].set_title(title, fontsize=8)
    height, width = np.max([data.masks[index].shape for index in picks], axis=0)
    for axis in axes.flat:  # one pixel scale in every cell: an image smaller than the largest shown looks smaller
        axis.set(xticks=[], yticks=[], xlim=(-0.5, width - 0.5), ylim=(height - 0.5, -0.5), facecolor="none")
        for spine in axis.spines.values():
            spine.set_visible(False)
    if data.binary:
        legend = [(name, colour) for name, colour in ERROR_COLOURS.items() if ignore is not None or "skipped" not in name]
    else:
        legend = [(f"class {c}", cmap(c % cmap.N)) for c in range(data.num_classes)]
        legend += [("skipped (ignore_index)", ERROR_COLOURS["skipped (ignore_index)"])] if ignore is not None else []
    fig.legend(handles=[Patch(facecolor=colour, edgecolor="gray", label=name) for name, colour in legend],
               loc="outside lower center", ncol=min(len(legend), 6), fontsize=8, frameon=False)
    return _save(fig, path)


def per_class_size(classes: int, losses: int) -> Tuple[float, float]:
    """Figure size in inches of :func:`plot_per_class`."""
    return max(7.0, 0.25 * classes * losses), 4.5


def plot_per_class(comparison: Comparison, metric: str, path: Path, class_counts: Optional[Sequence[int]] = None
                   ) -> Path:
    """Bars of a per-class metric (``"iou"``, ``"accuracy"``): one group per class, one bar per loss, error
    bars the 95 % interval over seeds."""
    plt = _plt()
    columns = [column for column in map(describe, comparison.metric_keys())
               if column.table == PER_CLASS and column.metric.key == metric]
    keys = [column.key for column in columns]
    fig, axis = plt.subplots(figsize=per_class_size(len(keys), len(comparison.ranking)), layout="constrained")
    width = 0.8 / len(comparison.ranking)
    for k, (result, color) in enumerate(zip(comparison.ranking, _colors(len(comparison.ranking)))):
        stats = np.array([result.summary(key) for key in keys])
        error = np.nan_to_num(np.abs(stats[:, 1:] - stats[:, :1]).T)
        axis.bar(np.arange(len(keys)) + (k - (len(comparison.ranking) - 1) / 2) * width, np.nan_to_num(stats[:, 0]),
                 width, yerr=error, color=color, label=result.loss, capsize=2)
    names = [column.part for column in columns]
    if class_counts is not None:
        names = [f"{name}\n({class_counts[int(name)]})" for name in names]
    axis.set_xticks(np.arange(len(keys)), names, fontsize=8)
    axis.set(xlabel="class" + (" (training samples)" if class_counts is not None else ""),
             ylabel=f"held-out {describe(metric).header}", ylim=(0, 1.02),
             title=f"Per-class {describe(metric).header} (mean over seeds, 95% interval)")
    axis.legend(fontsize=8, ncol=2)
    axis.grid(alpha=0.3, axis="y")
    return _save(fig, path)


BEST_FEW = 4  #: losses shown in the per-class accuracy against training count plot


def plot_classification(comparison: Comparison, out: Path, name: str) -> List[Path]:
    """Per-class held-out accuracy (mean over seeds) against the training count for the best few losses, and the
    winner's confusion matrix (first seed), classes by name, most training images first."""
    from .class_plots import plot_accuracy_by_count, plot_confusion_matrix

    classes, counts = comparison.winner_entry.runs[0].artifacts["classes"], comparison.class_counts
    accuracies = {entry.loss: [entry.metrics.get(per_class_key("accuracy", c), math.nan) for c in classes]
                  for entry in comparison.ranking[:BEST_FEW]}
    winner = comparison.winner_entry
    order = np.argsort(-np.asarray(counts), kind="stable")
    confusion = np.asarray(winner.runs[0].artifacts["confusion"])[np.ix_(order, order)]
    return [plot_accuracy_by_count(counts, accuracies, out / f"{name}_per_class.png"),
            plot_confusion_matrix(confusion, [f"{classes[c]} ({counts[c]})" for c in order],
                                  out / f"{name}_confusion.png",
                                  title=f"{winner.loss}, first seed (rows: share of each class)")]
