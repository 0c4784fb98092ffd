"""Write the generated data of the documentation's two `seesaw compare` examples as PNG files.

- ``OUT/shapes/{train,test}/<class>/NNN.png``: 32x32 grayscale images of a bar at one angle per class, jittered,
  on strong noise; six classes with 300, 120, 50, 20, 8 and 3 training images (ImageNet-LT's many-, medium- and
  few-shot bands) and 20 held-out images each.
- ``OUT/vessels/{train,test}/{images,masks}/``: thin vessel- and crack-like structures
  (:func:`seesaw_losses.experiments.data.generated.vessels`) on images of three sizes, 96, 128 and 160 px, with 0/255 masks.

Usage: ``python scripts/make_example_data.py --out example-data``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from seesaw_losses.experiments.data.generated import vessels

COUNTS = {"airplane": 300, "bird": 120, "cat": 50, "deer": 20, "frog": 8, "horse": 3}
HELD_OUT = 20
SIZES = (96, 128, 160)


def shapes(out: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:32, :32] - 15.5
    for split, counts in (("train", COUNTS), ("test", dict.fromkeys(COUNTS, HELD_OUT))):
        for k, (name, count) in enumerate(counts.items()):
            folder = out / "shapes" / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                angle = np.pi * k / len(COUNTS) + rng.normal(0, 0.15)
                bar = np.abs(xx * np.sin(angle) - yy * np.cos(angle) + rng.normal(0, 3)) < 2
                pixels = np.clip(100 + 60 * bar + rng.normal(0, 45, (32, 32)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:03d}.png")


def thin_structures(out: Path) -> None:
    for split, per_size, seed in (("train", 8, 1), ("test", 2, 2)):
        images, masks = out / "vessels" / split / "images", out / "vessels" / split / "masks"
        images.mkdir(parents=True)
        masks.mkdir(parents=True)
        for k, size in enumerate(SIZES):
            data = vessels(per_size, size=size, seed=seed + 10 * k)
            for name, image, mask in zip(data.names, data.images, data.masks):
                grey = (255 * (image[0] - image.min()) / (image.max() - image.min())).astype(np.uint8)
                Image.fromarray(grey).save(images / f"{size}_{name}.png")
                Image.fromarray((255 * mask).astype(np.uint8)).save(masks / f"{size}_{name}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("example-data"), help="folder to create")
    args = parser.parse_args()
    shapes(args.out)
    thin_structures(args.out)
    print(f"wrote {args.out}/shapes and {args.out}/vessels")


if __name__ == "__main__":
    main()
