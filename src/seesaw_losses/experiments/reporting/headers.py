"""Short column headers of metric names for the tables and the plots' axes."""

from __future__ import annotations

from ..evaluation.metrics import AT_HALF, PER_CLASS
from ..evaluation.topology import SURFACE_DICE

HEADERS = {
    "dice": "Dice", "iou": "IoU", "precision": "Prec.", "recall": "Recall", "average_precision": "AP",
    "threshold": "Thr", "mean_iou": "mIoU", "mean_dice": "mDice", "pixel_accuracy": "Pixel acc",
    "balanced_accuracy": "Bal. acc", "accuracy": "Accuracy", "many_shot_accuracy": "Many",
    "medium_shot_accuracy": "Medium", "few_shot_accuracy": "Few", "cldice": "clDice", "betti0_error": "Betti0 err",
    "betti1_error": "Betti1 err", "hd95": "HD95", "image_dice": "Dice/img", "image_mean_iou": "mIoU/img",
}


def header(key: str) -> str:
    if key.startswith(SURFACE_DICE):
        return "SDice" + key[len(SURFACE_DICE) - 1:]
    base, _, rest = (key[:-len(AT_HALF)], "", "") if key.endswith(AT_HALF) else key.partition(PER_CLASS)
    name = HEADERS.get(base, base)
    if key.endswith(AT_HALF):
        return f"{name}@0.5"
    return f"{name} {rest}" if rest else name
