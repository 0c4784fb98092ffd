"""``nn.Module`` forms of the losses: validated configuration, buffers, and one call into the function."""

from .seesaw import BinarySeesawLoss, SeesawLoss

__all__ = ["BinarySeesawLoss", "SeesawLoss"]
