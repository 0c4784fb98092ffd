"""What the trainer tests share: the real ``Run`` a trainer is called with, one torch
thread per test (the machine's cores are shared), and image/mask pairs of two sizes written as PNG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from seesaw_losses.experiments.losses import parse_loss
from seesaw_losses.experiments.run import Run

SIZES = [(40, 56), (64, 48)]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_run(loss: str, *, seed: int = 0, tuning: bool = False) -> Run:
    """The :class:`Run` that ``compare`` would pass for ``loss`` (its family from the loss), outside a study."""
    return Run(seed, tuning, loss, {}, family=parse_loss(loss).family)


def write_pairs(folder: Path, count: int, seed: int = 0, sizes=SIZES) -> Path:
    """Grayscale PNG images with one or two thin bright lines, and their 0/255 PNG masks."""
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    for k in range(count):
        height, width = sizes[k % len(sizes)]
        mask = np.zeros((height, width), dtype=np.uint8)
        mask[int(rng.integers(2, height - 2)), :] = 255
        mask[:, int(rng.integers(2, width - 2))] = 255 * (k % 2)
        image = np.clip(rng.normal(80, 20, (height, width)) + 0.5 * mask, 0, 255).astype(np.uint8)
        Image.fromarray(image).save(folder / "images" / f"{k:02d}.png")
        Image.fromarray(mask).save(folder / "masks" / f"{k:02d}.png")
    return folder
