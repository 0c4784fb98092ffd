"""Class counts summed over the processes of a data-parallel job, on ``torch.distributed``.

In data-parallel training every process sees a different shard of each batch. The stateful losses sum each
batch's class counts over the processes (one ``all_reduce`` of a small int64 vector, no ``.item()``), so every
process adds the counts of the whole global batch and all of them hold the same counts at every step: the counts
of the global batch stream, as a single process would have counted them.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.distributed as dist
from torch import Tensor

from .functional._validation import fail


def check_sync_options(fn: str, sync_counts: object, process_group: object) -> None:
    """``sync_counts`` is True, False or None; ``process_group`` is None or a group from ``new_group``."""
    if sync_counts is not None and not isinstance(sync_counts, bool):
        fail(fn, "sync_counts", "True, False or None (automatic)", repr(sync_counts), error=TypeError)
    if process_group is None:
        return
    if sync_counts is False:
        fail(fn, "process_group", "None when sync_counts=False", f"a {type(process_group).__name__}",
             "the group is only used to sum the class counts; drop one of the two arguments")
    if not _is_group(process_group):
        fail(fn, "process_group", "None or a torch.distributed process group", f"a {type(process_group).__name__}",
             "create one with torch.distributed.new_group(ranks)", error=TypeError)


def _is_group(process_group: object) -> bool:
    if not dist.is_available():
        return False
    # ``new_group`` returns ``GroupMember.NON_GROUP_MEMBER`` on the processes left out of the group.
    return isinstance(process_group, dist.ProcessGroup) or process_group is dist.GroupMember.NON_GROUP_MEMBER


def sum_over_processes(fn: str, counts: Tensor, sync_counts: Optional[bool], process_group: Any) -> Tensor:
    """Sum ``counts`` over the processes of ``process_group`` (default: all of them).

    ``sync_counts=None`` sums when ``torch.distributed`` is initialised and the group holds more than one
    process; ``True`` insists on an initialised process group; ``False`` returns ``counts`` unchanged. A process
    outside ``process_group`` keeps its own counts. The only synchronisation is the collective itself.

    Shape:
        - counts: ``(K,)`` integer counts of this process's shard.
        - output: ``(K,)``, a new tensor unless nothing is summed.
    """
    if sync_counts is False:
        return counts
    if not (dist.is_available() and dist.is_initialized()):
        if sync_counts:
            fail(fn, "sync_counts", "False or None when torch.distributed is not initialised", sync_counts,
                 "call torch.distributed.init_process_group() before the first training step, or pass "
                 "sync_counts=None to sum only when it is", error=RuntimeError)
        return counts
    if process_group is dist.GroupMember.NON_GROUP_MEMBER or dist.get_world_size(process_group) == 1:
        return counts
    total = counts.clone(memory_format=torch.contiguous_format)
    dist.all_reduce(total, op=dist.ReduceOp.SUM, group=process_group)
    return total
