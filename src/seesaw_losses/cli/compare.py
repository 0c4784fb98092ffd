"""``seesaw compare``: train with each loss on the user's own images and masks and rank them."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

from ..experiments import InputError
from ..experiments.losses import DEFAULT_BINARY_LOSSES, DEFAULT_MULTICLASS_LOSSES
from ._common import (
    add_run_options, configure_torch, positive_float, positive_int, prepare_output, print_files, require_extras,
    train_each,
)

DEPTH = 3


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare", help="train with each loss on your images and masks and rank them",
        description="Train a small U-Net with each loss on your images and masks (paired by file name; PNG, JPEG, "
                    "TIFF or NPY; binary 0/1 or 0/255 masks, or class-index masks), under the same budget and "
                    "seed, and rank the losses on a validation split.")
    parser.add_argument("--images", type=Path, required=True, help="folder of images")
    parser.add_argument("--masks", type=Path, required=True, help="folder of masks, same file names as the images")
    parser.add_argument("--val-images", type=Path, help="validation images (default: split off --val-fraction)")
    parser.add_argument("--val-masks", type=Path, help="validation masks, with --val-images")
    parser.add_argument("--val-fraction", type=float, default=0.2,
                        help="fraction held out for validation without --val-images (default 0.2)")
    parser.add_argument("--loss", action="append", metavar="SPEC",
                        help="loss, repeatable, with parameters: --loss focal:gamma=2 --loss seesaw:p=0.8,q=2 "
                             f"(default, binary masks: {' '.join(DEFAULT_BINARY_LOSSES)}; class-index masks: "
                             f"{' '.join(DEFAULT_MULTICLASS_LOSSES)})")
    parser.add_argument("--epochs", type=positive_int, default=20, help="epochs per loss (default 20)")
    parser.add_argument("--image-size", type=positive_int, default=128,
                        help=f"side images are resized to, a multiple of {2**DEPTH} (default 128)")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="default 8")
    parser.add_argument("--lr", type=positive_float, default=3e-3, help="AdamW learning rate (default 3e-3)")
    parser.add_argument("--width", type=positive_int, default=16, help="U-Net channels at full resolution (16)")
    add_run_options(parser, "seesaw-compare")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    require_extras("compare")
    from ..experiments import io, losses, report, train

    if args.image_size % 2**DEPTH or args.image_size < 2**(DEPTH + 1):
        raise InputError(f"--image-size must be a multiple of {2**DEPTH} and at least {2**(DEPTH + 1)}, "
                         f"got {args.image_size}")
    if not 0 < args.val_fraction < 1:
        raise InputError(f"--val-fraction must be between 0 and 1, got {args.val_fraction}")
    specs = losses.parse_losses(args.loss) if args.loss else None
    prepare_output(args.out, args.force)
    data = io.load_user_data(args.images, args.masks, size=args.image_size, val_images=args.val_images,
                             val_masks=args.val_masks, val_fraction=args.val_fraction, seed=args.seed)
    if specs is None:
        specs = losses.parse_losses(DEFAULT_BINARY_LOSSES if data.binary else DEFAULT_MULTICLASS_LOSSES)
    counts = [int((data.train.masks == c).sum()) for c in range(data.num_classes)]
    built = [losses.build(spec, counts) for spec in specs]
    device = configure_torch(args)
    settings = train.Settings(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                              device=device, width=args.width, depth=DEPTH, progress=args.progress)
    print(f"Data: {data.description}")
    print(f"  U-Net width {args.width}, depth {DEPTH}; {args.epochs} epochs, batch {args.batch_size}, "
          f"AdamW lr {args.lr:g} (cosine), on {device}")
    comparison = train_each(report.BINARY if data.binary else report.MULTICLASS, "Your data", data, built,
                            train.train_segmentation, settings, notes=data.notes)
    print("\n" + report.format_table(comparison))
    written = report.write_report(args.out, {"segmentation": comparison}, data, None,
                                  {"segmentation": asdict(settings), "image_size": args.image_size,
                                   "images": str(args.images), "masks": str(args.masks)})
    print_files(args.out, written)
    return 0
