"""Segmentation at native resolution: random patches for training, whole images read one at a time.

As in nnU-Net (Isensee et al., Nature Methods 2021): every epoch draws ``patches_per_image`` random ``P x P``
patches from each training image, a third of them centred on a random foreground pixel (thin structures are a
few percent of the pixels, so uniform patches would mostly show background); images smaller than ``P`` are padded
(image with 0, the mean after standardisation; mask with background, or ``ignore_index`` when given). Whole images
of any size are read one at a time for :mod:`~seesaw_losses.experiments.models.sliding_window` prediction, so
metrics are computed at the images' own sizes.

Nothing is loaded up front: :func:`scan_pairs` reads each pair once to check it and count its pixels, and
:class:`PatchDataset` reads an image when a ``DataLoader`` worker asks for it, so the memory of a run grows with the
batch, not with the number of images.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from .. import DataError
from .class_folders import check_files
from .pairs import MaskReading, image_channels_first, mask_indices, pair_files, read_array, standardised
from .splits import split_indices

FOREGROUND_SHARE = 1 / 3  #: the share of training patches centred on a foreground pixel (nnU-Net's 0.33)


@dataclass(frozen=True)
class ImagePair:
    """One image/mask pair on disk and what the scan found: size, channels, pixels per class."""

    name: str
    image: Path
    mask: Path
    height: int
    width: int
    channels: int
    class_pixels: Tuple[int, ...]


@dataclass
class PatchData:
    """Training, validation and held-out pairs (read on demand); ``num_classes == 2`` is binary."""

    train: List[ImagePair]
    validation: List[ImagePair]
    test: List[ImagePair]
    num_classes: int
    channels: int
    description: str
    notes: List[str] = field(default_factory=list)
    reading: MaskReading = MaskReading()

    @property
    def binary(self) -> bool:
        return self.num_classes == 2

    @property
    def ignore_index(self) -> Optional[int]:
        return self.reading.ignore_index

    @property
    def class_counts(self) -> List[int]:
        """Training pixels per class (background first): what ``pos_weight`` and class weights are derived from."""
        counts = np.zeros(self.num_classes, dtype=np.int64)
        for pair in self.train:
            counts[:len(pair.class_pixels)] += pair.class_pixels
        return counts.tolist()


def read_pair(pair: ImagePair, reading: MaskReading, channels: int) -> Tuple[Tensor, Tensor]:
    """A pair's image standardised ``(channels, H, W)`` float32 and its mask ``(H, W)`` int64."""
    image = image_channels_first(read_array(pair.image, mask=False), pair.image)
    mask = mask_indices(read_array(pair.mask, mask=True), pair.mask, reading)
    return standardised(image, channels), torch.from_numpy(mask)


def scan_pair(pair: Tuple[str, Path, Path], reading: MaskReading) -> ImagePair:
    """Read one ``(name, image, mask)`` pair, check it and keep only its :class:`ImagePair`."""
    name, image_path, mask_path = pair
    image = image_channels_first(read_array(image_path, mask=False), image_path)
    mask = mask_indices(read_array(mask_path, mask=True), mask_path, reading)
    if mask.shape != image.shape[1:]:
        raise DataError(f"mask {mask_path} is {mask.shape[0]}x{mask.shape[1]} (HxW) but its image {image_path} is "
                        f"{image.shape[1]}x{image.shape[2]}; a mask must match its image")
    labelled = mask[mask != reading.ignore_index] if reading.ignore_index is not None else mask
    pixels = tuple(int(n) for n in np.bincount(labelled.ravel(), minlength=2))
    return ImagePair(name, image_path, mask_path, mask.shape[0], mask.shape[1], image.shape[0], pixels)


def scan_pairs(images: Path, masks: Path, reading: MaskReading, skipped: List[Path], workers: int = 0
               ) -> List[ImagePair]:
    """Every pair of two folders read once and checked by ``workers`` processes (:func:`scan_pair`), nothing kept
    but its :class:`ImagePair`; the first problem in file order is raised as a :class:`DataError`."""
    return check_files(partial(scan_pair, reading=reading), pair_files(images, masks, skipped), workers)


