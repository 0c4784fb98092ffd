"""Whole-image prediction by overlapping windows blended with a Gaussian importance map, as in nnU-Net
(Isensee et al., Nature Methods 2021): windows are most reliable at their centre, so a model trained on ``P x P``
patches predicts images of any size, and metrics are computed at the images' own sizes."""

from __future__ import annotations

import math
from typing import List

import torch
import torch.nn.functional as F
from torch import Tensor, nn

BLENDS = ("gaussian", "uniform")


def window_starts(length: int, size: int, overlap: float) -> List[int]:
    """Evenly spaced window starts covering ``length`` with windows of ``size`` that overlap by at least
    ``overlap`` of a window (nnU-Net's steps); ``[0]`` when the window covers it all."""
    if length <= size:
        return [0]
    count = math.ceil((length - size) / (size * (1 - overlap))) + 1
    return [int(round(k * (length - size) / (count - 1))) for k in range(count)]


def gaussian_importance(size: int, sigma_scale: float = 1 / 8) -> Tensor:
    """nnU-Net's window weights: a Gaussian of standard deviation ``size * sigma_scale`` centred on the window,
    1 at the centre, and nowhere below its smallest non-zero value.

    Shape:
        - output: ``(size, size)`` float32.
    """
    position = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    profile = torch.exp(-0.5 * (position / (size * sigma_scale)) ** 2)
    weights = profile[:, None] * profile[None, :]
    weights = weights / weights.max()
    return weights.clamp(min=float(weights[weights > 0].min())).float()


def sliding_window(model: nn.Module, image: Tensor, *, size: int, overlap: float = 0.5, blend: str = "gaussian",
                   batch_size: int = 4) -> Tensor:
    """The model's logits for a whole image of any size, from overlapping ``size x size`` windows.

    Windows start :func:`window_starts` apart on each axis (an image smaller than a window is padded with 0 at its
    bottom and right, and the padding cropped away); overlapping logits are averaged with the weights of
    :func:`gaussian_importance` (``blend="gaussian"``) or equally (``"uniform"``). The model runs in
    ``eval`` mode on ``batch_size`` windows at a time, on the device of ``image``.

    Shape:
        - image: ``(C, H, W)``; output: ``(K, H, W)`` logits (``K`` the model's output channels).
    """
    if not 0 <= overlap < 1:
        raise ValueError(f"sliding_window: overlap must be in [0, 1), got {overlap}")
    if blend not in BLENDS:
        raise ValueError(f"sliding_window: blend must be one of {', '.join(BLENDS)}, got {blend!r}")
    height, width = image.shape[-2:]
    padded = F.pad(image, (0, max(0, size - width), 0, max(0, size - height)))
    weights = gaussian_importance(size) if blend == "gaussian" else torch.ones(size, size)
    weights = weights.to(image.device)
    corners = [(top, left) for top in window_starts(padded.shape[-2], size, overlap)
               for left in window_starts(padded.shape[-1], size, overlap)]
    total = summed = None
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for k in range(0, len(corners), batch_size):
            chunk = corners[k:k + batch_size]
            logits = model(torch.stack([padded[:, t:t + size, l:l + size] for t, l in chunk])).float()
            if total is None:
                total = padded.new_zeros((logits.shape[1],) + padded.shape[-2:], dtype=torch.float32)
                summed = padded.new_zeros(padded.shape[-2:], dtype=torch.float32)
            for (top, left), window in zip(chunk, logits):
                total[:, top:top + size, left:left + size] += window * weights
                summed[top:top + size, left:left + size] += weights
    model.train(was_training)
    return (total / summed)[:, :height, :width]
