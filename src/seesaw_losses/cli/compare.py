"""``seesaw compare``: train with each loss on the user's own images and masks, over seeds, and rank them."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..experiments.losses import DEFAULT_BINARY_LOSSES, DEFAULT_MULTICLASS_LOSSES
from ._common import (
    add_comparison_options, add_run_options, check_comparison_options, configure_torch, output_folder,
    positive_float, positive_int, print_files, refuse_output_inside, require_extras, run_comparison,
)
from .errors import InputError

DEPTH = 3


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare", help="train with each loss on your images and masks and rank them",
        description="Train a small U-Net with each loss on your images and masks (paired by file name; PNG, JPEG, "
                    "TIFF or NPY; binary 0/1 or 0/255 masks, or class-index masks) over several seeds, under the "
                    "same budget, optionally after tuning each loss's hyperparameters, and rank the losses on a "
                    "held-out split with confidence intervals. The data are checked before any training.")
    parser.add_argument("--images", type=Path, required=True, help="folder of images")
    parser.add_argument("--masks", type=Path, required=True, help="folder of masks, same file names as the images")
    parser.add_argument("--test-images", type=Path, help="held-out images (default: split off --test-fraction)")
    parser.add_argument("--test-masks", type=Path, help="held-out masks, with --test-images")
    parser.add_argument("--test-fraction", type=float, default=0.2,
                        help="fraction held out for the reported metrics without --test-images (default 0.2)")
    parser.add_argument("--val-fraction", type=float, default=0.2,
                        help="fraction of the training pairs used for validation: thresholds, tuning, curves "
                             "(default 0.2)")
    parser.add_argument("--loss", action="append", metavar="SPEC",
                        help="loss, repeatable, with parameters: --loss focal:gamma=2 --loss seesaw:p=0.8,q=2 "
                             f"(default, binary masks: {' '.join(DEFAULT_BINARY_LOSSES)}; class-index masks: "
                             f"{' '.join(DEFAULT_MULTICLASS_LOSSES)})")
    parser.add_argument("--mask-mode", choices=("auto", "binary", "classes"), default="auto",
                        help="auto: binary or class-index masks, instance-label masks refused; binary: label > 0 "
                             "is foreground (instance masks); classes: values are class indices")
    parser.add_argument("--ignore-index", type=int, default=None, metavar="V",
                        help="mask value of pixels to skip (e.g. 255): passed to every loss, left out of every "
                             "metric")
    parser.add_argument("--allow-lossy-masks", action="store_true",
                        help="read JPEG masks (as binary: foreground above half the maximum level) instead of "
                             "refusing them")
    parser.add_argument("--no-resize", dest="resize", action="store_false",
                        help="train at the images' own size (one common size, sides divisible by 8) instead of "
                             "resizing to --image-size")
    parser.add_argument("--epochs", type=positive_int, default=20, help="epochs per training run (default 20)")
    parser.add_argument("--image-size", type=positive_int, default=128,
                        help=f"side images are resized to, a multiple of {2**DEPTH} (default 128)")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="default 8")
    parser.add_argument("--lr", type=positive_float, default=3e-3, help="AdamW learning rate (default 3e-3)")
    parser.add_argument("--width", type=positive_int, default=16, help="U-Net channels at full resolution (16)")
    add_comparison_options(parser, seeds=3)
    add_run_options(parser, "seesaw-compare")
    parser.set_defaults(func=run)


def _check_options(args: argparse.Namespace) -> None:
    if args.resize and (args.image_size % 2**DEPTH or args.image_size < 2**(DEPTH + 1)):
        raise InputError(f"--image-size must be a multiple of {2**DEPTH} and at least {2**(DEPTH + 1)}, "
                         f"got {args.image_size}")
    for name in ("test_fraction", "val_fraction"):
        if not 0 < getattr(args, name) < 1:
            raise InputError(f"--{name.replace('_', '-')} must be between 0 and 1, got {getattr(args, name)}")
    check_comparison_options(args)
    refuse_output_inside(args.out, [args.images, args.masks, args.test_images, args.test_masks])


def run(args: argparse.Namespace) -> int:
    require_extras("compare")
    from ..experiments import comparison, io, losses, report, train

    _check_options(args)
    specs = losses.parse_losses(args.loss) if args.loss else None
    reading = io.MaskReading(args.mask_mode, args.ignore_index, args.allow_lossy_masks)
    data = io.load_user_data(args.images, args.masks, size=args.image_size if args.resize else None,
                             test_images=args.test_images, test_masks=args.test_masks,
                             test_fraction=args.test_fraction, val_fraction=args.val_fraction, seed=args.seed,
                             reading=reading, multiple=2**DEPTH)
    if specs is None:
        specs = losses.parse_losses(DEFAULT_BINARY_LOSSES if data.binary else DEFAULT_MULTICLASS_LOSSES)
    masks = data.train.masks
    counts = [int((masks == c).sum()) for c in range(data.num_classes)]
    device = configure_torch(args)
    settings = train.Settings(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                              device=device, width=args.width, depth=DEPTH)
    task = comparison.Task(comparison.BINARY if data.binary else comparison.MULTICLASS, "Your data", data, counts,
                           train.train_segmentation, settings, train.rank_metric(data.binary), data.ignore_index)
    for spec in specs:  # a loss that does not fit the data fails here, before any folder or training
        task.build(spec)
    with output_folder(args.out, force=args.force, resume=args.resume):
        print(f"Data: {data.description}")
        print(f"  U-Net width {args.width}, depth {DEPTH}; {args.epochs} epochs, batch {args.batch_size}, "
              f"AdamW lr {args.lr:g} (cosine), {args.seeds} seed(s), on {device}")
        result = run_comparison(task, specs, args, args.seeds, args.tune, data.description, data.notes)
        print("\n" + report.format_tables(result))
        written = report.write_report(args.out, {"segmentation": result}, data, None, {
            "segmentation": vars(settings) | {"seeds": args.seeds, "tune": args.tune}, "images": str(args.images),
            "masks": str(args.masks), "image_size": args.image_size if args.resize else None,
            "ignore_index": args.ignore_index, "mask_mode": args.mask_mode}, "seesaw compare report")
    print_files(args.out, written, [result])
    return 0