def load_patch_data(images: Path, masks: Path, *, patch_size: int, test_images: Optional[Path] = None,
                    test_masks: Optional[Path] = None, test_fraction: float = 0.2, val_fraction: float = 0.2,
                    seed: int = 0, reading: MaskReading = MaskReading(), workers: int = 0) -> PatchData:
    """The user's pairs as training, validation and held-out splits at their own sizes (none resized), every
    pair checked here, before any training; splits as :func:`~seesaw_losses.experiments.data.pairs.load_user_data`."""
    if (test_images is None) != (test_masks is None):
        raise DataError("give both test_images= and test_masks=, or neither (then test_fraction= splits the "
                        "data)")
    skipped: List[Path] = []
    notes: List[str] = []
    train = scan_pairs(images, masks, reading, skipped, workers)
    needed = 2 if test_images is not None else 3
    if len(train) < needed:
        raise DataError(f"need at least {needed} image/mask pairs for training, validation and held-out splits, "
                        f"found {len(train)}; add images or give test_images= and test_masks=")
    if test_images is not None:
        test = scan_pairs(test_images, test_masks, reading, skipped, workers)
    else:
        kept, held = split_indices(len(train), test_fraction, seed)
        train, test = [train[k] for k in kept], [train[k] for k in held]
        notes.append(f"held out: {len(test)} of {len(train) + len(test)} pairs at random (seed {seed})")
    kept, held = split_indices(len(train), val_fraction, seed + 1)
    train, validation = [train[k] for k in kept], [train[k] for k in held]
    notes.append(f"validation: {len(validation)} of the {len(train) + len(validation)} training pairs, predicted "
                 "whole (thresholds, tuning, training curves)")
    if skipped:
        notes.append(f"skipped {len(skipped)} hidden file(s): {', '.join(sorted({p.name for p in skipped})[:4])}")
    every = train + validation + test
    small = [pair.name for pair in every if min(pair.height, pair.width) < patch_size]
    if small:
        notes.append(f"{len(small)} image(s) smaller than {patch_size}x{patch_size} padded to it (image 0 after "
                     f"standardising, mask background or ignore_index): {', '.join(small[:4])}"
                     f"{', ...' if len(small) > 4 else ''}")
    num_classes = max(2, max(len(pair.class_pixels) for pair in every))
    channels = max(pair.channels for pair in every)
    data = PatchData(train, validation, test, num_classes, channels, "", notes, reading)
    counts = data.class_counts
    sizes = sorted({(pair.height, pair.width) for pair in every})
    shown = ", ".join(f"{h}x{w}" for h, w in sizes[:4]) + (", ..." if len(sizes) > 4 else "")
    kind = "binary" if data.binary else f"{num_classes}-class index"
    data.description = (f"{images}: {len(train)} train + {len(validation)} validation + {len(test)} held-out pairs "
                        f"at their own sizes ({shown}), {kind} masks, trained on {patch_size}x{patch_size} patches, "
                        f"foreground {100 * sum(counts[1:]) / max(sum(counts), 1):.1f}% of training pixels")
    return data


# --------------------------------------------------------------------------------------------------- patches


def crop(array: Tensor, top: int, left: int, size: int, fill: float) -> Tensor:
    """The ``size x size`` window of ``array (..., H, W)`` at ``(top, left)``; the part outside is ``fill``.

    Shape:
        - array: ``(..., H, W)``; output: ``(..., size, size)``, same dtype.
    """
    height, width = array.shape[-2:]
    out = array.new_full(array.shape[:-2] + (size, size), fill)
    y0, y1 = max(top, 0), min(top + size, height)
    x0, x1 = max(left, 0), min(left + size, width)
    if y1 > y0 and x1 > x0:
        out[..., y0 - top:y1 - top, x0 - left:x1 - left] = array[..., y0:y1, x0:x1]
    return out


def foreground_patches(count: int, rng: np.random.Generator) -> int:
    """How many of ``count`` patches are centred on foreground: a third, the fraction drawn at random."""
    whole, rest = divmod(count * FOREGROUND_SHARE, 1)
    return int(whole) + int(rng.random() < rest)


