"""Checks shared by the CLI tests: PNG files that are real images, report numbers in range."""

import json

import numpy as np
from PIL import Image

from seesaw_losses.experiments.topology import UNBOUNDED


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


def load_results(path):
    document = json.loads(path.read_text())
    for name in ("segmentation", "long_tail"):
        for result in document.get(name, {}).get("results", []):
            for key, value in result["metrics"].items():
                values = value if isinstance(value, list) else [value]
                high = np.inf if key.replace("per_image_", "") in UNBOUNDED else 1.0
                assert all(0.0 <= v <= high for v in values), (name, result["loss"], key, value)
    return document
