"""Class counts under torch.distributed: real processes (gloo on loopback), DDP, kill-and-resume, options.

Each multi-process test spawns fresh processes joined by a gloo group and waits on events only: a process ending, or
a message a worker sends (``_signal``) when it reaches a point the test waits for. Whatever is still alive is killed
in ``finally``, so a failing test leaves no process behind; a long guard (nothing happening for minutes) turns a hang
into a failure instead of a stuck run.
"""

from __future__ import annotations

import copy
import inspect
import json
import multiprocessing
import os
import re
import socket
from multiprocessing import connection
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from seesaw_losses import BinarySeesawLoss, SeesawLoss
from seesaw_losses.integrations.mmdet import SeesawLoss as MMDetSeesawLoss
from seesaw_losses.functional import binary_seesaw_loss

REPO = Path(__file__).resolve().parents[1]
NUM_CLASSES = 5
CLASS_PROBS = torch.tensor([0.55, 0.25, 0.12, 0.05, 0.03])
STEPS = 4
BATCH = 16
SHARD_BOUNDS = (0, 7, 9, 16)  # uneven shards for 3 processes: 7, 2 and 7 samples


# launching -------------------------------------------------------------------------------------------------


# Processes start from a fork server that has imported torch, DDP's imports and this file once, not from a fresh
# interpreter each (seconds per process on a busy machine).
multiprocessing.get_context("forkserver").set_forkserver_preload(["torch._dynamo", __name__])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_SIGNALS = None  #: in a worker, the pipe to the launching test


def _signal(message) -> None:
    """Tell the launching test that this worker reached a point (``_launch``'s ``until`` reads the messages)."""
    _SIGNALS.send(message)


def _entry(rank: int, world_size: int, port: int, signals, worker, args) -> None:
    global _SIGNALS
    _SIGNALS = signals
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size,
                            timeout=timedelta(seconds=20))
    try:
        worker(rank, world_size, *args)
    finally:
        dist.destroy_process_group()


def _launch(worker, world_size: int, *args, until=None, guard: float = 600.0) -> list:
    """Run ``worker(rank, world_size, *args)`` in ``world_size`` fresh processes joined by a gloo group and return
    the messages they sent with :func:`_signal`.

    Waits on events: a process ending (all ended well: return; one raised: re-raise its exception) or a message,
    after which ``until(messages)`` true returns at once (the processes are then killed). Fails when nothing at
    all happens for ``guard`` seconds (a hang). Never leaves a process alive.
    """
    reader, writer = multiprocessing.get_context("forkserver").Pipe(duplex=False)
    context = mp.start_processes(_entry, args=(world_size, _free_port(), writer, worker, args), nprocs=world_size,
                                 join=False, start_method="forkserver")
    messages = []
    try:
        while True:
            if not connection.wait([reader, *context.sentinels], timeout=guard):
                pytest.fail(f"{worker.__name__}: no process ended and none sent a message for {guard} s")
            while reader.poll():
                messages.append(reader.recv())
            if until is not None and until(messages):
                return messages
            if context.join(timeout=0):
                return messages
    finally:
        for process in context.processes:
            if process.is_alive():
                process.kill()
            process.join(5)


def _save(obj, path: Path) -> None:
    """Write atomically, so a reader (or a kill) never sees half a file."""
    partial = path.with_suffix(".partial")
    torch.save(obj, partial)
    os.replace(partial, path)


# data: a deterministic global batch per step, split into per-process shards ----------------------------------


def _global_batch(step: int) -> dict:
    g = torch.Generator().manual_seed(1000 + step)
    labels = torch.multinomial(CLASS_PROBS, BATCH, replacement=True, generator=g)
    labels[torch.rand(BATCH, generator=g) < 0.15] = -100
    boxes = torch.multinomial(torch.cat([CLASS_PROBS * 0.4, torch.tensor([0.6])]), BATCH, replacement=True,
                              generator=g)
    mask = (torch.rand(BATCH, 1, 4, 4, generator=g) < 0.1).float()
    mask[torch.rand(BATCH, 1, 4, 4, generator=g) < 0.05] = 255
    return {
        "logits": 2 * torch.randn(BATCH, NUM_CLASSES, generator=g), "labels": labels,
        "box_logits": 2 * torch.randn(BATCH, NUM_CLASSES + 2, generator=g), "box_labels": boxes,
        "mask_logits": 2 * torch.randn(BATCH, 1, 4, 4, generator=g), "mask": mask,
    }


def _shard(batch: dict, rank: int, bounds=SHARD_BOUNDS) -> dict:
    return {k: v[bounds[rank]:bounds[rank + 1]] for k, v in batch.items()}


def _histogram(values: torch.Tensor, bins: int, ignore: int) -> torch.Tensor:
    values = values.reshape(-1).long()
    return torch.bincount(values[values != ignore], minlength=bins)


def _sync_losses(group=None) -> dict:
    """The losses under test; with ``group`` (in the processes) one insists on summing, one sums over ``group``."""
    losses = {
        "plain": SeesawLoss(NUM_CLASSES, reduction="none"),
        "objectness": MMDetSeesawLoss(num_classes=NUM_CLASSES, reduction="none"),
        "paper": BinarySeesawLoss(reduction="none", ignore_index=255, sync_counts=None if group is None else True),
        "reweighted": BinarySeesawLoss(variant="reweighted", reduction="none", ignore_index=255),
        "local": SeesawLoss(NUM_CLASSES, reduction="none", sync_counts=False),
    }
    if group is not None:
        losses["group01"] = SeesawLoss(NUM_CLASSES, reduction="none", process_group=group)
    return losses


def _apply(name: str, loss: nn.Module, batch: dict):
    if name == "objectness":
        out = loss(batch["box_logits"], batch["box_labels"])
        return torch.stack([out["loss_cls_classes"], out["loss_cls_objectness"]])
    if name in ("paper", "reweighted"):
        return loss(batch["mask_logits"], batch["mask"])
    return loss(batch["logits"], batch["labels"])


def _stuck_worker(rank: int, world_size: int, out: Path, failing_rank: int) -> None:
    _save(os.getpid(), out / f"pid_{rank}")
    dist.barrier()  # both pids are on disk before either worker fails or blocks
    _signal(("blocked", rank))
    if rank == failing_rank:
        raise RuntimeError("worker failed on purpose")
    threading.Event().wait()  # blocks until killed: nothing ever sets it


@pytest.mark.parametrize("failing_rank", [1, None], ids=["a worker fails", "workers block"])
def test_launch_leaves_no_process_behind(tmp_path, failing_rank):
    if failing_rank is not None:
        with pytest.raises(mp.ProcessRaisedException, match="on purpose"):
            _launch(_stuck_worker, 2, tmp_path, failing_rank)
    else:  # the launcher stops when both block, and kills them
        messages = _launch(_stuck_worker, 2, tmp_path, None, until=lambda messages: len(messages) == 2)
        assert sorted(messages) == [("blocked", 0), ("blocked", 1)]
    for rank in range(2):
        with pytest.raises(ProcessLookupError):
            os.kill(torch.load(tmp_path / f"pid_{rank}"), 0)


# every process holds the global counts; per-sample losses equal one process on the whole batch ---------------


def _sync_worker(rank: int, world_size: int, out: Path) -> None:
    group01 = dist.new_group([0, 1])
    losses = _sync_losses(group01)
    outputs = {name: [_apply(name, loss, _shard(_global_batch(step), rank)) for step in range(STEPS)]
               for name, loss in losses.items()}
    # A copy keeps the options and the counts.
    twin = copy.deepcopy(losses["group01"])
    assert twin.process_group is losses["group01"].process_group
    # Eval mode counts nothing and runs no collective: one process alone can evaluate.
    if rank == 0:
        for name, loss in losses.items():
            _apply(name, loss.eval(), _global_batch(STEPS))
    _save({"counts": {name: loss.class_counts for name, loss in losses.items()},
           "background": losses["objectness"].background_count, "outputs": outputs,
           "twin": twin.class_counts}, out / f"sync_{rank}.pt")


def test_every_process_holds_the_global_counts_and_the_single_process_losses(tmp_path):
    world_size = 3
    _launch(_sync_worker, world_size, tmp_path)
    results = [torch.load(tmp_path / f"sync_{rank}.pt") for rank in range(world_size)]
    batches = [_global_batch(step) for step in range(STEPS)]
    stream = {k: torch.cat([b[k] for b in batches]) for k in batches[0]}
    boxes = _histogram(stream["box_labels"], NUM_CLASSES + 1, -1)
    expected = {
        "plain": _histogram(stream["labels"], NUM_CLASSES, -100),
        "objectness": boxes[:NUM_CLASSES],
        "paper": _histogram(stream["mask"], 2, 255),
        "reweighted": _histogram(stream["mask"], 2, 255),
    }
    for rank, result in enumerate(results):
        for name, counts in expected.items():
            assert counts.sum() > 0 and torch.equal(result["counts"][name], counts), (rank, name)
        assert result["background"].item() == boxes[NUM_CLASSES].item()
        own = torch.cat([_shard(b, rank)["labels"] for b in batches])
        assert torch.equal(result["counts"]["local"], _histogram(own, NUM_CLASSES, -100))
        pair = torch.cat([_shard(b, r)["labels"] for b in batches for r in (0, 1)])
        group_counts = _histogram(pair if rank < 2 else own, NUM_CLASSES, -100)
        assert torch.equal(result["counts"]["group01"], group_counts)
        assert torch.equal(result["twin"], group_counts)

    # One process on the concatenated batches: the same per-sample losses, step by step.
    reference = _sync_losses()
    for step, batch in enumerate(batches):
        for name in expected:
            single = _apply(name, reference[name], batch)
            dim = 1 if name == "objectness" else 0
            sharded = torch.cat([result["outputs"][name][step] for result in results], dim=dim)
            torch.testing.assert_close(sharded, single, msg=f"{name} at step {step}")
            # The processes' sums add up to the global sum.
            torch.testing.assert_close(sum(r["outputs"][name][step].sum() for r in results), single.sum())


# DistributedDataParallel: loss inside or outside the module, broadcast_buffers on or off ----------------------

# torch 2.13 renamed DDP's ``broadcast_buffers`` (rank 0's buffers copied to all at each forward).
BUFFER_SYNC_OPTION = ("forward_sync_buffers" if "forward_sync_buffers" in
                      inspect.signature(DistributedDataParallel).parameters else "broadcast_buffers")
DDP_BOUNDS = (0, 11, 16)  # uneven: 11 and 5 samples
DDP_STEPS = 3


class _Net(nn.Module):
    """A linear classifier; with ``with_loss`` it owns the losses and its forward returns the objective."""

    def __init__(self, with_loss: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Linear(NUM_CLASSES, 4)
        self.criteria = _criteria() if with_loss else None

    def forward(self, x, y=None, scale=None):
        logits = self.body(x)
        return logits if self.criteria is None else _objective(logits, y, *self.criteria, scale)


def _criteria():
    return nn.ModuleList([SeesawLoss(4, reduction="sum"), BinarySeesawLoss(reduction="sum")])


def _objective(logits, y, seesaw, binary, scale):
    """Global mean of the loss: each process's sum divided by ``global count / world_size``; DDP averages."""
    background = (y == 0).float().unsqueeze(1)
    return (seesaw(logits, y) + binary(logits[:, :1], background)) * scale


def _ddp_batch(step: int):
    g = torch.Generator().manual_seed(2000 + step)
    return torch.randn(DDP_BOUNDS[-1], NUM_CLASSES, generator=g), torch.multinomial(
        torch.tensor([0.6, 0.25, 0.1, 0.05]), DDP_BOUNDS[-1], replacement=True, generator=g)


def _train(model, criteria, steps, scale, shard=lambda t: t):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for step in range(steps):
        x, y = (shard(t) for t in _ddp_batch(step))
        optimizer.zero_grad()
        loss = model(x, y, scale) if criteria is None else _objective(model(x), y, *criteria, scale)
        loss.backward()
        optimizer.step()


def _ddp_worker(rank: int, world_size: int, out: Path) -> None:
    results = {}
    for inside in (True, False):
        for broadcast_buffers in (True, False):
            net = _Net(with_loss=inside)
            criteria = None if inside else _criteria()
            model = DistributedDataParallel(net, **{BUFFER_SYNC_OPTION: broadcast_buffers})
            _train(model, criteria, DDP_STEPS, world_size / DDP_BOUNDS[-1],
                   lambda t: t[DDP_BOUNDS[rank]:DDP_BOUNDS[rank + 1]])
            owner = net.criteria if inside else criteria
            results[inside, broadcast_buffers] = {
                "counts": [c.class_counts.clone() for c in owner], "params": copy.deepcopy(net.body.state_dict())}
    _save(results, out / f"ddp_{rank}.pt")


def test_ddp_counts_identical_on_every_process_and_training_matches_one_process(tmp_path):
    _launch(_ddp_worker, 2, tmp_path)
    results = [torch.load(tmp_path / f"ddp_{rank}.pt") for rank in range(2)]
    labels = torch.cat([_ddp_batch(step)[1] for step in range(DDP_STEPS)])
    counts = [torch.bincount(labels, minlength=4), torch.stack([(labels != 0).sum(), (labels == 0).sum()])]
    reference = _Net(with_loss=True)
    _train(reference, None, DDP_STEPS, 1 / DDP_BOUNDS[-1])
    assert len(results[0]) == 4
    for result in results:
        for config, state in result.items():
            for got, want in zip(state["counts"], counts):
                assert torch.equal(got, want), config
            for name, value in reference.body.state_dict().items():
                torch.testing.assert_close(state["params"][name], value, msg=f"{name} {config}")


# kill and resume ----------------------------------------------------------------------------------------------

RESUME_AT, RESUME_END = 2, 5
RESUMED_END = {("first", rank, RESUME_END) for rank in range(2)}  #: both ranks saved the step the resumed run ends at


def _resume_worker(rank: int, world_size: int, out: Path, phase: str) -> None:
    """``phase="first"`` trains without end (checkpoint after RESUME_AT steps) until it is killed;
    ``phase="resumed"`` loads that checkpoint and trains up to RESUME_END. Both record every step."""
    net = _Net(with_loss=True)
    binary = BinarySeesawLoss(variant="paper", reduction="sum")
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5, momentum=0.9)
    step = 0
    if phase == "resumed":
        state = torch.load(out / "checkpoint.pt")
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        binary.load_state_dict(state["binary"])
        step = state["step"]
    model = DistributedDataParallel(net)
    shard = slice(DDP_BOUNDS[rank], DDP_BOUNDS[rank + 1])
    while phase == "first" or step < RESUME_END:
        x, y = (t[shard] for t in _ddp_batch(step))
        optimizer.zero_grad()
        # The model owns two losses (saved with the model); a third, outside, is saved on its own.
        loss = model(x, y, world_size / DDP_BOUNDS[-1]) + binary(x[:, :1], (y == 1).float()[:, None])
        loss.backward()
        optimizer.step()
        step += 1
        if phase == "first" and step == RESUME_AT and rank == 0:
            _save({"step": step, "model": net.state_dict(), "optimizer": optimizer.state_dict(),
                   "binary": binary.state_dict()}, out / "checkpoint.pt")
        if step <= RESUME_END:
            _save({"loss": loss.detach(), "counts": [c.class_counts.clone() for c in (*net.criteria, binary)],
                   "params": copy.deepcopy(net.body.state_dict())}, out / f"{phase}_{rank}_{step}.pt")
            _signal((phase, rank, step))


