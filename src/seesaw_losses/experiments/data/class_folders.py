"""Image-classification data in torchvision's ``ImageFolder`` layout: one subfolder per class, named after it.

``ROOT/cat/1.png``, ``ROOT/dog/7.jpg``, ... (files in nested folders of a class count for that class; hidden files
and folders skipped as for segmentation). The held-out set is a second root in the same layout, or a stratified
fraction of the first; validation is a stratified fraction of the training images that keeps at least one training
image of every class. Every file is decoded once up front (a truncated or corrupt file is refused by name before
any training), then read again on demand by :class:`ClassFolderDataset`, so a dataset larger than memory can be
compared.

Class groups follow ImageNet-LT (Liu et al., CVPR 2019) on the training counts: many-shot (> 100 images),
medium-shot (20-100) and few-shot (< 20).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .. import DataError
from .groups import shot_groups
from .pairs import EXTENSIONS, image_channels_first, is_hidden, read_array, standardised
from .splits import stratified_split
from ..statistics import SMALL_GROUP

@dataclass
class LabelledImages:
    """Image files and their class indices ``(N,)`` int64."""

    paths: List[Path]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, index: np.ndarray) -> "LabelledImages":
        return LabelledImages([self.paths[i] for i in index], self.labels[index])


@dataclass
class ClassFolderData:
    """Training, validation and held-out images of ``classes`` (folder names, sorted); ``channels`` 1 or 3."""

    classes: List[str]
    train: LabelledImages
    validation: LabelledImages
    test: LabelledImages
    channels: int
    image_size: int
    description: str
    notes: List[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def class_counts(self) -> np.ndarray:
        """Training images per class ``(C,)``: what count-based losses and logit adjustment use."""
        return np.bincount(self.train.labels, minlength=self.num_classes)

    @property
    def groups(self) -> Dict[str, List[int]]:
        return shot_groups(self.class_counts)


def _image_files(folder: Path) -> List[Path]:
    """The image files below ``folder`` (nested folders included), hidden files and folders left out, sorted."""
    found = []
    for path in sorted(folder.rglob("*")):
        parts = path.relative_to(folder).parts
        if path.is_file() and path.suffix.lower() in EXTENSIONS and not any(is_hidden(Path(p)) for p in parts):
            found.append(path)
    return found


def list_class_folders(root: Path, option: str, *, min_classes: int = 2) -> Dict[str, List[Path]]:
    """``{class name: image files}`` of an ``ImageFolder`` root, every layout problem a :class:`DataError`."""
    if not root.exists():
        raise DataError(f"{option} folder {str(root)!r} does not exist")
    if not root.is_dir():
        raise DataError(f"{option} folder {str(root)!r} is not a folder")
    entries = [path for path in sorted(root.iterdir()) if not is_hidden(path)]
    folders = [path for path in entries if path.is_dir()]
    loose = [path.name for path in entries if path.is_file() and path.suffix.lower() in EXTENSIONS]
    if loose and folders:
        raise DataError(f"{option} folder {str(root)!r} has images both at its top ({', '.join(loose[:3])}"
                        f"{', ...' if len(loose) > 3 else ''}) and in class folders; move every image into the "
                        "folder of its class")
    if len(folders) < min_classes:
        hint = " (for segmentation give masks= too)" if loose else ""
        raise DataError(f"{option} folder {str(root)!r} has {len(folders)} class folder(s); classification needs "
                        f"at least {min_classes}, one subfolder per class named after it{hint}")
    classes = {folder.name: _image_files(folder) for folder in folders}
    empty = [name for name, files in classes.items() if not files]
    if empty:
        raise DataError(f"{option} class folder(s) without images: {', '.join(empty[:5])}"
                        f"{', ...' if len(empty) > 5 else ''} (image files: "
                        f"{', '.join(e.lstrip('.').upper() for e in EXTENSIONS)}); remove them or add images")
    return classes


def _channels_of_shape(shape: Tuple[int, ...]) -> int:
    if len(shape) == 3 and shape[-1] in (1, 3, 4):
        return min(shape[-1], 3)
    if len(shape) == 3 and shape[0] in (1, 3, 4):
        return min(shape[0], 3)
    return 1


def probe_image(path: Path) -> int:
    """The channels (1 or 3) an image is read with; a file that cannot be read whole is a :class:`DataError`.
    The pixels are decoded (PIL's ``verify`` would pass a truncated JPEG, whose data it does not decode), then
    dropped."""
    try:
        if path.suffix.lower() == ".npy":
            return _channels_of_shape(np.load(path, mmap_mode="r", allow_pickle=False).shape)
        from PIL import Image

        with Image.open(path) as image:
            image.load()
            return 1 if image.mode in ("L", "I", "I;16", "F") else 3
    except Exception as error:  # PIL and numpy raise many types for a corrupt file
        raise DataError(f"cannot read {path}: {type(error).__name__}: {error}") from None


class _Checked(Dataset):
    """Item ``k``: ``check(items[k])``, or the :class:`DataError` it raised, returned rather than raised so that
    the message stays one line across worker processes."""

    def __init__(self, check: Callable[[Any], Any], items: Sequence[Any]) -> None:
        self.check, self.items = check, items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, k: int) -> Any:
        try:
            return self.check(self.items[k])
        except DataError as error:
            return error


def check_files(check: Callable[[Any], Any], items: Sequence[Any], workers: int = 0) -> List[Any]:
    """``[check(item) for item in items]`` run by ``workers`` processes (0: this one); the first
    :class:`DataError` in the order of ``items`` is raised."""
    results = list(DataLoader(_Checked(check, items), batch_size=None, num_workers=workers))
    for result in results:
        if isinstance(result, DataError):
            raise result
    return results


def _labelled(classes: Dict[str, List[Path]], index: Dict[str, int]) -> LabelledImages:
    paths = [path for name in classes for path in classes[name]]
    labels = np.array([index[name] for name in classes for _ in classes[name]], dtype=np.int64)
    return LabelledImages(paths, labels)


def _names(classes: Sequence[str], members: Sequence[int], *, indexed: bool = False) -> str:
    shown = [f"{c}: {classes[c]}" if indexed else classes[c] for c in members]
    return ", ".join(shown[:8]) + (f", ... ({len(shown)} in all)" if len(shown) > 8 else "")


def numeric_order_kept(classes: Sequence[str]) -> bool:
    """False when every class name is a whole number and their sorted order is not their numeric order
    (``"10"`` before ``"2"``): class ``k`` is then not the folder named ``k``."""
    return not all(name.isdigit() for name in classes) or list(classes) == sorted(classes, key=int)


def load_class_folders(root: Path, *, test_root: Optional[Path] = None, test_fraction: float = 0.2,
                       val_fraction: float = 0.2, seed: int = 0, image_size: int = 32, workers: int = 0
                       ) -> ClassFolderData:
    """An ``ImageFolder`` root (and optionally a held-out root in the same layout) as training, validation and
    held-out splits; every file's header is checked here (by ``workers`` processes), before any training."""
    found = list_class_folders(Path(root), "root=")
    classes = sorted(found)
    index = {name: k for k, name in enumerate(classes)}
    data = _labelled(found, index)
    notes: List[str] = [] if numeric_order_kept(classes) else [
        "the class folders are numbered in the order of their sorted names, as torchvision's ImageFolder numbers "
        f"them, not by the numbers they name: {_names(classes, range(len(classes)), indexed=True)}; name them "
        "with leading zeros (01, 02, ..., 10) to make both orders agree"]
    if test_root is not None:
        held_found = list_class_folders(Path(test_root), "test_root=", min_classes=1)
        unknown = sorted(set(held_found) - set(found))
        if unknown:
            raise DataError(f"test_root= has class folder(s) that training does not: {', '.join(unknown[:5])}"
                            f"; a held-out class needs training images under {str(root)!r}")
        test = _labelled(held_found, index)
    else:
        kept, held = stratified_split(data.labels, test_fraction, seed, minimum=SMALL_GROUP)
        data, test = data.subset(kept), data.subset(held)
        notes.append(f"held out: {len(test)} of {len(data) + len(test)} images, {test_fraction:.0%} of each class, "
                     f"at least {SMALL_GROUP} where that leaves half the class for training (seed {seed})")
    channels = max(check_files(probe_image, data.paths + test.paths, workers))
    kept, held = stratified_split(data.labels, val_fraction, seed + 1)
    train, validation = data.subset(kept), data.subset(held)
    if not len(validation):
        raise DataError(f"{root}: no image left for validation ({val_fraction:.0%} of each class, rounded, keeping "
                        "one for training); add images or raise val_fraction=")
    counts = np.bincount(train.labels, minlength=len(classes))
    unvalidated = np.flatnonzero(np.bincount(validation.labels, minlength=len(classes)) == 0)
    if len(unvalidated):
        notes.append(f"too few images to validate (all kept for training): {_names(classes, unvalidated)}")
    untested = np.flatnonzero(np.bincount(test.labels, minlength=len(classes)) == 0)
    if len(untested):
        notes.append(f"no held-out images (left out of balanced accuracy): {_names(classes, untested)}")
    groups = shot_groups(counts)
    shots = ", ".join(f"{len(members)} {name.replace('_', '-')}" for name, members in groups.items())
    description = (f"{root}: {len(classes)} classes ({shots}), {len(train)} train + {len(validation)} validation + "
                   f"{len(test)} held-out images, training counts {counts.max()}..{counts.min()}, read at "
                   f"{image_size}x{image_size}")
    return ClassFolderData(classes, train, validation, test, channels, image_size, description, notes)


class ClassFolderDataset(Dataset):
    """Images read on demand: item ``k`` is ``(image (channels, size, size) float32, class index)``."""

    def __init__(self, images: LabelledImages, channels: int, size: int) -> None:
        self.images, self.channels, self.size = images, channels, size

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, k: int) -> Tuple[torch.Tensor, int]:
        path = self.images.paths[k]
        image = image_channels_first(read_array(path, mask=False), path)
        return standardised(image, self.channels, (self.size, self.size)), int(self.images.labels[k])
