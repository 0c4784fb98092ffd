"""Which loss wins when one training run spans several GPUs: ``compare`` under ``torchrun``, with DDP.

    torchrun --nproc-per-node 2 examples/compare_torchrun.py --quick      # CPU processes (gloo), seconds
    torchrun --nproc-per-node 8 examples/compare_torchrun.py --out report  # one GPU per rank (NCCL)

Every rank runs this script and calls ``compare`` with the same arguments. Rank 0 claims each job (a tuning trial
or a final run) from the study and sends it to the other ranks; every rank then calls ``train`` with the same
loss, hyperparameters and seed, and trains its shard of the data inside ``DistributedDataParallel``; rank 0
records what ``train`` returned and writes the report; every rank gets the result. Each rank prints one line per
call, so the output shows the ranks training the same jobs.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from seesaw_losses import compare

CLASS_SIZES = (400, 120, 40, 12)  #: a long tail of 4 classes
FEATURES = 8


def features(sizes, seed: int):
    """Gaussian clusters, one per class: ``(N, FEATURES)`` inputs and ``(N,)`` labels."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(len(sizes), FEATURES, generator=torch.Generator().manual_seed(0)) * 1.2
    x = torch.cat([centres[k] + torch.randn(n, FEATURES, generator=g) for k, n in enumerate(sizes)])
    y = torch.cat([torch.full((n,), k) for k, n in enumerate(sizes)])
    return x, y


def train(criterion, run, epochs: int = 20):
    """Train a linear classifier with ``criterion`` on this rank's shard; return the balanced accuracy on the
    held-out set (the same on every rank)."""
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(run.seed)
    model = DistributedDataParallel(nn.Linear(FEATURES, len(CLASS_SIZES)).to(device))
    criterion = criterion.to(device)
    x, y = features(CLASS_SIZES, seed=1)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.2)
    for epoch in range(epochs):
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(run.seed * 1000 + epoch))
        shard = order[rank::world]  # every rank its own part of the same epoch
        loss = criterion(model(x[shard].to(device)), y[shard].to(device))
        optimiser.zero_grad()
        loss.backward()  # DDP averages the gradients over the ranks
        optimiser.step()
    test_x, test_y = features((100,) * len(CLASS_SIZES), seed=2 if run.tuning else 3)  # validation / held-out
    with torch.no_grad():
        predicted = model(test_x.to(device)).argmax(1).cpu()
    recall = [(predicted[test_y == k] == k).float().mean().item() for k in range(len(CLASS_SIZES))]
    line = f"rank {rank}: {'tuning' if run.tuning else 'final'} {run.loss} seed {run.seed}\n"
    sys.stdout.write(line)  # one write: the ranks' lines do not interleave
    sys.stdout.flush()
    return {"balanced_accuracy": sum(recall) / len(recall)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny budget: 2 trials, 2 seeds")
    parser.add_argument("--out", default=None, help="report folder (written by rank 0)")
    args = parser.parse_args()
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        result = compare(train, ["ce", "balanced_softmax", "logit_adjusted"], metric="balanced_accuracy",
                         class_counts=CLASS_SIZES, seeds=2 if args.quick else 5, tune=2 if args.quick else 10,
                         out=args.out, progress=False)
        if dist.get_rank() == 0:
            print(result)
        dist.barrier()  # every rank done with the group before it is torn down
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
