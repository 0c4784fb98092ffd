"""Data-parallel training with Seesaw loss on CPU: every process holds the same, global class counts.

    PYTHONPATH=src torchrun --nproc_per_node 2 examples/train_ddp.py

Trains a small classifier on a synthetic long-tailed data set (6 classes, 300:1 head to tail), each process on
its own shard of every batch (``DistributedSampler``). ``SeesawLoss`` sums each batch's class counts over the
processes, so its mitigation factors come from the counts of the whole global batch stream. With
``--checkpoint PATH`` it resumes from PATH when it exists and saves there at the end.
"""

from __future__ import annotations

import argparse
import itertools
import os

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from seesaw_losses import SeesawLoss

CLASS_SIZES = (3000, 1200, 500, 150, 40, 10)


def long_tailed_data(features: int = 16) -> TensorDataset:
    """Gaussian clusters, one per class, with long-tailed class sizes; the same on every process."""
    g = torch.Generator().manual_seed(0)
    centres = 0.6 * torch.randn(len(CLASS_SIZES), features, generator=g)
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(CLASS_SIZES)])
    return TensorDataset(centres[labels] + torch.randn(len(labels), features, generator=g), labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps in this run")
    parser.add_argument("--batch-size", type=int, default=64, help="samples per process and step")
    parser.add_argument("--checkpoint", help="resume from this file if it exists; save to it at the end")
    args = parser.parse_args()

    torch.set_num_threads(1)
    dist.init_process_group("gloo")  # torchrun provides rank, world size and address
    rank, world_size = dist.get_rank(), dist.get_world_size()

    data = long_tailed_data()
    sampler = DistributedSampler(data, shuffle=True, seed=0, drop_last=True)
    loader = DataLoader(data, batch_size=args.batch_size, sampler=sampler, drop_last=True)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, len(CLASS_SIZES)))
    criterion = SeesawLoss(len(CLASS_SIZES))  # sync_counts=None: sums counts because dist is initialised
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    step = 0
    if args.checkpoint and os.path.exists(args.checkpoint):
        state = torch.load(args.checkpoint)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        criterion.load_state_dict(state["criterion"])  # the global counts, exactly
        step = state["step"]
        if rank == 0:
            print(f"resumed at step {step}", flush=True)
    model = DistributedDataParallel(model)

    end = step + args.steps
    while step < end:
        sampler.set_epoch(step // len(loader))  # a resumed run continues the epoch where the checkpoint left it
        for x, y in itertools.islice(loader, step % len(loader), None):
            optimizer.zero_grad()
            # Equal shards: DDP's averaging of the per-process mean gradients gives the global mean's gradient.
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            step += 1
            if step % 20 == 0 or step == end:
                mean_loss = loss.detach().clone()
                dist.all_reduce(mean_loss)
                if rank == 0:
                    print(f"step {step} loss {mean_loss.item() / world_size:.4f}", flush=True)
            if step == end:
                break

    for r in range(world_size):  # one process after the other
        if r == rank:
            print(f"rank {rank} counts {criterion.class_counts.tolist()}", flush=True)
        dist.barrier()
    if args.checkpoint and rank == 0:
        torch.save({"step": step, "model": model.module.state_dict(), "optimizer": optimizer.state_dict(),
                    "criterion": criterion.state_dict()}, args.checkpoint)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
