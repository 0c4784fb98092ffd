"""Benchmark of the library's losses against plain-autograd formulas, PyTorch's native losses and peers.

Run ``seesaw bench`` or ``python -m seesaw_losses.bench``; see :func:`seesaw_losses.bench.runner.run`.
"""

from .runner import run_benchmark
from .workloads import WORKLOADS, Workload

__all__ = ["WORKLOADS", "Workload", "run_benchmark"]
