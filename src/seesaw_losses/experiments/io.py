"""Reading the user's images and masks for ``seesaw compare``, with a clear :class:`InputError` for every problem.

Images and masks are paired by file name without extension (``a.png`` with ``a.npy``). Images: grayscale or
RGB(A) PNG/JPEG/TIFF, or ``.npy`` arrays ``(H, W)``, ``(H, W, C)`` or ``(C, H, W)``. Masks: binary (0/1, or
0/255 which is read as 0/1) or class indices ``0..K-1`` (``K <= 64``), the same height and width as their image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from . import InputError
from .data import SegmentationData, SegmentationSplit

EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy")
MAX_CLASSES = 64


def _list(folder: Path, role: str) -> Dict[str, Path]:
    if not folder.exists():
        raise InputError(f"{role} folder {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise InputError(f"{role} folder {str(folder)!r} is not a folder")
    files: Dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in EXTENSIONS:
            if path.stem in files:
                raise InputError(f"{role} folder has two files named {path.stem!r}: {files[path.stem].name} and "
                                 f"{path.name}; keep one per name")
            files[path.stem] = path
    if not files:
        raise InputError(f"{role} folder {str(folder)!r} has no image files "
                         f"({', '.join(e.lstrip('.').upper() for e in EXTENSIONS)})")
    return files


def pair_files(images: Path, masks: Path) -> List[Tuple[str, Path, Path]]:
    """``(name, image path, mask path)`` for every name present in both folders; unpaired files are an error."""
    image_files, mask_files = _list(images, "--images"), _list(masks, "--masks")
    lonely_images = sorted(set(image_files) - set(mask_files))
    lonely_masks = sorted(set(mask_files) - set(image_files))
    if lonely_images or lonely_masks:
        parts = []
        if lonely_images:
            parts.append(f"{len(lonely_images)} image(s) without a mask: {', '.join(lonely_images[:5])}")
        if lonely_masks:
            parts.append(f"{len(lonely_masks)} mask(s) without an image: {', '.join(lonely_masks[:5])}")
        raise InputError("unpaired files (images and masks are paired by file name without extension): "
                         + "; ".join(parts))
    return [(name, image_files[name], mask_files[name]) for name in sorted(image_files)]


def read_array(path: Path, *, mask: bool) -> np.ndarray:
    """The file's pixels as a numpy array (palette images keep their indices when read as masks)."""
    try:
        if path.suffix.lower() == ".npy":
            return np.load(path, allow_pickle=False)
        from PIL import Image

        with Image.open(path) as image:
            image.load()
            if not mask and image.mode not in ("L", "I", "I;16", "F", "RGB"):
                image = image.convert("RGB")
            return np.asarray(image)
    except Exception as error:  # PIL and numpy raise many types for a corrupt file
        raise InputError(f"cannot read {path}: {type(error).__name__}: {error}") from None


