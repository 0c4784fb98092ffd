"""What a kernel of the engine declares to run as one fused Triton kernel (:mod:`._triton`): its *Triton form*.

A kernel that a Triton kernel covers has a ``triton_form(*operands)`` method (``operands`` as its ``loss``
takes them; none for the classwise layout) returning a :class:`SigmoidForm` or a :class:`SoftmaxForm`, or None
for options the Triton kernels do not take (the engine's own path then runs). This module imports no Triton, so
every loss file can declare its form whether Triton is installed or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple, Union

from torch import Tensor

BCE, FOCAL, BINARY_SEESAW, ASYMMETRIC = 0, 1, 2, 3
"""Sigmoid families."""
CROSS_ENTROPY, SOFTMAX_FOCAL, SEESAW = 0, 1, 2
"""Softmax families."""


@dataclass(frozen=True)
class SigmoidForm:
    """A sigmoid-family loss for the elementwise Triton kernel: ``params`` are up to four numbers (floats or
    0-dim tensors, read on the device without a host sync): BCE ``(pos_weight,)``; focal ``(alpha or -1,
    gamma)``; Binary Seesaw ``(log m_fg - log m_bg, log m_bg, q, log eps)``; asymmetric ``(gamma_pos, gamma_neg,
    clip, eps)``. ``class_values`` is a ``(C,)`` tensor along dimension 1 of the logits, or None: focal's
    per-class ``alpha`` (which then replaces the number)."""

    family: int
    params: Tuple[Union[float, Tensor], ...]
    class_values: Optional[Tensor] = None


@dataclass(frozen=True)
class SoftmaxForm:
    """A softmax-family loss for the classwise Triton kernel: ``class_values`` is a ``(C,)`` tensor or None: the
    logit offsets (cross-entropy) or ``log max(n_c, 1)`` (Seesaw); ``gamma`` is focal's, ``p``, ``q``, ``eps``
    Seesaw's; ``margins`` (``(C,)`` or None) and ``scale`` cross-entropy's (LDAM)."""

    family: int
    class_values: Optional[Tensor] = None
    gamma: float = 0.0
    p: float = 0.0
    q: float = 0.0
    eps: float = 1e-2
    margins: Optional[Tensor] = None
    scale: float = 1.0

    @staticmethod
    def cross_entropy(logit_offsets: Optional[Tensor] = None, margins: Optional[Tensor] = None,
                      scale: float = 1.0) -> "SoftmaxForm":
        """Cross-entropy of ``scale * (z + logit_offsets - margins[t] onehot(t))``: logit adjustment, Balanced
        Softmax and LDAM."""
        return SoftmaxForm(CROSS_ENTROPY, logit_offsets, margins=margins, scale=scale)
