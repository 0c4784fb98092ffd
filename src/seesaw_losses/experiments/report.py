"""Ranked tables for the terminal and a report folder: PNG plots (matplotlib, Agg), ``results.json`` and CSVs."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .data import SegmentationData
from .metrics import precision_recall_curve
from .train import Run

DPI = 100  #: PNG pixels per figure inch: a figure of (w, h) inches is a w*100 x h*100 image

BINARY, MULTICLASS, LONG_TAIL = "binary_segmentation", "multiclass_segmentation", "long_tail"

#: Per task: the metric that ranks the losses, then the table's columns as (metric key, header).
COLUMNS: Dict[str, List[Tuple[str, str]]] = {
    BINARY: [("dice", "Dice/F1"), ("iou", "IoU"), ("precision", "Precision"), ("recall", "Recall"),
             ("average_precision", "AP"), ("cldice", "clDice"), ("betti0_error", "Betti0 err"),
             ("betti1_error", "Betti1 err"), ("hd95", "HD95")],
    MULTICLASS: [("mean_iou", "mIoU"), ("mean_dice", "mDice"), ("pixel_accuracy", "Pixel acc")],
    LONG_TAIL: [("balanced_accuracy", "Accuracy"), ("head_accuracy", "Head"), ("medium_accuracy", "Medium"),
                ("tail_accuracy", "Tail")],
}


@dataclass
class Comparison:
    """Every loss's run on one task, and what the reader needs to interpret them."""

    task: str
    title: str
    description: str
    runs: List[Run]
    notes: List[str] = field(default_factory=list)

    @property
    def rank_key(self) -> str:
        return COLUMNS[self.task][0][0]

    def ranked(self) -> List[Run]:
        return sorted(self.runs, key=lambda run: -float(run.metrics[self.rank_key]))


def format_table(comparison: Comparison) -> str:
    """The ranked results as an aligned text table, best first."""
    columns = COLUMNS[comparison.task]
    header = ["#", "Loss"] + [name for _, name in columns] + ["Time (s)"]
    rows = [[str(rank), run.label] + [f"{float(run.metrics[key]):.3f}" for key, _ in columns] + [f"{run.seconds:.1f}"]
            for rank, run in enumerate(comparison.ranked(), start=1)]
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(cells, widths)))

    rule = "-" * len(line(header))
    ranked_by = dict(columns)[comparison.rank_key]
    return "\n".join([f"{comparison.title} (held-out, ranked by {ranked_by})", rule, line(header), rule]
                     + [line(row) for row in rows] + [rule])


# --------------------------------------------------------------------------------------------------- files


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


def plot_curves(comparison: Comparison, path: Path) -> Path:
    """Training loss (relative to its first epoch, each loss on its own scale) and held-out score per epoch."""
    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    score_name = next(key for key in comparison.runs[0].history if key != "train_loss")
    for run, color in zip(comparison.runs, _colors(len(comparison.runs))):
        epochs = np.arange(1, len(run.history["train_loss"]) + 1)
        loss = np.asarray(run.history["train_loss"])
        left.plot(epochs, loss / loss[0] if loss[0] > 0 else loss, color=color, label=run.label)
        right.plot(epochs, run.history[score_name], color=color, marker="o", markersize=3, label=run.label)
    left.set(xlabel="epoch", ylabel="training loss / first epoch's", yscale="log", title="Training loss")
    right.set(xlabel="epoch", ylabel=score_name.replace("val_", "held-out ").replace("_", " "),
              title="Held-out score", ylim=(0, 1))
    right.legend(fontsize=8, loc="lower right")
    for axis in (left, right):
        axis.grid(alpha=0.3)
    fig.suptitle(comparison.title)
    return _save(fig, path)


def plot_precision_recall(comparison: Comparison, mask: np.ndarray, path: Path) -> Path:
    """Held-out foreground precision-recall curve of every loss; the dot is the 0.5 threshold."""
    plt = _plt()
    fig, axis = plt.subplots(figsize=(6, 5), layout="constrained")
    for run, color in zip(comparison.runs, _colors(len(comparison.runs))):
        precision, recall = precision_recall_curve(run.outputs, mask)
        keep = np.unique(np.linspace(0, len(recall) - 1, 600).astype(int))
        axis.plot(recall[keep], precision[keep], color=color,
                  label=f"{run.label} (AP {run.metrics['average_precision']:.3f})")
        axis.plot(run.metrics["recall"], run.metrics["precision"], "o", color=color)
    prevalence = float(mask.mean())
    axis.axhline(prevalence, color="gray", linestyle=":", label=f"chance ({prevalence:.3f})")
    axis.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02),
             title="Held-out precision-recall (dot: threshold 0.5)")
    axis.legend(fontsize=8, loc="lower left")
    axis.grid(alpha=0.3)
    return _save(fig, path)


