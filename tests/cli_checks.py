"""Checks shared by the CLI tests: PNG files that are real images, report numbers in range."""

import json

import numpy as np
from PIL import Image


def assert_png(path, size):
    """``path`` is a PNG of ``size`` (width, height) pixels with drawn content, not a blank canvas."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == size, (path, image.size)
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.std() > 10, f"{path} looks blank"
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20, f"{path} has too few colours to hold a plot"


def inches(width, height):
    return round(width * 100), round(height * 100)


RATIOS = ("dice", "iou", "precision", "recall", "average_precision", "threshold", "mean_iou", "mean_dice",
          "pixel_accuracy", "accuracy")


def load_results(path):
    """``results.json``, after checking that every run's ratio metrics (Dice, IoU, accuracies...) lie in [0, 1]
    or are absent (None)."""
    document = json.loads(path.read_text())
    for name in ("segmentation", "long_tail"):
        for result in document.get(name, {}).get("results", []):
            for run in result["runs"]:
                for key, value in run["metrics"].items():
                    base = key.split("/")[0].split("@")[0]
                    if base in RATIOS or base.endswith("_accuracy"):
                        assert value is None or 0.0 <= value <= 1.0, (name, result["loss"], key, value)
    return document
