"""Built-in datasets, generated from a seed: sparse curvilinear segmentation and a long-tailed classification task.

Both are deterministic given the seed (same numbers on every machine with the same numpy), need no download, and
are shaped like the problems these losses are for: a foreground of 1-5 % of the pixels made of thin branching
structures on a textured, noisy background, and a classifier whose training set has a head-to-tail ratio of 100.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F

from .groups import shot_groups
from .splits import split_indices, stratified_split

FOREGROUND_RANGE = (0.01, 0.05)


@dataclass
class SegmentationSplit:
    """Images ``(N, C, H, W)`` float32 and masks ``(N, H, W)`` int64 (0 = background), with their names."""

    images: np.ndarray
    masks: np.ndarray
    names: List[str]

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index: np.ndarray) -> "SegmentationSplit":
        return SegmentationSplit(self.images[index], self.masks[index], [self.names[i] for i in index])


@dataclass
class SegmentationData:
    """Training, validation and held-out splits; ``num_classes == 2`` is binary segmentation (mask values 0/1).

    The models fit ``train``; ``validation`` (carved from the training data) chooses thresholds and
    hyperparameters and draws the training curves; ``test`` is held out for the reported metrics. Mask pixels
    equal to ``ignore_index`` belong to no class.
    """

    train: SegmentationSplit
    validation: SegmentationSplit
    test: SegmentationSplit
    num_classes: int
    description: str
    notes: List[str] = field(default_factory=list)
    ignore_index: Optional[int] = None

    @property
    def binary(self) -> bool:
        return self.num_classes == 2

    @property
    def channels(self) -> int:
        return self.train.images.shape[1]


@dataclass
class LongTailData:
    """Feature vectors ``(N, D)`` with labels ``(N,)``: a long-tailed training set, a validation set carved from
    the training data (stratified, every class keeps a sample) and a balanced test set."""

    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    class_counts: np.ndarray
    groups: Dict[str, List[int]]
    description: str

    @property
    def num_classes(self) -> int:
        return len(self.class_counts)


# ---------------------------------------------------------------------------------------------------- vessels


def _smooth(noise: np.ndarray, width: int) -> np.ndarray:
    """Moving average along the last axis (same length)."""
    width = min(width, len(noise))
    if width <= 1:
        return noise
    kernel = np.ones(width) / width
    return np.convolve(noise, kernel, mode="same")


def _branch(rng: np.random.Generator, start, heading: float, length: float, radius: float, contrast: float,
            jagged: bool, depth: int, out: list) -> None:
    """Append the points ``(x, y, radius, contrast)`` of one curve and, recursively, its side branches."""
    step = 0.6
    n = max(int(length / step), 4)
    turn_noise = rng.normal(0.0, 0.22 if jagged else 0.1, n)
    turning = _smooth(turn_noise, 4 if jagged else 15)
    headings = heading + np.cumsum(turning)
    x = start[0] + np.cumsum(step * np.cos(headings))
    y = start[1] + np.cumsum(step * np.sin(headings))
    taper = np.linspace(1.0, 0.45 if not jagged else 0.8, n)
    wobble = 1.0 + 0.25 * _smooth(rng.normal(0.0, 1.0, n), 9)
    radii = np.clip(radius * taper * wobble, 0.55, None)
    fading = np.clip(0.7 + 0.3 * _smooth(rng.normal(0.0, 1.6, n), 25), 0.35, 1.0)
    out.append(np.stack([x, y, radii, contrast * fading], axis=1))
    if depth == 0:
        return
    for _ in range(rng.integers(1, 4)):
        at = int(rng.integers(n // 6, max(n * 3 // 4, n // 6 + 1)))
        side = rng.choice([-1.0, 1.0])
        _branch(rng, (x[at], y[at]), headings[at] + side * rng.uniform(0.4, 1.1), length * rng.uniform(0.35, 0.7),
                radii[at] * rng.uniform(0.6, 0.9), contrast * rng.uniform(0.7, 1.0), jagged, depth - 1, out)


def _rasterize(points: np.ndarray, size: int):
    """Per-pixel coverage ``max(1 - d / r)`` (> 0 inside a structure) and darkening of a set of curve points."""
    reach = int(np.ceil(points[:, 2].max())) + 1
    offsets = np.arange(-reach, reach + 1)
    ox, oy = np.meshgrid(offsets, offsets)
    px = np.round(points[:, :1]).astype(np.int64) + ox.reshape(1, -1)
    py = np.round(points[:, 1:2]).astype(np.int64) + oy.reshape(1, -1)
    distance = np.hypot(px - points[:, :1], py - points[:, 1:2])
    coverage = 1.0 - distance / points[:, 2:3]
    darkening = points[:, 3:4] * np.sqrt(np.clip(coverage, 0.0, 1.0))
    inside = (px >= 0) & (px < size) & (py >= 0) & (py < size) & (coverage > -1.0)
    flat = (py * size + px)[inside]
    cover = np.full(size * size, -1.0)
    dark = np.zeros(size * size)
    np.maximum.at(cover, flat, coverage[inside])
    np.maximum.at(dark, flat, darkening[inside])
    return cover.reshape(size, size), dark.reshape(size, size)


def _tree(rng: np.random.Generator, size: int, jagged: bool):
    edge = rng.integers(4)
    along = rng.uniform(0.1, 0.9) * size
    starts = [(along, -1.0), (size, along), (along, size), (-1.0, along)]
    inward = [np.pi / 2, np.pi, -np.pi / 2, 0.0][edge]
    if rng.random() < 0.3:  # some structures start inside the image
        starts[edge] = tuple(rng.uniform(0.2, 0.8, 2) * size)
        inward = rng.uniform(-np.pi, np.pi)
    points: list = []
    radius = rng.uniform(0.6, 1.0) if jagged else rng.uniform(0.9, 1.8)
    _branch(rng, starts[edge], inward + rng.uniform(-0.5, 0.5), rng.uniform(0.6, 1.3) * size, radius,
            rng.uniform(0.3, 0.8), jagged, 2, points)
    return _rasterize(np.concatenate(points), size)


def _value_noise(rng: np.random.Generator, count: int, size: int, cells: int) -> np.ndarray:
    coarse = torch.from_numpy(rng.normal(0.0, 1.0, (count, 1, cells, cells)).astype(np.float32))
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)[:, 0].numpy()


def _blur(images: np.ndarray, sigma: float) -> np.ndarray:
    radius = int(np.ceil(2 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel = torch.from_numpy((taps / taps.sum()).astype(np.float32))
    x = torch.from_numpy(images.astype(np.float32))[:, None]
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1))
    return x[:, 0].numpy()


def _backgrounds(rng: np.random.Generator, count: int, size: int) -> np.ndarray:
    """Textured, unevenly lit backgrounds with dark blob distractors that are not foreground."""
    texture = (0.10 * _value_noise(rng, count, size, 4) + 0.05 * _value_noise(rng, count, size, 12)
               + 0.03 * _value_noise(rng, count, size, size // 3))
    yy, xx = np.mgrid[0:size, 0:size] / size - 0.5
    angle = rng.uniform(-np.pi, np.pi, count)[:, None, None]
    light = rng.uniform(0.05, 0.2, (count, 1, 1)) * (np.cos(angle) * xx + np.sin(angle) * yy)
    background = 0.55 + texture + light
    for k in range(count):
        for _ in range(rng.integers(1, 5)):
            cx, cy = rng.uniform(0, size, 2)
            sigma = rng.uniform(1.5, 5.0)
            background[k] -= rng.uniform(0.08, 0.3) * np.exp(-((xx * size + size / 2 - cx) ** 2
                                                                + (yy * size + size / 2 - cy) ** 2) / (2 * sigma**2))
    return background


def _vessel_image(rng: np.random.Generator, size: int):
    """One image's darkening map and mask, with its foreground fraction drawn in the middle of the 1-5 % range."""
    jagged = rng.random() < 0.4
    target = rng.uniform(0.012, 0.035)
    cover = np.full((size, size), -1.0)
    dark = np.zeros((size, size))
    low, high = FOREGROUND_RANGE
    for _ in range(40):
        tree_cover, tree_dark = _tree(rng, size, jagged)
        new_cover, new_dark = np.maximum(cover, tree_cover), np.maximum(dark, tree_dark)
        fraction = (new_cover > 0).mean()
        if fraction > high:
            continue
        cover, dark = new_cover, new_dark
        if fraction >= target:
            break
    if not low <= (cover > 0).mean() <= high:  # pragma: no cover - the loop above always lands in range
        raise RuntimeError("vessel generator: foreground fraction outside the 1-5 % range")
    return dark, (cover > 0).astype(np.int64)


