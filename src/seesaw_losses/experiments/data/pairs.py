"""Reading the user's images and masks for ``seesaw compare``, with a clear :class:`DataError` for every problem.

Images and masks are paired by file name without extension (``a.png`` with ``a.npy``); hidden files (``._*``,
``.DS_Store``, ``Thumbs.db``) are skipped. Images: grayscale or RGB(A) PNG/JPEG/TIFF, or ``.npy`` arrays
``(H, W)``, ``(H, W, C)`` or ``(C, H, W)``. Masks: binary (0/1, or 0/255 which is read as 0/1) or class indices
``0..K-1`` (``K <= 64``), the same height and width as their image, optionally with an ``ignore_index`` value for
pixels to skip. Instance-label masks (many labels, each one connected blob) are refused unless read with
``mask_mode="binary"`` (label > 0 is foreground); JPEG masks unless ``allow_lossy``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from .. import DataError
from .generated import SegmentationData, SegmentationSplit
from .splits import split_indices

EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy")
MAX_CLASSES = 64
LOSSY = (".jpg", ".jpeg")
HIDDEN_NAMES = ("Thumbs.db", "desktop.ini")
MASK_MODES = ("auto", "binary", "classes")
INSTANCE_LABELS = 4  #: a mask with at least this many labels, nearly each one connected blob, is an instance mask
DEFAULT_SIZE = 128  #: the side images are resized to with ``size="auto"``, unless they are smaller


@dataclass(frozen=True)
class MaskReading:
    """How masks are read: ``mode`` ``"auto"`` (binary or class indices, instance masks refused), ``"binary"``
    (label > 0 is foreground) or ``"classes"`` (values are class indices, no instance check); ``ignore_index``
    marks pixels to skip; ``allow_lossy`` reads JPEG masks as binary (above half the maximum level)."""

    mode: str = "auto"
    ignore_index: Optional[int] = None
    allow_lossy: bool = False


def is_hidden(path: Path) -> bool:
    """Operating-system clutter: dot files (macOS ``._*`` and ``.DS_Store``), ``Thumbs.db``, ``desktop.ini``."""
    return path.name.startswith(".") or path.name in HIDDEN_NAMES


def _list(folder: Path, role: str, skipped: List[Path]) -> Dict[str, Path]:
    if not folder.exists():
        raise DataError(f"{role} folder {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise DataError(f"{role} folder {str(folder)!r} is not a folder")
    files: Dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if is_hidden(path):
            skipped.append(path)
        elif path.is_file() and path.suffix.lower() in EXTENSIONS:
            if path.stem in files:
                raise DataError(f"{role} folder has two files named {path.stem!r}: {files[path.stem].name} and "
                                 f"{path.name}; keep one per name")
            files[path.stem] = path
    if not files:
        raise DataError(f"{role} folder {str(folder)!r} has no image files "
                         f"({', '.join(e.lstrip('.').upper() for e in EXTENSIONS)})")
    return files


def pair_files(images: Path, masks: Path, skipped: List[Path]) -> List[Tuple[str, Path, Path]]:
    """``(name, image path, mask path)`` for every name present in both folders; unpaired files are an error.
    Hidden files are appended to ``skipped``."""
    image_files, mask_files = _list(images, "images=", skipped), _list(masks, "masks=", skipped)
    lonely_images = sorted(set(image_files) - set(mask_files))
    lonely_masks = sorted(set(mask_files) - set(image_files))
    if lonely_images or lonely_masks:
        parts = []
        if lonely_images:
            parts.append(f"{len(lonely_images)} image(s) without a mask: {', '.join(lonely_images[:5])}")
        if lonely_masks:
            parts.append(f"{len(lonely_masks)} mask(s) without an image: {', '.join(lonely_masks[:5])}")
        raise DataError("unpaired files (images and masks are paired by file name without extension): "
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
        raise DataError(f"cannot read {path}: {type(error).__name__}: {error}") from None


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
        raise DataError(f"image {path} has shape {array.shape}; expected (H, W), (H, W, C) or (C, H, W) with "
                         "C = 1, 3 or 4")
    array = _scale(array[:3] if array.shape[0] == 4 else array)
    if not np.isfinite(array).all():
        raise DataError(f"image {path} contains NaN or infinite values")
    return array


def _instance_like(array: np.ndarray, labels: np.ndarray) -> bool:
    """Whether nearly every label (90 %) of a mask with many labels is a single 8-connected blob."""
    from scipy import ndimage

    if len(labels) < INSTANCE_LABELS:
        return False
    objects = ndimage.find_objects(np.where(np.isin(array, labels), array, 0).astype(np.int64))
    single = sum(ndimage.label(array[objects[int(label) - 1]] == label, structure=np.ones((3, 3)))[1] == 1
                 for label in labels)
    return single >= 0.9 * len(labels)


def mask_indices(array: np.ndarray, path: Path, reading: MaskReading = MaskReading()) -> np.ndarray:
    """``(H, W)`` int64 class indices (``reading.ignore_index`` kept where the mask has it); 0/255 masks become
    0/1."""
    ignore = reading.ignore_index
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        if not (array[..., :3] == array[..., :1]).all():
            raise DataError(f"mask {path} is a colour image; masks must hold one class index per pixel "
                            "(0/1, 0/255 or 0..K-1), not colours")
        array = array[..., 0]
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        raise DataError(f"mask {path} has shape {array.shape}; expected (H, W)")
    if array.dtype == np.bool_:
        return array.astype(np.int64)
    if path.suffix.lower() in LOSSY:
        if not reading.allow_lossy:
            raise DataError(f"mask {path} is a JPEG: lossy compression changes mask values near every edge (a 0/1 "
                            "mask gains 2, 3, ...); save masks as PNG or NPY, or pass allow_lossy=True to read "
                            "JPEG masks as binary (foreground above half the maximum level)")
        return (array > (127.5 if array.max() > 127 else 0.5)).astype(np.int64)
    values = np.unique(array)
    if not np.isfinite(values).all() or (values != np.round(values)).any() or values.min() < 0:
        raise DataError(f"mask {path} has values {_preview(values)} that are neither binary (0/1, 0/255) nor "
                        f"class indices (0..K-1)")
    skip = array == ignore if ignore is not None else np.zeros(array.shape, dtype=bool)
    labels = values[(values != 0) & (values != (ignore if ignore is not None else -1))]
    if reading.mode == "binary":
        out = (array > 0).astype(np.int64)
    elif set(labels.tolist()) <= {255} and ignore != 255:
        out = (array == 255).astype(np.int64)
    else:
        if reading.mode == "auto" and _instance_like(array, labels):
            raise DataError(f"mask {path} looks like an instance-label mask ({len(labels)} labels, each one "
                            "connected blob, as StarDist or Cellpose write them), not class indices; pass "
                            "mask_mode='binary' to read label > 0 as foreground (or mask_mode='classes' if the "
                            "values really are classes)")
        if len(labels) and labels.max() >= MAX_CLASSES:
            raise DataError(f"mask {path} has values {_preview(values)} that are neither binary (0/1, 0/255) nor "
                            f"class indices below {MAX_CLASSES}; is it a grayscale image, an instance-label mask "
                            "(mask_mode='binary' reads label > 0 as foreground), or pixels to skip "
                            "(ignore_index=255)?")
        out = array.astype(np.int64)
    if ignore is not None:
        out[skip] = ignore
    return out


def _preview(values: np.ndarray) -> str:
    shown = ", ".join(f"{v:g}" for v in values[:6].astype(np.float64))
    return f"{{{shown}{', ...' if len(values) > 6 else ''}}}"


def _size_text(shape: Tuple[int, int]) -> str:
    return f"{shape[0]}x{shape[1]}"


def standardised(image: np.ndarray, channels: int, size: Optional[Tuple[int, int]] = None) -> torch.Tensor:
    """A ``(c, H, W)`` image as ``(channels, *size)`` (grey repeated to colour; resized bilinear with
    antialiasing when ``size`` is given), zero mean and unit variance over the image."""
    x = torch.from_numpy(np.repeat(image, channels // image.shape[0], axis=0))
    if size is not None and tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]
    return (x - x.mean()) / x.std().clamp(min=1e-6)


def _fit_size(images: List[np.ndarray], masks: List[np.ndarray], size: Optional[Tuple[int, int]]
              ) -> Tuple[np.ndarray, np.ndarray]:
    """Stack the pairs at ``size`` (None: as they are, all one size): images bilinear (antialiased) and
    standardised per image, masks nearest-neighbour."""
    channels = max(image.shape[0] for image in images)
    height, width = size or images[0].shape[1:]
    out_images = np.empty((len(images), channels, height, width), dtype=np.float32)
    out_masks = np.empty((len(masks), height, width), dtype=np.int64)
    for k, (image, mask) in enumerate(zip(images, masks)):
        out_images[k] = standardised(image, channels, (height, width)).numpy()
        y = torch.from_numpy(mask)[None, None]
        if y.shape[-2:] != (height, width):
            y = F.interpolate(y.float(), size=(height, width), mode="nearest").long()
        out_masks[k] = y[0, 0].numpy()
    return out_images, out_masks


def read_split(images: Path, masks: Path, reading: MaskReading, skipped: List[Path]
               ) -> Tuple[List[np.ndarray], List[np.ndarray], List[str]]:
    """Every pair of the two folders read and checked: ``(C, H, W)`` images, ``(H, W)`` masks, names."""
    read_images, read_masks, names = [], [], []
    for name, image_path, mask_path in pair_files(images, masks, skipped):
        image = image_channels_first(read_array(image_path, mask=False), image_path)
        mask = mask_indices(read_array(mask_path, mask=True), mask_path, reading)
        if mask.shape != image.shape[1:]:
            raise DataError(f"mask {mask_path} is {mask.shape[0]}x{mask.shape[1]} (HxW) but its image "
                            f"{image_path} is {image.shape[1]}x{image.shape[2]}; a mask must match its image")
        read_images.append(image)
        read_masks.append(mask)
        names.append(name)
    return read_images, read_masks, names


def _common_size(sizes: Counter, size: Union[int, str, None], multiple: int,
                 notes: List[str]) -> Optional[Tuple[int, int]]:
    """The size to train at: ``size x size`` (a note when the images differ from it, another when some are
    up-sampled), ``"auto"``: :data:`DEFAULT_SIZE` or the images' largest common side if smaller (rounded down to
    a multiple of ``multiple``), None: the images' one size."""
    shown = ", ".join(f"{_size_text(s)} ({n})" for s, n in sizes.most_common(4)) + (", ..." if len(sizes) > 4 else "")
    if size is None:
        if len(sizes) > 1:
            raise DataError(f"images differ in size ({shown}) and size=None was given; drop size=None to "
                            "resize them all to size=")
        (height, width), = sizes
        if height % multiple or width % multiple:
            raise DataError(f"images are {height}x{width} and size=None was given, but the U-Net needs sides "
                            f"divisible by {multiple}; drop size=None to resize them to size=")
        return None
    smallest = min(min(s) for s in sizes)
    fitting = max(2 * multiple, smallest // multiple * multiple)  # the largest size that up-samples least
    if size == "auto":
        size = min(DEFAULT_SIZE, fitting)
    if set(sizes) != {(size, size)}:
        notes.append(f"images of {len(sizes)} size(s) (HxW, count: {shown}) resized to {size}x{size} "
                     "(masks nearest-neighbour); size=None keeps one common size as it is")
    upsampled = sum(n for s, n in sizes.items() if min(s) < size)
    if upsampled:
        hint = f"; size={fitting} does not" if fitting < size else ""
        notes.append(f"{upsampled} image(s) up-sampled to {size}x{size} (the smallest side is {smallest} px): "
                     f"slower training on interpolated pixels, no added detail{hint}")
    return size, size


def load_user_data(images: Path, masks: Path, *, size: Union[int, str, None], test_images: Optional[Path] = None,
                   test_masks: Optional[Path] = None, test_fraction: float = 0.2, val_fraction: float = 0.2,
                   seed: int = 0, reading: MaskReading = MaskReading(), multiple: int = 8) -> SegmentationData:
    """The user's data as training, validation and held-out splits.

    The held-out split is ``test_images``/``test_masks``, or a seeded random ``test_fraction`` of the pairs; the
    validation split a seeded random ``val_fraction`` of the rest. Every image is resized to ``size x size``
    (``"auto"``: :data:`DEFAULT_SIZE`, or the images' largest common side if smaller, rounded down to a multiple
    of ``multiple``; ``None``: kept as it is, which needs one common size with sides divisible by ``multiple``).
    """
    if (test_images is None) != (test_masks is None):
        raise DataError("give both test_images= and test_masks=, or neither (then test_fraction= splits the "
                        "data)")
    skipped: List[Path] = []
    notes: List[str] = []
    parts = [read_split(images, masks, reading, skipped)]
    if test_images is not None:
        parts.append(read_split(test_images, test_masks, reading, skipped))
    sizes = Counter(image.shape[1:] for part in parts for image in part[0])
    if test_images is not None and len({max(i.shape[0] for i in part[0]) for part in parts}) > 1:
        raise DataError("training images and held-out images differ in channels (grayscale vs colour)")
    shape = _common_size(sizes, size, multiple, notes)
    splits = [SegmentationSplit(*_fit_size(part[0], part[1], shape), part[2]) for part in parts]
    if skipped:
        notes.append(f"skipped {len(skipped)} hidden file(s): {', '.join(sorted({p.name for p in skipped})[:4])}")
    train = splits[0]
    needed = 2 if test_images is not None else 3
    if len(train) < needed:
        raise DataError(f"need at least {needed} image/mask pairs for training, validation and held-out splits, "
                        f"found {len(train)}; add images or give test_images= and test_masks=")
    if test_images is not None:
        test = splits[1]
    else:
        kept, held = split_indices(len(train), test_fraction, seed)
        train, test = train.subset(kept), train.subset(held)
        notes.append(f"held out: {len(test)} of {len(train) + len(test)} pairs at random (split seed {seed})")
    kept, held = split_indices(len(train), val_fraction, seed + 1)
    train, validation = train.subset(kept), train.subset(held)
    notes.append(f"validation: {len(validation)} of the {len(train) + len(validation)} training pairs "
                 "(thresholds, tuning, training curves)")
    ignore = reading.ignore_index
    labelled = [split.masks[split.masks != ignore] if ignore is not None else split.masks.ravel()
                for split in (train, validation, test)]
    num_classes = max(2, max(int(values.max()) if values.size else 0 for values in labelled) + 1)
    kind = "binary" if num_classes == 2 else f"{num_classes}-class index"
    fraction = float((labelled[0] > 0).mean()) if labelled[0].size else 0.0
    resized = f"resized to {shape[0]}x{shape[1]}" if shape else f"{_size_text(train.images.shape[2:])} as given"
    skipping = f", {ignore} skipped in {100 * (1 - labelled[0].size / train.masks.size):.1f}% of pixels" \
        if ignore is not None else ""
    description = (f"{images}: {len(train)} train + {len(validation)} validation + {len(test)} held-out pairs, "
                   f"{kind} masks, {resized}, foreground {100 * fraction:.1f}% of training pixels{skipping}")
    return SegmentationData(train, validation, test, num_classes, description, notes, ignore_index=ignore)