def _error_map(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """RGB: white = true positive, red = false positive, cyan = false negative, black = true negative."""
    rgb = np.zeros(truth.shape + (3,))
    rgb[predicted & truth] = (1, 1, 1)
    rgb[predicted & ~truth] = (1, 0.15, 0.15)
    rgb[~predicted & truth] = (0, 0.8, 1)
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
    return 1.7 * (2 + losses), 1.8 * rows + 0.6


def plot_predictions(comparison: Comparison, data: SegmentationData, path: Path, rows: int = 4) -> Path:
    """Held-out images, ground truth and every loss's prediction (binary: errors coloured)."""
    plt = _plt()
    picks = np.linspace(0, len(data.val) - 1, min(rows, len(data.val))).astype(int)
    columns = 2 + len(comparison.runs)
    fig, axes = plt.subplots(len(picks), columns, figsize=prediction_grid_size(len(picks), len(comparison.runs)),
                             squeeze=False, layout="constrained")
    colors = "tab20" if data.num_classes > 10 else "tab10"
    for row, index in enumerate(picks):
        truth = data.val.masks[index]
        _show_image(axes[row, 0], data.val.images[index])
        if data.binary:
            axes[row, 1].imshow(truth, cmap="gray", vmin=0, vmax=1)
        else:
            axes[row, 1].imshow(truth, cmap=colors, vmin=0, vmax=data.num_classes - 1, interpolation="nearest")
        for column, run in enumerate(comparison.runs, start=2):
            output = run.outputs[index]
            if data.binary:
                axes[row, column].imshow(_error_map(output >= 0.5, truth.astype(bool)), interpolation="nearest")
            else:
                axes[row, column].imshow(output, cmap=colors, vmin=0, vmax=data.num_classes - 1,
                                         interpolation="nearest")
    for column, title in enumerate(["image", "ground truth"] + [run.label for run in comparison.runs]):
        axes[0, column].set_title(title, fontsize=8)
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
    if data.binary:
        fig.suptitle("Held-out predictions at threshold 0.5: white = correct, red = false positive, "
                     "cyan = missed", fontsize=9)
    return _save(fig, path)


def plot_per_class(comparison: Comparison, class_counts: np.ndarray, path: Path) -> Path:
    """Per-class test accuracy against the class's training count (log scale)."""
    plt = _plt()
    fig, axis = plt.subplots(figsize=(7, 4.5), layout="constrained")
    for run, color in zip(comparison.runs, _colors(len(comparison.runs))):
        axis.plot(class_counts, run.metrics["per_class_accuracy"], marker="o", color=color,
                  label=f"{run.label} (tail {run.metrics['tail_accuracy']:.2f})")
    axis.set(xscale="log", xlabel="training samples of the class (log scale)", ylabel="test accuracy of the class",
             ylim=(0, 1.02), title="Per-class accuracy against class frequency (balanced test set)")
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3, which="both")
    return _save(fig, path)


def _scalar_metrics(run: Run) -> Dict[str, float]:
    return {key: float(value) for key, value in run.metrics.items() if not isinstance(value, list)}


def write_csv(comparison: Comparison, path: Path) -> Path:
    ranked = comparison.ranked()
    keys = list(_scalar_metrics(ranked[0]))
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["rank", "loss"] + keys + ["seconds"])
        for rank, run in enumerate(ranked, start=1):
            scalars = _scalar_metrics(run)
            writer.writerow([rank, run.label] + [f"{scalars[k]:.6f}" for k in keys] + [f"{run.seconds:.2f}"])
    return path


def comparison_json(comparison: Comparison) -> Dict[str, object]:
    return {
        "title": comparison.title,
        "description": comparison.description,
        "ranked_by": comparison.rank_key,
        "notes": comparison.notes,
        "results": [
            {"rank": rank, "loss": run.label, "metrics": run.metrics, "history": run.history,
             "seconds": round(run.seconds, 3), "notes": run.notes}
            for rank, run in enumerate(comparison.ranked(), start=1)
        ],
    }


def write_report(out: Path, comparisons: Dict[str, Comparison], segmentation: Optional[SegmentationData],
                 class_counts: Optional[np.ndarray], settings: Dict[str, object]) -> List[Path]:
    """Write every plot, ``results.json`` and one CSV per task into ``out``; return the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written: List[Path] = []
    for name, comparison in comparisons.items():
        written.append(plot_curves(comparison, out / f"{name}_curves.png"))
        written.append(write_csv(comparison, out / f"{name}.csv"))
        if comparison.task in (BINARY, MULTICLASS) and segmentation is not None:
            written.append(plot_predictions(comparison, segmentation, out / f"{name}_predictions.png"))
        if comparison.task == BINARY and segmentation is not None:
            written.append(plot_precision_recall(comparison, segmentation.val.masks,
                                                 out / f"{name}_precision_recall.png"))
        if comparison.task == LONG_TAIL and class_counts is not None:
            written.append(plot_per_class(comparison, class_counts, out / f"{name}_per_class.png"))
    from .. import __version__

    document = {"seesaw_losses_version": __version__, "settings": settings,
                **{name: comparison_json(comparison) for name, comparison in comparisons.items()}}
    results = out / "results.json"
    results.write_text(json.dumps(document, indent=2))
    written.append(results)
    return written
