"""Target transforms for the topology losses, run once per sample on the CPU (in a DataLoader's workers).

:func:`tubed_skeleton` feeds :func:`~seesaw_losses.functional.skeleton_recall_loss`'s ``skeleton=`` and
:func:`signed_distance_map` :func:`~seesaw_losses.functional.boundary_loss`'s ``distance_map=``. Both take a
NumPy array or a CPU tensor and return the same kind; the last ``spatial_dims`` dimensions (all of them by
default) form one 2D or 3D image, leading ones (batch, channel) are looped over. They use scikit-image and SciPy
(the ``cli`` extra: ``pip install 'seesaw-losses[cli]'``), imported when first called.

Example, in a dataset::

    def __getitem__(self, i):
        image, mask = self.images[i], self.masks[i]               # mask (H, W) in {0, 1}
        return image, mask, tubed_skeleton(mask), signed_distance_map(mask)
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Optional, Sequence

import torch

from .functional._validation import check_int, fail

EXTRA = "pip install 'seesaw-losses[cli]'"
_PACKAGES = {"numpy": "NumPy", "scipy": "SciPy", "skimage": "scikit-image"}


def optional_module(name: str, fn: str) -> Any:
    """Import ``name`` (a SciPy or scikit-image module) or raise an ``ImportError`` naming the extra."""
    try:
        return importlib.import_module(name)
    except ImportError:
        package = _PACKAGES[name.split(".")[0]]
        raise ImportError(f"{fn}: needs {package}, which is not installed; install it with {EXTRA}") from None


np = optional_module("numpy", "seesaw_losses.transforms")


def _as_numpy(fn: str, mask: object) -> np.ndarray:
    if isinstance(mask, torch.Tensor):
        if mask.device.type != "cpu":
            fail(fn, "mask", "on the CPU", f"device {mask.device}",
                 "run the transform in the data pipeline, before moving the batch to the accelerator")
        return mask.detach().numpy()
    if isinstance(mask, np.ndarray):
        return mask
    fail(fn, "mask", "a NumPy array or a torch.Tensor", type(mask).__name__, error=TypeError)


def _per_image(fn: str, mask: object, spatial_dims: Optional[int], num_classes: Optional[int],
               image: Callable[[np.ndarray], np.ndarray], dtype: type, lowest: int) -> Any:
    """Apply ``image`` to each binary image (``lowest`` to 3 dimensions) of ``mask`` (one per class of an index
    mask)."""
    array = _as_numpy(fn, mask)
    spatial = array.ndim if spatial_dims is None else spatial_dims
    if spatial not in range(lowest, 4) or spatial > array.ndim:
        fail(fn, "spatial_dims", f"from {lowest} to 3 (and at most mask.ndim = {array.ndim})", spatial_dims,
             "the last spatial_dims dimensions of the mask form one image")
    if num_classes is None:
        if array.dtype != bool and array.size and not np.isin(array, (0, 1)).all():
            fail(fn, "mask", "binary (values 0 and 1)", f"values in [{array.min():g}, {array.max():g}]",
                 "for class-index masks pass num_classes=")
        classes = array.astype(bool)
    else:
        check_int(fn, "num_classes", num_classes, low=1)
        if array.dtype == bool or np.issubdtype(array.dtype, np.floating):
            fail(fn, "mask", "an integer array of class indices with num_classes", f"dtype {array.dtype}",
                 "leave num_classes=None for a binary mask")
        shape = array.shape[:array.ndim - spatial] + (1,) + array.shape[array.ndim - spatial:]
        classes = array.reshape(shape) == np.arange(num_classes).reshape((num_classes,) + (1,) * spatial)
    flat = classes.reshape((-1,) + classes.shape[-spatial:])
    out = np.stack([image(one) for one in flat]).astype(dtype, copy=False) if len(flat) else \
        np.zeros(flat.shape, dtype)
    out = out.reshape(classes.shape)
    return torch.from_numpy(out) if isinstance(mask, torch.Tensor) else out


def tubed_skeleton(mask: Any, *, radius: int = 2, num_classes: Optional[int] = None,
                   spatial_dims: Optional[int] = None) -> Any:
    """The tubed skeleton of Skeleton Recall (Kirchhoff et al., ECCV 2024), per image and class.

    scikit-image's ``skeletonize`` (Zhang's thinning in 2D, Lee's in 3D), dilated ``radius`` times by the cross
    (a diamond of radius ``radius``; the paper dilates twice) and clipped to the mask. An empty mask has an
    empty skeleton.

    Args:
        mask: a binary mask (bool, integer or float 0/1), or with ``num_classes`` an integer class-index mask.
        radius: tube radius in pixels, ``>= 0`` (0: the bare skeleton).
        num_classes: for class-index masks: one output channel per class, before the spatial dimensions.
        spatial_dims: how many trailing dimensions form an image (2 or 3); None: all of them.

    Shape:
        - mask ``(*, *spatial)``; output ``bool`` (binary by its type, so the loss reads no values to check it):
          the same, or ``(*, C, *spatial)`` with ``num_classes``.
    """
    fn = "tubed_skeleton"
    check_int(fn, "radius", radius, low=0)
    morphology = optional_module("skimage.morphology", fn)
    ndimage = optional_module("scipy.ndimage", fn)

    def image(binary: np.ndarray) -> np.ndarray:
        if not binary.any():
            return np.zeros(binary.shape, bool)
        skeleton = morphology.skeletonize(binary)
        if radius:
            cross = ndimage.generate_binary_structure(binary.ndim, 1)
            skeleton = ndimage.binary_dilation(skeleton, structure=cross, iterations=radius)
        return skeleton & binary

    return _per_image(fn, mask, spatial_dims, num_classes, image, bool, lowest=2)


def signed_distance_map(mask: Any, *, num_classes: Optional[int] = None, spatial_dims: Optional[int] = None,
                        spacing: Optional[Sequence[float]] = None) -> Any:
    """The signed Euclidean distance map of boundary loss (Kervadec et al.), per image and class.

    Outside the mask: the distance to the nearest mask pixel; inside: minus (the distance to the nearest
    pixel outside, minus 1), so the mask's boundary pixels are 0 (Kervadec et al.'s convention). An empty or
    full mask has no boundary and gives zeros. Distances from SciPy's ``distance_transform_edt``.

    Args:
        mask: a binary mask, or with ``num_classes`` an integer class-index mask.
        num_classes: for class-index masks: one output channel per class, before the spatial dimensions.
        spatial_dims: how many trailing dimensions form an image (1 to 3); None: all of them.
        spacing: pixel size along each spatial axis (default 1).

    Shape:
        - mask ``(*, *spatial)``; output ``float32``: the same, or ``(*, C, *spatial)`` with ``num_classes``.
    """
    fn = "signed_distance_map"
    ndimage = optional_module("scipy.ndimage", fn)

    def image(binary: np.ndarray) -> np.ndarray:
        if not binary.any() or binary.all():
            return np.zeros(binary.shape, np.float32)
        outside = ndimage.distance_transform_edt(~binary, sampling=spacing)
        inside = ndimage.distance_transform_edt(binary, sampling=spacing)
        return np.where(binary, 1 - inside, outside)

    return _per_image(fn, mask, spatial_dims, num_classes, image, np.float32, lowest=1)


__all__ = ["signed_distance_map", "tubed_skeleton"]
