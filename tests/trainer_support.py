"""What the trainer tests share: a stand-in for ``experiments.api.Run`` that records every call, and one torch
thread per test (the machine's cores are shared)."""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import pytest
import torch


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
