"""Classes grouped by training count, one vocabulary for every layout: ImageNet-LT's many-, medium- and few-shot
classes (> 100, 20-100 and < 20 training samples)."""

from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np

SHOT_GROUPS = ("many_shot", "medium_shot", "few_shot")  #: > 100, 20-100 and < 20 training samples


def shot_groups(counts: Sequence[int]) -> Dict[str, List[int]]:
    """The classes of each ImageNet-LT group by training count: ``many_shot`` (> 100), ``medium_shot`` (20-100),
    ``few_shot`` (< 20)."""
    counts = np.asarray(counts)
    bands = (counts > 100, (counts >= 20) & (counts <= 100), counts < 20)
    return {name: np.flatnonzero(band).tolist() for name, band in zip(SHOT_GROUPS, bands)}
