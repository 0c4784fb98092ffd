"""What the trainer tests share: a stand-in for ``experiments.api.Run`` that records every call, one torch
thread per test (the machine's cores are shared), and image/mask pairs of two sizes written as PNG files."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import pytest
import torch
from PIL import Image

SIZES = [(40, 56), (64, 48)]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class StandInRun:
    """``loss``, ``seed``, ``tuning``, ``device``, ``history``, ``artifacts``, ``report``, ``record_samples``,
    ``progress`` as the trainers use them; ``reports``, ``samples`` and ``progress_lines`` keep what they got."""

    def __init__(self, loss: str, *, seed: int = 0, tuning: bool = False, device: str = "cpu") -> None:
        self.loss, self.seed, self.tuning, self.device = loss, seed, tuning, device
        self.hyperparameters: Dict[str, float] = {}
        self.trial = None
        self.history: Dict[str, List[float]] = {}
        self.artifacts: Dict[str, object] = {}
        self.reports: List[tuple] = []
        self.samples: Dict[str, tuple] = {}
        self.progress_lines: List[str] = []

    def report(self, step: int, value: float) -> None:
        self.reports.append((step, value))
        self.history.setdefault("validation", []).append(value)

    def record_samples(self, name: str, scores: Sequence[float], groups: Optional[Sequence] = None) -> None:
        self.samples[name] = (list(scores), None if groups is None else list(groups))

    def progress(self, text: str) -> None:
        self.progress_lines.append(text)


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
