"""The small CNN of class-folder classification, built from the U-Net's blocks."""

from __future__ import annotations

from torch import Tensor, nn

from .unet import _block


class SmallCNN(nn.Module):
    """Three U-Net blocks (two 3x3 conv + batch norm + ReLU each) of ``width``, ``2 width`` and ``4 width``
    channels with 2x max pooling between them, global average pooling and a linear classifier; sized for 32 px.

    Shape:
        - input: ``(N, in_channels, H, W)``; output: ``(N, num_classes)`` logits.
    """

    def __init__(self, in_channels: int, num_classes: int, *, width: int = 32) -> None:
        super().__init__()
        self.features = nn.Sequential(_block(in_channels, width), nn.MaxPool2d(2), _block(width, 2 * width),
                                      nn.MaxPool2d(2), _block(2 * width, 4 * width), nn.AdaptiveAvgPool2d(1))
        self.classifier = nn.Linear(4 * width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x).flatten(1))