def vessels(count: int, *, size: int = 64, seed: int = 0, prefix: str = "vessel") -> SegmentationSplit:
    """``count`` grayscale images of branching vessel- and crack-like structures and their binary masks.

    Structures are smooth tapering vessels (60 %) or thin jagged cracks (40 %) with contrast that fades along
    their length, drawn dark on textured, unevenly lit backgrounds with dark blob distractors, blurred and with
    Gaussian noise; a quarter of the images have the polarity flipped (bright structures). The foreground covers
    1-5 % of each image's pixels. Images are standardised per image.

    Shape:
        - images: ``(count, 1, size, size)`` float32.
        - masks: ``(count, size, size)`` int64 in ``{0, 1}``.
    """
    rng = np.random.default_rng(seed)
    background = _backgrounds(rng, count, size)
    masks = np.zeros((count, size, size), dtype=np.int64)
    images = np.empty((count, size, size))
    for k in range(count):
        dark, masks[k] = _vessel_image(rng, size)
        images[k] = background[k] - dark
    images = _blur(images, 0.6)
    images += rng.normal(0.0, 1.0, images.shape) * rng.uniform(0.02, 0.06, (count, 1, 1))
    flip = rng.random(count) < 0.25
    images[flip] = 1.0 - images[flip]
    images = (images - images.mean(axis=(1, 2), keepdims=True)) / images.std(axis=(1, 2), keepdims=True)
    names = [f"{prefix}-{k:03d}" for k in range(count)]
    return SegmentationSplit(images[:, None].astype(np.float32), masks, names)


