"""Topology and boundary metrics of binary segmentations, per image and averaged: clDice, Betti errors, HD95,
surface Dice.

- **clDice** (Shit et al., CVPR 2021) on hard skeletons (scikit-image's ``skeletonize``): the harmonic mean of
  topology precision :math:`|S(P) \\cap T| / |S(P)|` and sensitivity :math:`|S(T) \\cap P| / |S(T)|`.
- **Betti-0 error**: ``|b0(P) - b0(T)|``, the difference in connected components (foreground 8-connected in
  2D, 26-connected in 3D; scikit-image's ``label``). **Betti-1 error** (2D only): the difference in holes,
  ``b1 = b0 - Euler number`` (scikit-image's ``euler_number``, background 4-connected).
- **HD95**: the symmetric 95th-percentile Hausdorff distance between the masks' boundary pixels (the larger of
  the two directed 95th percentiles, in pixels; SciPy's Euclidean distance transform).
- **Surface Dice** at a tolerance of ``t`` pixels (normalised surface distance, Nikolov et al., JMIR 2021): the
  share of both masks' boundary pixels that lie within ``t`` pixels of the other mask's boundary,
  ``(|{p in dP : d(p, dT) <= t}| + |{q in dT : d(q, dP) <= t}|) / (|dP| + |dT|)``. Unlike pixel Dice it does not
  count a boundary drawn one pixel off as a miss, which matters for thin outlines. Boundary pixels and distances
  are those of HD95 (MONAI's ``compute_surface_dice`` without sub-voxels gives the same values).

A boundary pixel is a foreground pixel with a background 4-neighbour (6-neighbour in 3D), outside the image
counting as background. Empty masks: both empty: clDice 1, HD95 0, surface Dice 1; one empty and not the other:
clDice 0, HD95 the image diagonal (the largest distance possible in the image), surface Dice 0. Betti numbers
of an empty mask are 0, so its Betti errors are the other mask's counts.
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

from ...transforms import np, optional_module
from .catalog import tolerance_key

METRICS = ("cldice", "betti0_error", "betti1_error", "hd95")  #: computed per image (surface Dice besides)


def cldice_score(predicted: np.ndarray, truth: np.ndarray) -> float:
    """clDice of one binary image (2D or 3D) on hard skeletons."""
    predicted, truth = predicted.astype(bool), truth.astype(bool)
    if not predicted.any() or not truth.any():
        return float(predicted.any() == truth.any())
    skeletonize = optional_module("skimage.morphology", "cldice_score").skeletonize
    skeleton_p, skeleton_t = skeletonize(predicted), skeletonize(truth)
    precision = np.count_nonzero(skeleton_p & truth) / max(np.count_nonzero(skeleton_p), 1)
    sensitivity = np.count_nonzero(skeleton_t & predicted) / max(np.count_nonzero(skeleton_t), 1)
    total = precision + sensitivity
    return float(2 * precision * sensitivity / total) if total > 0 else 0.0


def betti_numbers(mask: np.ndarray) -> List[int]:
    """``[b0]`` of a 3D mask, ``[b0, b1]`` of a 2D one (components; holes)."""
    measure = optional_module("skimage.measure", "betti_numbers")
    mask = mask.astype(bool)
    components = int(measure.label(mask, connectivity=mask.ndim).max())
    if mask.ndim != 2:
        return [components]
    return [components, components - int(measure.euler_number(mask, connectivity=2))]


def surface_dice_key(tolerance: float) -> str:
    """The metric name of surface Dice at ``tolerance`` pixels: ``"surface_dice@1px"``."""
    return tolerance_key("surface_dice", tolerance)


def boundary_distances(predicted: np.ndarray, truth: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Euclidean distances (pixels) from each boundary pixel of ``predicted`` to the nearest boundary pixel of
    ``truth``, and the other way round.

    Shape:
        - predicted, truth: ``(H, W)`` or ``(D, H, W)`` binary, both with foreground.
        - output: ``((boundary pixels of predicted,), (boundary pixels of truth,))``.
    """
    ndimage = optional_module("scipy.ndimage", "boundary_distances")

    def border(mask: np.ndarray) -> np.ndarray:
        return mask & ~ndimage.binary_erosion(mask, border_value=0)

    edge_p, edge_t = border(predicted.astype(bool)), border(truth.astype(bool))
    return ndimage.distance_transform_edt(~edge_t)[edge_p], ndimage.distance_transform_edt(~edge_p)[edge_t]


def hd95(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Symmetric 95th-percentile Hausdorff distance between the boundaries of two binary images, in pixels."""
    predicted, truth = predicted.astype(bool), truth.astype(bool)
    if not predicted.any() or not truth.any():
        return 0.0 if predicted.any() == truth.any() else float(np.sqrt(np.sum(np.square(truth.shape))))
    to_t, to_p = boundary_distances(predicted, truth)
    return float(max(np.percentile(to_t, 95), np.percentile(to_p, 95)))


def surface_dice(predicted: np.ndarray, truth: np.ndarray, tolerances: Sequence[float] = (1, 2)) -> List[float]:
    """Surface Dice (normalised surface distance) of two binary images at each tolerance, in pixels."""
    predicted, truth = predicted.astype(bool), truth.astype(bool)
    if not predicted.any() or not truth.any():
        return [float(predicted.any() == truth.any())] * len(tolerances)
    to_t, to_p = boundary_distances(predicted, truth)
    total = to_t.size + to_p.size
    return [float((np.count_nonzero(to_t <= t) + np.count_nonzero(to_p <= t)) / total) for t in tolerances]


def topology_metrics(predicted: np.ndarray, truth: np.ndarray, *, tolerances: Sequence[float] = (1, 2)
                     ) -> Tuple[Dict[str, float], Dict[str, List[float]]]:
    """:data:`METRICS` (``betti1_error`` for 2D only) and surface Dice at each of ``tolerances`` pixels
    (:func:`surface_dice_key`), averaged over the images, and per image.

    Shape:
        - predicted, truth: ``(N, H, W)`` or ``(N, D, H, W)`` binary.
        - output: ``({name: mean}, {name: [value per image]})``.
    """
    names = [name for name in METRICS if name != "betti1_error" or truth.ndim == 3]
    per_image: Dict[str, List[float]] = {name: [] for name in names + [surface_dice_key(t) for t in tolerances]}
    for p, t in zip(predicted.astype(bool), truth.astype(bool)):
        betti_errors = [abs(a - b) for a, b in zip(betti_numbers(p), betti_numbers(t))]
        per_image["cldice"].append(cldice_score(p, t))
        per_image["betti0_error"].append(float(betti_errors[0]))
        if "betti1_error" in per_image:
            per_image["betti1_error"].append(float(betti_errors[1]))
        per_image["hd95"].append(hd95(p, t))
        for tolerance, value in zip(tolerances, surface_dice(p, t, tolerances)):
            per_image[surface_dice_key(tolerance)].append(value)
    means = {name: float(np.mean(values)) if values else 0.0 for name, values in per_image.items()}
    return means, per_image


__all__ = ["METRICS", "betti_numbers", "boundary_distances", "cldice_score", "hd95", "surface_dice", "surface_dice_key",
           "topology_metrics"]
