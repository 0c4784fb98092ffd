"""Repeat-factor sampling (Gupta et al., "LVIS: A Dataset for Large Vocabulary Instance Segmentation", CVPR 2019),
the "RFS" part of Seesaw's LVIS recipe: images with rare classes are seen more often per epoch."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Dict, List, Optional, Union

import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import Sampler

from .functional._validation import check_int, check_number, fail

Labels = Union[Tensor, Sequence[Union[int, Iterable[int]]]]

__all__ = ["RepeatFactorSampler", "repeat_factors"]


def _class_sets(fn: str, labels: Labels, num_classes: Optional[int]) -> List[frozenset]:
    """Each sample's set of classes, checked to be non-negative integers (below ``num_classes`` if given)."""
    if isinstance(labels, Tensor):
        if labels.dim() != 1 or labels.is_floating_point() or labels.dtype == torch.bool:
            fail(fn, "labels", "a 1-D integer tensor (one class per sample) or a sequence of classes or class sets",
                 labels, error=TypeError)
        labels = labels.tolist()
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence):
        fail(fn, "labels", "a sequence with one class or set of classes per sample", type(labels).__name__,
             error=TypeError)
    if len(labels) == 0:
        fail(fn, "labels", "non-empty", "no samples")
    sets = []
    for index, label in enumerate(labels):
        items = label.tolist() if isinstance(label, Tensor) else label
        items = [items] if isinstance(items, int) else items
        try:
            classes = frozenset(items)
        except TypeError:
            fail(fn, f"labels[{index}]", "a class index or an iterable of class indices", repr(label), error=TypeError)
        for c in classes:
            if isinstance(c, bool) or not isinstance(c, int):
                fail(fn, f"labels[{index}]", "integer class indices", repr(label), error=TypeError)
            if c < 0 or (num_classes is not None and c >= num_classes):
                rule = "class indices >= 0" if num_classes is None else f"class indices in [0, {num_classes - 1}]"
                fail(fn, f"labels[{index}]", rule, repr(label))
        sets.append(classes)
    return sets


def repeat_factors(labels: Labels, threshold: float = 1e-3, *, num_classes: Optional[int] = None) -> Tensor:
    r"""Each sample's repeat factor for repeat-factor sampling (LVIS, Sec. 4).

    .. math::
        r_c = \max\Bigl(1, \sqrt{t / f_c}\Bigr), \qquad r_i = \max_{c \in i} r_c

    with :math:`f_c` the fraction of samples that contain class :math:`c` and :math:`t` the ``threshold``
    (classes present in fewer than a fraction ``t`` of the samples are over-sampled). A sample without classes
    (e.g. an image with no annotation) has factor 1.

    Args:
        labels: per sample, its class (classification) or the classes it contains (detection, segmentation):
            a 1-D integer tensor, or a sequence of ints and/or iterables of ints.
        threshold: :math:`t` in ``(0, 1]`` (``1e-3`` in the Seesaw LVIS recipe).
        num_classes: if given, every class must lie in ``[0, num_classes)``.

    Shape:
        - output: ``(N,)`` float64, one factor per sample, each ``>= 1``.

    Examples:
        >>> repeat_factors([0, 0, 0, 1], threshold=0.5)
        tensor([1.0000, 1.0000, 1.0000, 1.4142], dtype=torch.float64)
    """
    fn = "repeat_factors"
    check_number(fn, "threshold", threshold, low=0, high=1, low_open=True)
    if num_classes is not None:
        check_int(fn, "num_classes", num_classes, low=1)
    sets = _class_sets(fn, labels, num_classes)
    frequency: Dict[int, int] = {}
    for classes in sets:
        for c in classes:
            frequency[c] = frequency.get(c, 0) + 1
    per_class = {c: max(1.0, math.sqrt(threshold * len(sets) / k)) for c, k in frequency.items()}
    return torch.tensor([max((per_class[c] for c in classes), default=1.0) for classes in sets],
                        dtype=torch.float64)


