"""A small U-Net and a small MLP, in plain PyTorch, for the ``seesaw`` experiments."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """U-Net (Ronneberger et al., 2015) with ``depth`` down-sampling steps and ``width * 2**level`` channels.

    Args:
        in_channels: image channels.
        out_channels: logits per pixel (1 for sigmoid losses, the number of classes for softmax losses).
        width: channels of the first level.
        depth: number of 2x down-sampling steps; image sides must be divisible by ``2**depth``.

    Shape:
        - input: ``(N, in_channels, H, W)``.
        - output: ``(N, out_channels, H, W)`` logits.
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, *, width: int = 16, depth: int = 3) -> None:
        super().__init__()
        widths = [width * 2**level for level in range(depth + 1)]
        self.down = nn.ModuleList([_block(in_channels, widths[0])])
        self.down.extend(_block(widths[k], widths[k + 1]) for k in range(depth))
        self.upsample = nn.ModuleList(nn.ConvTranspose2d(widths[k + 1], widths[k], 2, stride=2)
                                      for k in reversed(range(depth)))
        self.up = nn.ModuleList(_block(2 * widths[k], widths[k]) for k in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], out_channels, 1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        for level, block in enumerate(self.down):
            x = block(x if level == 0 else self.pool(x))
            skips.append(x)
        skips.pop()
        for upsample, block in zip(self.upsample, self.up):
            x = block(torch.cat([skips.pop(), upsample(x)], dim=1))
        return self.head(x)


class MLP(nn.Module):
    """Two hidden layers with ReLU; ``(N, in_features) -> (N, num_classes)`` logits."""

    def __init__(self, in_features: int, num_classes: int, hidden: int = 128) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(in_features, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)
