"""The switch and the guard in front of the Triton kernels, so that no user is stranded by a kernel that fails on
their GPU.

- ``SEESAW_LOSSES_TRITON=0`` in the environment, or :func:`use_triton` ``(False)`` in Python, keeps every loss on
  the engine's own path (PyTorch operations): the same losses and gradients, without the fused kernels.
- The first time a kernel fails to compile or launch on a device, a ``RuntimeWarning`` names the kernel, the
  device and the error, and that kernel runs the engine's path on that device from then on (the call that failed
  included). A kernel that runs but computes a wrong result is not caught here; ``scripts/gpu_check.sh`` checks
  the results on a GPU.
"""

from __future__ import annotations

import os
import warnings
from typing import Callable, Optional, Set, Tuple, TypeVar

import torch

Result = TypeVar("Result")

_enabled = os.environ.get("SEESAW_LOSSES_TRITON", "1") not in ("0", "false", "False", "")
_failed: Set[Tuple[str, str]] = set()
"""``(kernel, device)`` pairs whose Triton kernel failed: they stay on the engine's path."""


class use_triton:
    """Turn the fused Triton kernels on or off for the whole process, at once; as a context manager, only within
    the block (the previous setting comes back at its end). The default is on unless ``SEESAW_LOSSES_TRITON=0``.

    Examples:
        >>> from seesaw_losses.functional import use_triton
        >>> _ = use_triton(False)      # from here on, every loss runs on PyTorch operations
        >>> with use_triton(True):     # the kernels again, within the block
        ...     pass
    """

    def __init__(self, enabled: bool) -> None:
        global _enabled
        self._previous, _enabled = _enabled, bool(enabled)

    def __enter__(self) -> "use_triton":
        return self

    def __exit__(self, *exc_info) -> None:
        global _enabled
        _enabled = self._previous


def triton_enabled() -> bool:
    return _enabled


def guarded(kernel: object, device: torch.device, launch: Callable[[], Optional[Result]]) -> Optional[Result]:
    """``launch()``, the Triton pass of ``kernel`` on ``device``; None (the engine's path) when it fails now, with
    a warning, or failed before."""
    key = (type(kernel).__name__, str(device))
    if key in _failed:
        return None
    try:
        return launch()
    except torch.cuda.OutOfMemoryError:
        raise  # the engine's path would need the memory too; nothing is wrong with the kernel
    except Exception as error:  # a compiler or driver error of any type
        _failed.add(key)
        message = str(error).strip().splitlines()
        warnings.warn(f"seesaw_losses: the Triton kernel for {key[0]} failed on {key[1]} ({type(error).__name__}: "
                      f"{message[0] if message else ''}); it runs on PyTorch operations on that device from now on "
                      "(SEESAW_LOSSES_TRITON=0 turns every Triton kernel off)", RuntimeWarning, stacklevel=2)
        return None