class RepeatFactorSampler(Sampler[int]):
    r"""A sampler that draws each sample :math:`\lfloor r_i \rfloor` times per epoch, plus once more with
    probability :math:`r_i - \lfloor r_i \rfloor` (:func:`repeat_factors`), in a shuffled order.

    The draws and the order depend only on ``(seed, epoch)``: call :meth:`set_epoch` at the start of every epoch
    (as with ``DistributedSampler``). With several processes each draws the same epoch list and takes a disjoint,
    interleaved shard of equal length (the list padded with its own first indices, as ``DistributedSampler``
    pads), so one epoch covers the list once across the processes. ``len()`` is the current epoch's shard length
    (it varies from epoch to epoch by the random extra repeats).

    Args:
        labels: per sample, its class or the set of classes it contains (see :func:`repeat_factors`).
        threshold: frequency below which a class is over-sampled, in ``(0, 1]``.
        seed: base of the random draws; the same on every process.
        shuffle: shuffle the epoch list (else the repeats follow the sample order).
        num_replicas: number of processes (default: the ``torch.distributed`` world size, else 1).
        rank: this process's rank (default: the ``torch.distributed`` rank, else 0).
        num_classes: if given, every class must lie in ``[0, num_classes)``.

    Examples:
        >>> sampler = RepeatFactorSampler([0] * 98 + [1, 1], threshold=0.1)
        >>> loader = torch.utils.data.DataLoader(range(100), sampler=sampler, batch_size=16)
        >>> sampler.set_epoch(0); len(sampler) >= 100
        True
    """

    def __init__(self, labels: Labels, *, threshold: float = 1e-3, seed: int = 0, shuffle: bool = True,
                 num_replicas: Optional[int] = None, rank: Optional[int] = None,
                 num_classes: Optional[int] = None) -> None:
        fn = "RepeatFactorSampler"
        check_number(fn, "threshold", threshold, low=0, high=1, low_open=True)
        check_int(fn, "seed", seed, low=0)
        distributed = dist.is_available() and dist.is_initialized()
        if num_replicas is None:
            num_replicas = dist.get_world_size() if distributed else 1
        if rank is None:
            rank = dist.get_rank() if distributed else 0
        check_int(fn, "num_replicas", num_replicas, low=1)
        check_int(fn, "rank", rank, low=0)
        if rank >= num_replicas:
            fail(fn, "rank", f"in [0, {num_replicas - 1}] for num_replicas={num_replicas}", rank)
        try:
            self.factors = repeat_factors(labels, threshold, num_classes=num_classes)
        except (TypeError, ValueError) as error:
            raise type(error)(str(error).replace("repeat_factors:", f"{fn}:", 1)) from None
        self.threshold, self.seed, self.shuffle = threshold, seed, shuffle
        self.num_replicas, self.rank, self.epoch = num_replicas, rank, 0
        self._cache: Optional[tuple] = None

    def set_epoch(self, epoch: int) -> None:
        """Draw epoch ``epoch``'s repeats and order (the same on every process)."""
        check_int("RepeatFactorSampler.set_epoch", "epoch", epoch, low=0)
        self.epoch = epoch

    def epoch_indices(self) -> Tensor:
        """The whole epoch list (all processes' shards together, before padding)."""
        if self._cache is not None and self._cache[0] == self.epoch:
            return self._cache[1]
        # the CPU generator keeps 32 bits of its seed: mix (seed, epoch) into them
        generator = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) & 0xFFFFFFFF)
        whole = self.factors.floor()
        extra = torch.rand(self.factors.shape, generator=generator, dtype=torch.float64) < self.factors - whole
        indices = torch.repeat_interleave(torch.arange(len(self.factors)), (whole + extra).long())
        if self.shuffle:
            indices = indices[torch.randperm(len(indices), generator=generator)]
        self._cache = (self.epoch, indices)
        return indices

    def _shard(self) -> Tensor:
        indices = self.epoch_indices()
        per_replica = math.ceil(len(indices) / self.num_replicas)
        padding = per_replica * self.num_replicas - len(indices)
        if padding:
            indices = torch.cat([indices, indices.repeat(math.ceil(padding / len(indices)))[:padding]])
        return indices[self.rank::self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        return iter(self._shard().tolist())

    def __len__(self) -> int:
        return math.ceil(len(self.epoch_indices()) / self.num_replicas)