def vessel_dataset(train: int, test: int, *, size: int = 64, seed: int = 0,
                   val_fraction: float = 0.2) -> SegmentationData:
    """Training and held-out vessel splits drawn from independent streams of the same seed; ``val_fraction``
    of the ``train`` images become the validation split."""
    train_split = vessels(train, size=size, seed=seed, prefix="train")
    test_split = vessels(test, size=size, seed=seed + 1_000_003, prefix="test")
    fit, validation = split_indices(train, val_fraction, seed)
    fraction = float(np.concatenate([train_split.masks.ravel(), test_split.masks.ravel()]).mean())
    description = (f"built-in vessels/cracks: {len(fit)} train + {len(validation)} validation + {test} held-out "
                   f"{size}x{size} images, foreground {100 * fraction:.1f}% of pixels, seed {seed}")
    return SegmentationData(train_split.subset(fit), train_split.subset(validation), test_split, num_classes=2,
                            description=description)


# ------------------------------------------------------------------------------------------------ long tail


def long_tail_counts(num_classes: int, largest: int, imbalance: float) -> np.ndarray:
    """Exponentially decaying class sizes from ``largest`` down to ``largest / imbalance``."""
    decay = imbalance ** (-np.arange(num_classes) / (num_classes - 1))
    return np.maximum(np.round(largest * decay), 1).astype(np.int64)


def long_tail(*, num_classes: int = 10, largest: int = 500, imbalance: float = 100.0, test_per_class: int = 200,
              dim: int = 16, seed: int = 0, separation: float = 3.2, val_fraction: float = 0.2) -> LongTailData:
    """A long-tailed classification task: each class a mixture of two Gaussian clusters in ``dim`` dimensions.

    Class ``c`` has ``largest * imbalance ** (-c / (C - 1))`` training samples (class 0 the largest), the test set
    is balanced; ``val_fraction`` of each class's training samples (rounded, at least one kept for training)
    form the validation set. Clusters overlap, so a classifier trained on the long-tailed set favours the head classes.
    ``separation`` is the distance of every cluster centre from the origin (noise has unit variance).
    Groups by training count (:func:`~.groups.shot_groups`): many-shot (> 100), medium-shot (20-100), few-shot
    (< 20).

    Shape:
        - train_x: ``(sum(counts) - V, dim)``, train_y ``(sum(counts) - V,)``, val_x ``(V, dim)``;
          test_x ``(C * test_per_class, dim)``.
    """
    rng = np.random.default_rng(seed)
    counts = long_tail_counts(num_classes, largest, imbalance)
    centers = rng.normal(0.0, 1.0, (num_classes, 2, dim))
    centers *= separation / np.linalg.norm(centers, axis=2, keepdims=True)

    def draw(sizes):
        labels = np.repeat(np.arange(num_classes), sizes)
        component = rng.integers(0, 2, len(labels))
        x = centers[labels, component] + rng.normal(0.0, 1.0, (len(labels), dim))
        order = rng.permutation(len(labels))
        return x[order].astype(np.float32), labels[order].astype(np.int64)

    train_x, train_y = draw(counts)
    test_x, test_y = draw(np.full(num_classes, test_per_class))
    kept, held = stratified_split(train_y, val_fraction, rng)
    counts = np.bincount(train_y[kept], minlength=num_classes)
    groups = shot_groups(counts)
    description = (f"built-in long-tailed task: {num_classes} classes, {dim}-d features, train counts "
                   f"{counts[0]}..{counts[-1]} (imbalance {counts[0] / counts[-1]:.0f}), {len(held)} "
                   f"validation samples, balanced test set of {test_per_class} per class, seed {seed}")
    return LongTailData(train_x[kept], train_y[kept], train_x[held], train_y[held], test_x, test_y, counts, groups,
                        description)
