"""Topology metrics of binary segmentations, per image and averaged: clDice, Betti errors, HD95.

- **clDice** (Shit et al., CVPR 2021) on hard skeletons (scikit-image's ``skeletonize``): the harmonic mean of
  topology precision :math:`|S(P) \\cap T| / |S(P)|` and sensitivity :math:`|S(T) \\cap P| / |S(T)|`.
- **Betti-0 error**: ``|b0(P) - b0(T)|``, the difference in connected components (foreground 8-connected in
  2D, 26-connected in 3D; scikit-image's ``label``). **Betti-1 error** (2D only): the difference in holes,
  ``b1 = b0 - Euler number`` (scikit-image's ``euler_number``, background 4-connected).
- **HD95**: the symmetric 95th-percentile Hausdorff distance between the masks' boundary pixels (the larger of
  the two directed 95th percentiles, in pixels; SciPy's Euclidean distance transform).

Empty masks: both empty: clDice 1, HD95 0; one empty and not the other: clDice 0, HD95 the image diagonal
(the largest distance possible in the image). Betti numbers of an empty mask are 0, so its Betti errors are the
other mask's counts.
"""

from __future__ import annotations

from typing import Dict, List, Tuple

from ..transforms import np, optional_module

METRICS = ("cldice", "betti0_error", "betti1_error", "hd95")


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


def hd95(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Symmetric 95th-percentile Hausdorff distance between the boundaries of two binary images, in pixels."""
    predicted, truth = predicted.astype(bool), truth.astype(bool)
    if not predicted.any() or not truth.any():
        return 0.0 if predicted.any() == truth.any() else float(np.sqrt(np.sum(np.square(truth.shape))))
    ndimage = optional_module("scipy.ndimage", "hd95")

    def border(mask: np.ndarray) -> np.ndarray:
        return mask & ~ndimage.binary_erosion(mask, border_value=0)

    edge_p, edge_t = border(predicted), border(truth)
    to_t = ndimage.distance_transform_edt(~edge_t)[edge_p]
    to_p = ndimage.distance_transform_edt(~edge_p)[edge_t]
    return float(max(np.percentile(to_t, 95), np.percentile(to_p, 95)))


def topology_metrics(predicted: np.ndarray, truth: np.ndarray) -> Tuple[Dict[str, float], Dict[str, List[float]]]:
    """:data:`METRICS` (``betti1_error`` for 2D only) averaged over the images, and per image.

    Shape:
        - predicted, truth: ``(N, H, W)`` or ``(N, D, H, W)`` binary.
        - output: ``({name: mean}, {name: [value per image]})``.
    """
    per_image: Dict[str, List[float]] = {name: [] for name in METRICS if name != "betti1_error" or truth.ndim == 3}
    for p, t in zip(predicted.astype(bool), truth.astype(bool)):
        betti_errors = [abs(a - b) for a, b in zip(betti_numbers(p), betti_numbers(t))]
        per_image["cldice"].append(cldice_score(p, t))
        per_image["betti0_error"].append(float(betti_errors[0]))
        if "betti1_error" in per_image:
            per_image["betti1_error"].append(float(betti_errors[1]))
        per_image["hd95"].append(hd95(p, t))
    means = {name: float(np.mean(values)) if values else 0.0 for name, values in per_image.items()}
    return means, per_image


__all__ = ["METRICS", "betti_numbers", "cldice_score", "hd95", "topology_metrics"]
