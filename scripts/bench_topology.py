"""Time and peak memory of the topology losses against DiceLoss, forward + backward, in one process.

Candidates run in alternating rounds (so that a busy machine slows them alike); the table gives the median
time and the peak tensor memory of one call (gradient included), each as a ratio to DiceLoss.

    PYTHONPATH=src python scripts/bench_topology.py [--rounds 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import seesaw_losses as sl
from seesaw_losses.memory import peak_tensor_bytes
from seesaw_losses.transforms import signed_distance_map, tubed_skeleton

WORKLOADS = {"2D binary (16,1,512,512)": (16, 1, 512, 512), "3D binary (2,1,64,128,128)": (2, 1, 64, 128, 128)}


def thin_lines(shape, generator):
    """Masks of random straight lines two pixels wide (about 3% foreground in 2D)."""
    mask = torch.zeros(shape)
    spatial = shape[2:]
    for n in range(shape[0]):
        for _ in range(8 if len(spatial) == 2 else 24):
            start, end = (torch.rand(2, len(spatial), generator=generator) * torch.tensor(spatial)).unbind(0)
            for s in torch.linspace(0, 1, 2 * max(spatial)):
                point = (start + s * (end - start)).long().clamp(max=torch.tensor(spatial) - 2)
                mask[(n, 0) + tuple(slice(int(p), int(p) + 2) for p in point)] = 1
    return mask


def candidates(mask):
    skeleton = tubed_skeleton(mask, spatial_dims=mask.dim() - 2)
    distance = signed_distance_map(mask, spatial_dims=mask.dim() - 2)
    dice, cldice = sl.DiceLoss(), sl.ClDiceLoss()
    recall, boundary = sl.SkeletonRecallLoss(), sl.BoundaryLoss()
    return {
        "DiceLoss": lambda x: dice(x, mask),
        "ClDiceLoss (3 iterations)": lambda x: cldice(x, mask),
        "SkeletonRecallLoss, precomputed skeleton": lambda x: recall(x, mask, skeleton),
        "SkeletonRecallLoss, skeleton computed in torch": lambda x: recall(x, mask),
        "BoundaryLoss, precomputed distance map": lambda x: boundary(x, mask, distance),
        "BoundaryLoss, distance map computed (SciPy)": lambda x: boundary(x, mask),
    }


def step(loss, logits):
    logits.grad = None
    loss(logits).backward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    for title, shape in WORKLOADS.items():
        mask = thin_lines(shape, generator)
        logits = torch.randn(shape, generator=generator).requires_grad_()
        losses = candidates(mask)
        times = {name: [] for name in losses}
        for name, loss in losses.items():
            step(loss, logits)  # warm-up
        for _ in range(args.rounds):
            for name, loss in losses.items():
                start = time.perf_counter()
                step(loss, logits)
                times[name].append(time.perf_counter() - start)
        peaks = {name: peak_tensor_bytes(lambda: step(loss, logits)) for name, loss in losses.items()}
        base_time, base_peak = statistics.median(times["DiceLoss"]), peaks["DiceLoss"]
        print(f"\n{title}, foreground {float(mask.mean()):.1%}, {args.rounds} rounds, {args.threads} threads")
        print(f"{'loss':48} {'ms':>9} {'x Dice':>7} {'peak MB':>9} {'x Dice':>7}")
        for name in losses:
            ms, peak = statistics.median(times[name]) * 1e3, peaks[name]
            print(f"{name:48} {ms:9.1f} {ms / base_time / 1e3:7.2f} {peak / 2**20:9.1f} {peak / base_peak:7.2f}")


if __name__ == "__main__":
    main()
