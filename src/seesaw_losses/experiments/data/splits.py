"""Seeded splits of a dataset's indices into kept and held-out parts, for every layout: at random (image/mask pairs,
patches, the generated vessels) and stratified by class (class folders, the generated long-tailed task)."""

from __future__ import annotations

from typing import Tuple, Union

import numpy as np


def split_indices(count: int, fraction: float, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """A seeded random split of ``range(count)`` into ``(kept, held out)``, sorted, each at least one long."""
    order = np.random.default_rng(seed).permutation(count)
    held = min(max(1, int(round(fraction * count))), count - 1)
    return np.sort(order[held:]), np.sort(order[:held])


def stratified_split(labels: np.ndarray, fraction: float, seed: Union[int, np.random.Generator], minimum: int = 0
                     ) -> Tuple[np.ndarray, np.ndarray]:
    """A seeded split ``(kept, held out)`` of the indices of ``labels``, sorted: ``round(fraction * n)`` of each
    class's ``n`` samples held out, at least ``minimum`` where that leaves the class half its samples, and never
    its last one (every class keeps a sample). ``seed`` may be a generator that goes on drawing afterwards."""
    rng = np.random.default_rng(seed)
    held = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        wanted = max(int(round(fraction * len(members))), min(minimum, len(members) // 2))
        take = min(wanted, len(members) - 1)
        held[rng.choice(members, take, replace=False)] = True
    return np.flatnonzero(~held), np.flatnonzero(held)
