"""Peak tensor memory of a piece of work, for the benchmark and the comparison's cost column.

The most bytes of tensors live at once while a function runs, above what existed before it. On CPU it is read
from the allocation and free events that ``torch.profiler`` records for every tensor allocation
(``profile_memory=True``); on CUDA from ``torch.cuda.max_memory_allocated``. It counts tensors only, not the
process's RSS.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Callable, Iterator

import torch


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null: the profiler's C++ side logs a line at every start and stop."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def peak_tensor_bytes(fn: Callable[[], object], device: str = "cpu") -> int:
    """Peak bytes of tensors allocated while ``fn()`` runs, above those alive before it."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    from torch.profiler import ProfilerActivity, profile
    with _quiet_native_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                    if e.name() == "[memory]")
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak
