"""The long-tail losses' state under torch.distributed: real gloo processes on loopback, with the launch, data and
checkpoint helpers of test_distributed. Logit adjustment and LDAM count labels as Seesaw does; EQLv2 sums its
float gradient statistics, as does equalized focal loss. Every process must hold the global statistics, and a killed run must resume exactly."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import torch
import torch.distributed as dist

from seesaw_losses import EQLv2Loss, EqualizedFocalLoss, LDAMLoss, LogitAdjustedLoss
from seesaw_losses.sampling import RepeatFactorSampler

from test_distributed import NUM_CLASSES, STEPS, _global_batch, _histogram, _launch, _save, _shard, _signal

multiprocessing.get_context("forkserver").set_forkserver_preload(["torch._dynamo", "test_distributed", __name__])


def _losses(group=None) -> dict:
    losses = {
        "logit_adjusted": LogitAdjustedLoss(NUM_CLASSES, reduction="none"),
        "ldam": LDAMLoss(NUM_CLASSES, scale=5.0, reduction="none"),
        "eqlv2": EQLv2Loss(NUM_CLASSES, reduction="none"),
        "eqlv2_background": EQLv2Loss(NUM_CLASSES, background_channel=True, reduction="none", ignore_index=-1),
        "efl": EqualizedFocalLoss(NUM_CLASSES, reduction="none"),
    }
    if group is not None:
        losses["eqlv2_group01"] = EQLv2Loss(NUM_CLASSES, reduction="none", process_group=group)
    return losses


def _apply(name: str, loss, batch: dict) -> torch.Tensor:
    if name == "eqlv2_background":  # detection: C + 1 logits, label C for background proposals
        return loss(batch["box_logits"][:, :NUM_CLASSES + 1], batch["box_labels"])
    return loss(batch["logits"], batch["labels"])


def _state(loss) -> dict:
    return {k: v.clone() for k, v in loss.state_dict().items()}


SAMPLER_LABELS = [[0]] * 30 + [[0, 1]] * 4 + [[2]]


def _sync_worker(rank: int, world_size: int, out: Path) -> None:
    losses = _losses(dist.new_group([0, 1]))
    outputs = {name: [_apply(name, loss, _shard(_global_batch(step), rank)) for step in range(STEPS)]
               for name, loss in losses.items()}
    sampler = RepeatFactorSampler(SAMPLER_LABELS, threshold=0.2, seed=3)  # replicas and rank from the group
    sampler.set_epoch(1)
    _save({"outputs": outputs, "states": {name: _state(loss) for name, loss in losses.items()},
           "shard": list(sampler)}, out / f"sync_{rank}.pt")


def test_every_process_holds_the_global_statistics_and_the_single_process_losses(tmp_path):
    world_size = 3
    _launch(_sync_worker, world_size, tmp_path)
    results = [torch.load(tmp_path / f"sync_{rank}.pt") for rank in range(world_size)]
    batches = [_global_batch(step) for step in range(STEPS)]
    reference = _losses()
    single = {name: [_apply(name, loss, batch) for batch in batches] for name, loss in reference.items()}
    labels = torch.cat([b["labels"] for b in batches])
    for rank, result in enumerate(results):
        for name in ("logit_adjusted", "ldam"):
            assert torch.equal(result["states"][name]["class_counts"], _histogram(labels, NUM_CLASSES, -100))
        for name, loss in reference.items():
            for key, value in loss.state_dict().items():
                # statistics of float32 logits: the shards' sums round differently from the whole batch's
                torch.testing.assert_close(result["states"][name][key], value, rtol=1e-6, atol=1e-6,
                                           msg=f"{name}.{key} on rank {rank}")
                # every process holds the very same statistics, bit for bit
                assert torch.equal(result["states"][name][key], results[0]["states"][name][key])
        # a group of processes 0 and 1 sums over the two only; process 2 keeps its own shard's
        pair = EQLv2Loss(NUM_CLASSES, reduction="none")
        for batch in batches:
            shards = [_shard(batch, r) for r in ((0, 1) if rank < 2 else (2,))]
            _apply("eqlv2", pair, {k: torch.cat([s[k] for s in shards]) for k in batch})
        torch.testing.assert_close(result["states"]["eqlv2_group01"]["pos_grad"], pair.pos_grad, rtol=1e-6, atol=1e-6)
    for name, steps in single.items():
        for step, expected in enumerate(steps):
            sharded = torch.cat([result["outputs"][name][step] for result in results])
            torch.testing.assert_close(sharded, expected, msg=f"{name} at step {step}")
    assert bool((results[0]["states"]["eqlv2"]["neg_grad"] > 0).all()) and results[0]["states"]["eqlv2"]["pos_grad"].sum() > 0
    # the sampler reads the group: equal, disjoint shards of the one epoch list
    for rank, result in enumerate(results):
        explicit = RepeatFactorSampler(SAMPLER_LABELS, threshold=0.2, seed=3, num_replicas=world_size, rank=rank)
        explicit.set_epoch(1)
        assert result["shard"] == list(explicit)


RESUME_AT, RESUME_END = 2, 5
RESUMED_END = {("first", rank, RESUME_END) for rank in range(2)}  #: both ranks saved the step the resumed run ends at


def _resume_worker(rank: int, world_size: int, out: Path, phase: str) -> None:
    """``"first"`` runs without end (checkpoint after RESUME_AT steps) until killed; ``"resumed"`` loads the
    checkpoint and runs up to RESUME_END. Both record every step's losses and states."""
    losses = _losses()
    step = 0
    if phase == "resumed":
        checkpoint = torch.load(out / "checkpoint.pt")
        for name, loss in losses.items():
            loss.load_state_dict(checkpoint[name])
        step = checkpoint["step"]
    while phase == "first" or step < RESUME_END:
        batch = _shard(_global_batch(step), rank)
        outputs = {name: _apply(name, loss, batch) for name, loss in losses.items()}
        step += 1
        if phase == "first" and step == RESUME_AT and rank == 0:
            _save({"step": step, **{name: loss.state_dict() for name, loss in losses.items()}},
                  out / "checkpoint.pt")
        if step <= RESUME_END:
            _save({"outputs": outputs, "states": {name: _state(loss) for name, loss in losses.items()}},
                  out / f"{phase}_{rank}_{step}.pt")
            _signal((phase, rank, step))


def test_kill_and_resume_continues_exactly_like_the_uninterrupted_run(tmp_path):
    _launch(_resume_worker, 2, tmp_path, "first", until=lambda messages: RESUMED_END <= set(messages))
    _launch(_resume_worker, 2, tmp_path, "resumed")
    for rank in range(2):
        for step in range(RESUME_AT + 1, RESUME_END + 1):
            first = torch.load(tmp_path / f"first_{rank}_{step}.pt")
            resumed = torch.load(tmp_path / f"resumed_{rank}_{step}.pt")
            for name in first["states"]:
                for key, value in first["states"][name].items():
                    assert torch.equal(resumed["states"][name][key], value), (rank, step, name, key)
                assert torch.equal(resumed["outputs"][name], first["outputs"][name]), (rank, step, name)