def sample_patches(image: Tensor, mask: Tensor, *, size: int, count: int, rng: np.random.Generator,
                   ignore_index: Optional[int] = None, augment: bool = True) -> Tuple[Tensor, Tensor, List[bool]]:
    """``count`` random ``size x size`` patches of one image and its mask, each flipped and turned at random
    when ``augment`` (the same patches otherwise, as they lie in the image).

    The first :func:`foreground_patches` of them are centred on a random foreground pixel (when the mask has
    any); the others lie anywhere the image covers the patch (a smaller image anywhere inside it).

    Shape:
        - image: ``(C, H, W)``; mask: ``(H, W)``.
        - output: patches ``(count, C, size, size)``, masks ``(count, size, size)``, and per patch whether it
          was centred on foreground.
    """
    height, width = mask.shape
    foreground = (mask > 0) & (mask != ignore_index) if ignore_index is not None else mask > 0
    points = torch.nonzero(foreground)
    centred = foreground_patches(count, rng) if len(points) else 0
    fill = 0 if ignore_index is None else ignore_index
    images, masks, flags = [], [], []
    for k in range(count):
        if k < centred:
            y, x = points[int(rng.integers(len(points)))].tolist()
            top, left = y - size // 2, x - size // 2
        else:
            top = int(rng.integers(min(0, height - size), max(0, height - size) + 1))
            left = int(rng.integers(min(0, width - size), max(0, width - size) + 1))
        turns, flip = int(rng.integers(4)), bool(rng.integers(2))
        turns, flip = (turns, flip) if augment else (0, False)
        patch = [crop(image, top, left, size, 0.0), crop(mask, top, left, size, fill)]
        patch = [p.flip(-1) if flip else p for p in patch]
        images.append(patch[0].rot90(turns, (-2, -1)))
        masks.append(patch[1].rot90(turns, (-2, -1)))
        flags.append(k < centred)
    return torch.stack(images), torch.stack(masks), flags


class EpochSampler(Sampler):
    """Yields ``(epoch, index)`` over ``range(count)``, in a fresh order per epoch seeded by ``(seed, epoch)``
    (``shuffle=False``: in order); the epoch travels with the index, so persistent workers see it."""

    def __init__(self, count: int, seed: int, shuffle: bool = True) -> None:
        self.count, self.seed, self.shuffle, self.epoch = count, seed, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.count) if self.shuffle \
            else np.arange(self.count)
        return iter([(self.epoch, int(k)) for k in order])


class PatchDataset(Dataset):
    """Item ``(epoch, k)``: ``patches_per_image`` random patches of training pair ``k`` and their masks, drawn
    from a generator seeded by ``(seed, epoch, k)``: the same patches for the same run seed whatever the workers.

    Shape:
        - item: ``((patches_per_image, C, P, P) float32, (patches_per_image, P, P) int64)``.
    """

    def __init__(self, pairs: Sequence[ImagePair], *, patch_size: int, patches_per_image: int, channels: int,
                 reading: MaskReading = MaskReading(), seed: int = 0, augment: bool = True) -> None:
        self.pairs, self.patch_size, self.patches_per_image = pairs, patch_size, patches_per_image
        self.channels, self.reading, self.seed, self.augment = channels, reading, seed, augment

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, item: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
        epoch, k = item
        image, mask = read_pair(self.pairs[k], self.reading, self.channels)
        rng = np.random.default_rng([self.seed, epoch, k])
        patches, masks, _ = sample_patches(image, mask, size=self.patch_size, count=self.patches_per_image,
                                           rng=rng, ignore_index=self.reading.ignore_index, augment=self.augment)
        return patches, masks


class WholeImages(Dataset):
    """Item ``k``: pair ``k`` read whole, ``(image (channels, H, W), mask (H, W))``."""

    def __init__(self, pairs: Sequence[ImagePair], channels: int, reading: MaskReading = MaskReading()) -> None:
        self.pairs, self.channels, self.reading = pairs, channels, reading

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, k: int) -> Tuple[Tensor, Tensor]:
        return read_pair(self.pairs[k], self.reading, self.channels)


class HeldOutImages(Sequence):
    """Image ``k`` of ``pairs`` read whole when asked for, ``(channels, H, W)`` float32 as the model saw it: what
    the report's prediction plots draw, without holding every held-out image in memory."""

    def __init__(self, pairs: Sequence[ImagePair], channels: int, reading: MaskReading) -> None:
        self.pairs, self.channels, self.reading = pairs, channels, reading

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, k: int) -> np.ndarray:
        return read_pair(self.pairs[k], self.reading, self.channels)[0].numpy()


def _concatenate(batch: Sequence[Tuple[Tensor, Tensor]]) -> Tuple[Tensor, Tensor]:
    return torch.cat([images for images, _ in batch]), torch.cat([masks for _, masks in batch])


def patch_loader(dataset: PatchDataset, sampler: EpochSampler, images_per_batch: int, workers: int) -> DataLoader:
    """Batches of ``images_per_batch * patches_per_image`` patches, read by ``workers`` processes."""
    return DataLoader(dataset, batch_size=images_per_batch, sampler=sampler, collate_fn=_concatenate,
                      num_workers=workers, persistent_workers=workers > 0)


def whole_image_loader(dataset: WholeImages, workers: int) -> DataLoader:
    """One whole image at a time, in order, read by ``workers`` processes."""
    return DataLoader(dataset, batch_size=None, num_workers=workers)
