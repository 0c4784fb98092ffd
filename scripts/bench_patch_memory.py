"""Peak memory of a patch-segmentation run against the number of training images: it should not grow with them.

Generates 40 and 400 grayscale ``SIZE x SIZE`` PNG pairs (thin bright lines on noise), and in a fresh process for
each runs the real patch trainer for one epoch (one patch per image, so training sees every image) with the same
5 held-out images and 5 validation images predicted whole by the sliding window, images read in the process
(``--workers 0``, so that the process's own peak RSS holds everything). Prints the peak RSS of each
(``resource.getrusage``), what loading the training images up front would take, and the ratio (target <= 1.2).

    PYTHONPATH=src python scripts/bench_patch_memory.py            # 40 and 400 images of 256x256
    PYTHONPATH=src python scripts/bench_patch_memory.py --small    # 8 and 40 images of 768x768 (the slow test)

The images are large enough for the check to fail: loading 40 of them up front would add more than a fifth to the
peak of the 8-image run, and the script prints the ratio such a regression would reach.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

HELD_OUT = 5
TARGET = 1.2


def write_pairs(folder: Path, count: int, size: int, seed: int) -> Path:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    for part in ("images", "masks"):
        (folder / part).mkdir(parents=True, exist_ok=True)
    for k in range(count):
        mask = np.zeros((size, size), dtype=np.uint8)
        mask[rng.integers(size), :] = 255
        mask[:, rng.integers(size)] = 255
        image = np.clip(rng.normal(90, 25, (size, size)) + 0.4 * mask, 0, 255).astype(np.uint8)
        Image.fromarray(image).save(folder / "images" / f"{k:04d}.png")
        Image.fromarray(mask).save(folder / "masks" / f"{k:04d}.png")
    return folder


def child(folder: Path, held_out: Path, patch_size: int, workers: int) -> None:
    """One patch run in this process; prints ``images peak_kib``."""
    import torch

    from seesaw_losses.experiments.losses import build, parse_loss
    from seesaw_losses.experiments.data.patches import load_patch_data
    from seesaw_losses.experiments.run import SIGMOID, Run
    from seesaw_losses.experiments.trainers import Budget, PatchSegmentationTrainer

    torch.set_num_threads(1)
    count = len(list((folder / "images").iterdir()))
    data = load_patch_data(folder / "images", folder / "masks", patch_size=patch_size,
                           test_images=held_out / "images", test_masks=held_out / "masks",
                           val_fraction=HELD_OUT / count, workers=workers)
    trainer = PatchSegmentationTrainer(data, Budget(epochs=1, batch_size=16, lr=1e-3), patch_size=patch_size,
                                       patches_per_image=1, width=8, depth=3, loader_workers=workers)

    trainer(build(parse_loss("bce"), data.class_counts).module, Run(0, False, "bce", {}, family=SIGMOID))
    print(len(data.train), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="8 and 40 images of 768x768, patches of 64")
    parser.add_argument("--workers", type=int, default=0, help="loader worker processes (default 0)")
    parser.add_argument("--out", type=Path, help="folder for the generated images (default: a temporary one)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), int(args.child[2]), args.workers)
        return 0
    counts, size, patch = ((8, 40), 768, 64) if args.small else ((40, 400), 256, 64)
    with tempfile.TemporaryDirectory(dir=args.out) as scratch:
        held_out = write_pairs(Path(scratch) / "held_out", HELD_OUT, size, seed=1)
        peaks, eager = {}, {}
        for count in counts:
            folder = write_pairs(Path(scratch) / f"train_{count}", count, size, seed=0)
            done = subprocess.run([sys.executable, __file__, "--workers", str(args.workers), "--child", str(folder),
                                   str(held_out), str(patch)], capture_output=True, text=True, check=True)
            trained, peak_kib = map(int, done.stdout.split()[-2:])
            peaks[count] = peak_kib / 1024
            eager[count] = trained * size * size * (4 + 8) / 2**20  # float32 images + int64 masks, loaded up front
            print(f"{count:4d} images of {size}x{size} ({trained} trained on, patches of {patch}): peak RSS "
                  f"{peaks[count]:.0f} MiB (loading them up front would add ~{eager[count]:.0f} MiB)")
    ratio = peaks[counts[1]] / peaks[counts[0]]
    regression = (peaks[counts[0]] + eager[counts[1]]) / peaks[counts[0]]
    print(f"ratio {counts[1]} / {counts[0]} images: {ratio:.3f} (target <= {TARGET}); loading the images up front "
          f"would reach ~{regression:.3f}")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