def test_kill_and_resume_continues_exactly_like_the_uninterrupted_run(tmp_path):
    # The first run is the uninterrupted one; it goes on past RESUME_END and is killed mid-run.
    _launch(_resume_worker, 2, tmp_path, "first", until=lambda messages: RESUMED_END <= set(messages))
    _launch(_resume_worker, 2, tmp_path, "resumed")
    labels = torch.cat([_ddp_batch(step)[1] for step in range(RESUME_END)])
    for rank in range(2):
        for step in range(RESUME_AT + 1, RESUME_END + 1):
            first = torch.load(tmp_path / f"first_{rank}_{step}.pt")
            resumed = torch.load(tmp_path / f"resumed_{rank}_{step}.pt")
            for got, want in zip(resumed["counts"], first["counts"]):
                assert torch.equal(got, want), (rank, step)
            torch.testing.assert_close(resumed["loss"], first["loss"])
            torch.testing.assert_close(resumed["params"], first["params"])
        # Nothing lost, nothing counted twice: the counts of the global batch stream.
        final = torch.load(tmp_path / f"resumed_{rank}_{RESUME_END}.pt")["counts"]
        assert torch.equal(final[0], torch.bincount(labels, minlength=4))
        assert torch.equal(final[2], torch.stack([(labels != 1).sum(), (labels == 1).sum()]))


# the example script, run as docs/distributed.md shows --------------------------------------------------------


def test_example_trains_with_torchrun_on_two_processes():
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(REPO / "examples" / "train_ddp.py"), "--steps", "4"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    counts = dict(re.findall(r"rank (\d) counts (\[[\d, ]+\])", done.stdout))
    assert set(counts) == {"0", "1"} and counts["0"] == counts["1"], done.stdout
    assert sum(json.loads(counts["0"])) == 4 * 2 * 64, done.stdout  # steps x processes x batch size


# one process: options, errors, checkpoints -------------------------------------------------------------------


@pytest.mark.parametrize("module", [SeesawLoss, BinarySeesawLoss])
def test_sync_options_are_validated(module):
    make = (lambda **kw: module(3, **kw)) if module is SeesawLoss else module
    with pytest.raises(TypeError, match=r"sync_counts must be True, False or None \(automatic\), got 'yes'"):
        make(sync_counts="yes")
    with pytest.raises(TypeError, match=r"process_group must be None or a torch.distributed process group, got "
                                        r"a str; create one with torch.distributed.new_group"):
        make(process_group="gloo")
    with pytest.raises(ValueError, match="process_group must be None when sync_counts=False"):
        make(sync_counts=False, process_group="gloo")


def test_sync_counts_true_needs_an_initialised_process_group():
    loss = SeesawLoss(3, sync_counts=True)
    logits, labels = torch.randn(4, 3), torch.tensor([0, 1, 1, 2])
    with pytest.raises(RuntimeError, match=r"SeesawLoss.forward: sync_counts must be False or None when "
                                           r"torch.distributed is not initialised, got True; call "
                                           r"torch.distributed.init_process_group\(\)"):
        loss(logits, labels)
    loss.eval()(logits, labels)  # nothing is counted in eval mode, so nothing needs summing
    automatic = SeesawLoss(3)
    automatic(logits, labels)
    assert automatic.class_counts.tolist() == [1, 2, 1]


def test_reweighted_batch_counts_default_to_the_targets_counts():
    logits = torch.randn(2, 1, 5, 5)
    mask = (torch.rand(2, 1, 5, 5) < 0.2).float()
    counts = torch.stack([(mask == 0).sum(), (mask == 1).sum()])
    default = binary_seesaw_loss(logits, mask, None, variant="reweighted")
    torch.testing.assert_close(binary_seesaw_loss(logits, mask, None, variant="reweighted", batch_counts=counts),
                               default)
    global_counts = counts * torch.tensor([3, 1])  # a global batch with relatively fewer foreground pixels
    assert not torch.allclose(
        binary_seesaw_loss(logits, mask, None, variant="reweighted", batch_counts=global_counts), default)
    with pytest.raises(ValueError, match="binary_seesaw_loss: batch_counts must be None for variant='paper'"):
        binary_seesaw_loss(logits, mask, counts, batch_counts=counts)
    with pytest.raises(ValueError, match="binary_seesaw_loss: batch_counts must be a 1-D tensor of 2 class counts"):
        binary_seesaw_loss(logits, mask, None, variant="reweighted", batch_counts=torch.ones(3))