def _scale(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    if np.issubdtype(array.dtype, np.integer):
        return array.astype(np.float32) / float(np.iinfo(array.dtype).max)
    return array.astype(np.float32)


def image_channels_first(array: np.ndarray, path: Path) -> np.ndarray:
    """``(C, H, W)`` float32 with ``C`` in ``{1, 3}`` (alpha dropped)."""
    if array.ndim == 2:
        array = array[None]
    elif array.ndim == 3 and array.shape[-1] in (1, 3, 4):
        array = np.moveaxis(array, -1, 0)
    elif not (array.ndim == 3 and array.shape[0] in (1, 3, 4)):
        raise InputError(f"image {path} has shape {array.shape}; expected (H, W), (H, W, C) or (C, H, W) with "
                         "C = 1, 3 or 4")
    array = _scale(array[:3] if array.shape[0] == 4 else array)
    if not np.isfinite(array).all():
        raise InputError(f"image {path} contains NaN or infinite values")
    return array


def mask_indices(array: np.ndarray, path: Path) -> np.ndarray:
    """``(H, W)`` int64 class indices; 0/255 masks become 0/1."""
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        if not (array[..., :3] == array[..., :1]).all():
            raise InputError(f"mask {path} is a colour image; masks must hold one class index per pixel "
                             "(0/1, 0/255 or 0..K-1), not colours")
        array = array[..., 0]
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        raise InputError(f"mask {path} has shape {array.shape}; expected (H, W)")
    if array.dtype == np.bool_:
        return array.astype(np.int64)
    values = np.unique(array)
    if not np.isfinite(values).all() or (values != np.round(values)).any() or values.min() < 0:
        raise InputError(f"mask {path} has values {_preview(values)} that are neither binary (0/1, 0/255) nor "
                         f"class indices (0..K-1)")
    if set(values.tolist()) <= {0, 255}:
        return (array == 255).astype(np.int64)
    if values.max() >= MAX_CLASSES:
        raise InputError(f"mask {path} has values {_preview(values)} that are neither binary (0/1, 0/255) nor "
                         f"class indices below {MAX_CLASSES}; is it a grayscale image, or a mask saved as JPEG "
                         "(lossy compression changes the values)? Save masks as PNG or NPY")
    return array.astype(np.int64)


def _preview(values: np.ndarray) -> str:
    shown = ", ".join(f"{v:g}" for v in values[:6].astype(np.float64))
    return f"{{{shown}{', ...' if len(values) > 6 else ''}}}"


def _resize(images: List[np.ndarray], masks: List[np.ndarray], size: int) -> Tuple[np.ndarray, np.ndarray]:
    channels = max(image.shape[0] for image in images)
    out_images = np.empty((len(images), channels, size, size), dtype=np.float32)
    out_masks = np.empty((len(masks), size, size), dtype=np.int64)
    for k, (image, mask) in enumerate(zip(images, masks)):
        x = torch.from_numpy(np.repeat(image, channels // image.shape[0], axis=0))[None]
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]
        x = (x - x.mean()) / x.std().clamp(min=1e-6)
        out_images[k] = x.numpy()
        y = torch.from_numpy(mask)[None, None].float()
        out_masks[k] = F.interpolate(y, size=(size, size), mode="nearest")[0, 0].long().numpy()
    return out_images, out_masks


def load_split(images: Path, masks: Path, size: int) -> SegmentationSplit:
    """Read, check and resize every pair to ``size x size``; images standardised per image."""
    read_images, read_masks, names = [], [], []
    for name, image_path, mask_path in pair_files(images, masks):
        image = image_channels_first(read_array(image_path, mask=False), image_path)
        mask = mask_indices(read_array(mask_path, mask=True), mask_path)
        if mask.shape != image.shape[1:]:
            raise InputError(f"mask {mask_path} is {mask.shape[0]}x{mask.shape[1]} (HxW) but its image "
                             f"{image_path} is {image.shape[1]}x{image.shape[2]}; a mask must match its image")
        read_images.append(image)
        read_masks.append(mask)
        names.append(name)
    array_images, array_masks = _resize(read_images, read_masks, size)
    return SegmentationSplit(array_images, array_masks, names)


def _subset(split: SegmentationSplit, index: np.ndarray) -> SegmentationSplit:
    return SegmentationSplit(split.images[index], split.masks[index], [split.names[i] for i in index])


def load_user_data(images: Path, masks: Path, *, size: int, val_images: Optional[Path] = None,
                   val_masks: Optional[Path] = None, val_fraction: float = 0.2, seed: int = 0) -> SegmentationData:
    """The user's data as train and validation splits (a seeded random split unless a validation set is given)."""
    if (val_images is None) != (val_masks is None):
        raise InputError("give both --val-images and --val-masks, or neither (then --val-fraction splits the data)")
    train = load_split(images, masks, size)
    notes = []
    if val_images is not None:
        val = load_split(val_images, val_masks, size)
        if train.images.shape[1] != val.images.shape[1]:
            raise InputError("training images and validation images differ in channels (grayscale vs colour)")
    else:
        if len(train) < 2:
            raise InputError(f"need at least 2 image/mask pairs to split off a validation set, found {len(train)}; "
                             "add images or give --val-images/--val-masks")
        order = np.random.default_rng(seed).permutation(len(train))
        count = min(max(1, int(round(val_fraction * len(train)))), len(train) - 1)
        train, val = _subset(train, np.sort(order[count:])), _subset(train, np.sort(order[:count]))
        notes.append(f"validation: {count} of {count + len(train)} pairs held out at random (seed {seed})")
    num_classes = max(2, int(max(train.masks.max(), val.masks.max())) + 1)
    kind = "binary" if num_classes == 2 else f"{num_classes}-class index"
    fraction = float((train.masks > 0).mean())
    description = (f"{images}: {len(train)} train + {len(val)} validation pairs, {kind} masks, resized to "
                   f"{size}x{size}, foreground {100 * fraction:.1f}% of training pixels")
    return SegmentationData(train, val, num_classes, description, notes)
