"""Cumulative class counts kept as module state, summed over processes in data-parallel training."""

from __future__ import annotations

import copy
from typing import Any, Optional

import torch
from torch import Tensor, nn

from ..distributed import check_sync_options, sum_over_processes
from ..functional._validation import fail


@torch.library.custom_op("seesaw_losses::state_snapshot", mutates_args=())
def _state_snapshot(state: Tensor) -> Tensor:
    return state.clone()


@_state_snapshot.register_fake
def _(state: Tensor) -> Tensor:
    return torch.empty_like(state)


def read_state(state: Tensor) -> Tensor:
    """A buffer that training updates in place, as a loss's ``forward`` reads it.

    Eager, the buffer itself: autograd saves what the backward needs as new tensors. Under ``torch.compile``, a
    copy made by an opaque operator: AOTAutograd's partitioner may otherwise recompute in the backward what the
    forward derived from the buffer, reading it after the in-place update that follows (in the same graph, or
    in the next forward before a delayed backward): silently wrong gradients. It saves an opaque operator's
    output rather than recompute it, so the backward reads the values the forward read.

    Shape:
        - state: any; output: the same.
    """
    return _state_snapshot(state) if torch.compiler.is_compiling() else state


class SyncedState(nn.Module):
    """Module state summed over the processes of a ``torch.distributed`` job: the ``sync_counts`` and
    ``process_group`` options, the sum, and a deep copy that shares the process group."""

    def _init_sync(self, fn: str, sync_counts: Optional[bool], process_group: Any) -> None:
        check_sync_options(fn, sync_counts, process_group)
        self._counts_owner = fn
        self.sync_counts, self.process_group = sync_counts, process_group

    def _sum_over_processes(self, values: Tensor) -> Tensor:
        return sum_over_processes(f"{self._counts_owner}.forward", values, self.sync_counts, self.process_group)

    def __deepcopy__(self, memo: dict) -> "SyncedState":
        """Copy everything but the process group, which cannot be copied and is shared (e.g. by an EMA model)."""
        memo[id(self.process_group)] = self.process_group
        copied = type(self).__new__(type(self))
        memo[id(self)] = copied
        copied.__setstate__(copy.deepcopy(self.__dict__, memo))
        return copied


class ClassCountsMixin(SyncedState):
    """Keeps ``class_counts``, an int64 buffer (exact beyond 2**24, saved in ``state_dict``, moved by ``.to()``),
    and optionally ``background_count``, a 0-d int64 buffer.

    Subclasses call :meth:`accumulate` with a batch's counts in ``forward``; in training mode it sums them over
    the processes of a ``torch.distributed`` job (see :mod:`seesaw_losses.distributed`) and adds them to the
    buffers, so every process holds the counts of the global batch stream and a checkpoint of any one process
    resumes exactly. ``load_state_dict`` also reads MMDetection's and mmpretrain's float ``cum_samples`` buffer.
    """

    class_counts: Tensor
    background_count: Tensor

    def _init_counts(self, fn: str, num_classes: int, *, sync_counts: Optional[bool], process_group: Any,
                     background: bool = False) -> None:
        self._init_sync(fn, sync_counts, process_group)
        self.register_buffer("class_counts", torch.zeros(num_classes, dtype=torch.int64))
        if background:
            self.register_buffer("background_count", torch.zeros((), dtype=torch.int64))

    @property
    def _has_background(self) -> bool:
        return "background_count" in self._buffers

    def accumulate(self, batch_counts: Tensor) -> Tensor:
        """In training mode, sum a batch's counts over the processes and add them to the buffers.

        Returns the counts added (the global batch's), or ``batch_counts`` unchanged in eval mode, where nothing
        is counted and no collective runs. No host synchronisation beyond the collective.

        Shape:
            - batch_counts: ``(C,)``, or ``(C + 1,)`` ending with the background count when there is a
              ``background_count`` buffer.
            - output: the same shape.
        """
        if not self.training:
            return batch_counts
        batch_counts = self._sum_over_processes(batch_counts)
        num_classes = self.class_counts.numel()
        counts = batch_counts.to(self.class_counts.device)
        self.class_counts.add_(counts[:num_classes])
        if self._has_background:
            self.background_count.add_(counts[num_classes])
        return batch_counts

    def reset_counts(self) -> None:
        """Forget the counts seen so far."""
        self.class_counts.zero_()
        if self._has_background:
            self.background_count.zero_()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs) -> None:
        legacy = prefix + "cum_samples"
        if legacy in state_dict and prefix + "class_counts" not in state_dict:
            self._read_cum_samples(state_dict.pop(legacy), state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def _read_cum_samples(self, cum_samples: Tensor, state_dict: dict, prefix: str) -> None:
        """MMDetection's ``cum_samples`` (float, ``C + 1`` with background) or mmpretrain's (float, ``C``)."""
        fn, num_classes = f"{self._counts_owner}.load_state_dict", self.class_counts.numel()
        sizes = (num_classes, num_classes + 1) if self._has_background else (num_classes,)
        if not isinstance(cum_samples, Tensor) or cum_samples.dim() != 1 or cum_samples.numel() not in sizes:
            hint = ("a (C + 1) cum_samples comes from MMDetection's box head; use "
                    "seesaw_losses.integrations.mmdet.SeesawLoss"
                    if isinstance(cum_samples, Tensor) and cum_samples.numel() == num_classes + 1 else "")
            fail(fn, "cum_samples", f"a 1-D tensor of {' or '.join(map(str, sizes))} counts", cum_samples, hint)
        counts = cum_samples.detach().double().round()
        if not bool(torch.isfinite(counts).all()) or bool((counts < 0).any()):
            fail(fn, "cum_samples", "finite and non-negative", cum_samples)
        counts = counts.to(torch.int64)
        state_dict[prefix + "class_counts"] = counts[:num_classes]
        if self._has_background:
            state_dict[prefix + "background_count"] = (
                counts[num_classes] if counts.numel() > num_classes else torch.zeros((), dtype=torch.int64))
