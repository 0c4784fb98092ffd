"""Surface Dice (normalised surface distance) at a tolerance in pixels: hand-built cases, a brute-force float64
reference, MONAI as a peer, and its place in the per-image topology metrics."""

import itertools

import numpy as np
import pytest
import torch

from seesaw_losses.experiments.evaluation import topology


def _reference(predicted: np.ndarray, truth: np.ndarray, tolerance: float) -> float:
    """Boundary pixels by their 4-neighbours (outside the image is background), distances by brute force."""
    def boundary(mask):
        padded = np.pad(mask, 1)
        return [(i, j) for i, j in zip(*np.nonzero(mask))
                if not (padded[i, j + 1] and padded[i + 2, j + 1] and padded[i + 1, j] and padded[i + 1, j + 2])]

    edge_p, edge_t = boundary(predicted), boundary(truth)
    if not edge_p or not edge_t:
        return float(bool(edge_p) == bool(edge_t))

    def within(points, others):
        return sum(min(np.hypot(a - c, b - d) for c, d in others) <= tolerance for a, b in points)

    return (within(edge_p, edge_t) + within(edge_t, edge_p)) / (len(edge_p) + len(edge_t))


def _line(row: int, cols: range, size: int = 10) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    mask[row, list(cols)] = True
    return mask


def test_hand_built_cases():
    truth = _line(4, range(2, 7))
    # one pixel off everywhere: pixel Dice 0, surface Dice 1 at a tolerance of 1 pixel
    assert topology.surface_dice(_line(5, range(2, 7)), truth, (0, 1, 2)) == [0.0, 1.0, 1.0]
    assert topology.surface_dice(_line(6, range(2, 7)), truth, (1, 2)) == [0.0, 1.0]
    # three pixels on the line, two drawn 2 rows below its end: prediction -> truth 0,0,0,2,2;
    # truth -> prediction 0,0,0,1,2
    predicted = _line(4, range(2, 5)) | _line(6, range(5, 7))
    assert topology.surface_dice(predicted, truth, (1, 2)) == [pytest.approx(7 / 10), 1.0]
    empty = np.zeros_like(truth)
    assert topology.surface_dice(empty, empty) == [1.0, 1.0] and topology.surface_dice(empty, truth) == [0.0, 0.0]


def test_matches_a_brute_force_float64_reference():
    rng = np.random.default_rng(0)
    for _ in range(6):
        predicted, truth = rng.random((2, 12, 12)) < 0.3
        for tolerance in (1, 1.5, 2):
            assert topology.surface_dice(predicted, truth, (tolerance,))[0] == pytest.approx(
                _reference(predicted, truth, tolerance), abs=1e-12)


def test_matches_monai():
    monai_metrics = pytest.importorskip("monai.metrics")
    rng = np.random.default_rng(1)
    predicted, truth = rng.random((2, 4, 24, 24)) < 0.2
    predicted[:, 8:16, 8:16] = truth[:, 9:17, 8:16] = True  # blobs with boundaries one pixel apart
    ours = np.array([topology.surface_dice(p, t, (1, 2)) for p, t in zip(predicted, truth)])

    def one_hot(mask):
        mask = torch.tensor(mask)
        return torch.stack([~mask, mask], dim=1).float()

    for column, tolerance in enumerate((1, 2)):
        expected = monai_metrics.compute_surface_dice(one_hot(predicted), one_hot(truth), [tolerance])
        np.testing.assert_allclose(ours[:, column], expected[:, 0].numpy(), rtol=1e-6)


def test_topology_metrics_report_surface_dice_per_image_at_each_tolerance():
    truth = np.stack([_line(4, range(2, 7)), _line(4, range(2, 7))])
    predicted = np.stack([_line(5, range(2, 7)), _line(7, range(2, 7))])
    means, per_image = topology.topology_metrics(predicted, truth)
    assert per_image["surface_dice@1px"] == [1.0, 0.0] and per_image["surface_dice@2px"] == [1.0, 0.0]
    assert means["surface_dice@1px"] == 0.5
    means, per_image = topology.topology_metrics(predicted, truth, tolerances=(3,))
    assert per_image["surface_dice@3px"] == [1.0, 1.0]
    assert not [key for key in itertools.chain(means, per_image) if key.startswith("surface_dice@1")]
