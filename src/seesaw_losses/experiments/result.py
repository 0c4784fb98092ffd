"""What a comparison found: :class:`Comparison` (the losses ranked by one metric) and :class:`Ranked` (one loss
of it, with its runs). A leaf under the orchestration and the report: :mod:`.reporting` reads these records and
:mod:`.api` returns them as a :class:`~seesaw_losses.experiments.api.Result`, which prints and saves itself."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from . import CUSTOM
from .run import Run
from .statistics import MARGIN, LossSummary, mean_ci


@dataclass
class Ranked(LossSummary):
    """One loss of a :class:`Comparison`: its statistics (:class:`LossSummary`: ``mean``, ``ci95``, ``p_value``,
    ``tied``, ``equivalent``, ``best_fraction``, ``deficit_bound``, ``settle``), ``loss`` as given, ``config`` the
    complete ``build_loss`` string trained, ``values`` the ranking metric per seed (seed order, exactly as
    returned), ``metrics`` the mean of every returned metric, the tuning trials (``pruned`` of them pruned) and
    the final runs, one per seed."""

    loss: str = ""
    config: str = ""
    values: List[float] = field(default_factory=list)
    metrics: Dict[str, float] = field(default_factory=dict)
    trials: int = 0
    pruned: int = 0
    hyperparameters: Dict[str, Any] = field(default_factory=dict)
    runs: List[Run] = field(default_factory=list, repr=False)
    rank_metric: str = field(default="", repr=False)

    def summary(self, key: str) -> Tuple[float, float, float]:
        """``(mean, low, high)`` of metric ``key``: the ranking statistics for the ranking metric, else the
        t-interval over seeds."""
        if key == self.rank_metric:
            return (self.mean, *self.ci95)
        return mean_ci([run.metrics.get(key, math.nan) for run in self.runs])

    def costs(self) -> Dict[str, float]:
        """Seconds per run and per epoch (means over seeds; per epoch NaN when the epochs are unknown) and the
        peak memory of a training step in MB (NaN when the runs do not say)."""
        epochs = [run.artifacts["epoch_seconds"] for run in self.runs if "epoch_seconds" in run.artifacts]
        peaks = [run.artifacts.get("peak_mb", math.nan) for run in self.runs]
        peaks = [peak for peak in peaks if not math.isnan(peak)]
        return {"run_seconds": float(np.mean([run.seconds for run in self.runs])),
                "epoch_seconds": float(np.mean(epochs)) if epochs else math.nan,
                "peak_mb": float(max(peaks)) if peaks else math.nan}


@dataclass
class Comparison:
    """The losses ranked by ``metric``: ``winner`` (a complete ``build_loss`` string), ``tied`` (those not
    significantly worse, winner included), ``ranking`` (:class:`Ranked`, best first): what the report reads."""

    metric: str
    direction: str
    ranking: List[Ranked]
    winner: str
    tied: List[str]
    seeds: List[int]
    footnote: str
    title: str = "Your model"
    name: str = "comparison"
    kind: str = CUSTOM
    description: str = ""
    notes: List[str] = field(default_factory=list)
    class_counts: Optional[List[int]] = None
    ignore_index: Optional[int] = None
    settings: Dict[str, Any] = field(default_factory=dict)
    margin: float = MARGIN
    files: List[Path] = field(default_factory=list, repr=False)  #: what ``compare(out=...)`` wrote

    @property
    def tuned_trials(self) -> int:
        return max((entry.trials for entry in self.ranking), default=0)

    @property
    def winner_entry(self) -> Ranked:
        return next(entry for entry in self.ranking if entry.config == self.winner)

    def metric_keys(self) -> List[str]:
        """Every metric name the runs returned, in the order the first run has them."""
        keys: Dict[str, None] = {}
        for entry in self.ranking:
            for run in entry.runs:
                keys.update(dict.fromkeys(run.metrics))
        return list(keys)
