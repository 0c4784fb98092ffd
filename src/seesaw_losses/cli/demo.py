"""``seesaw demo``: train with each loss on the built-in datasets and rank them."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from ..experiments.losses import DEFAULT_BINARY_LOSSES as SEGMENTATION_LOSSES
from ..experiments.losses import DEFAULT_MULTICLASS_LOSSES as LONG_TAIL_LOSSES
from ._common import (
    add_run_options, configure_torch, positive_int, prepare_output, print_files, require_extras, train_each,
)

#: Data and training budget: (train images, held-out images, segmentation epochs, long-tail epochs).
BUDGETS = {"default": (160, 48, 10, 30), "quick": (32, 12, 2, 6)}
IMAGE_SIZE = 64


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="train with each loss on built-in imbalanced data and rank them",
        description="Train a small U-Net with each segmentation loss on built-in vessel/crack images (foreground "
                    "1-5% of pixels) and an MLP with each classification loss on a built-in long-tailed task "
                    "(imbalance 100), under the same budget and seed; print ranked tables and write a report "
                    "folder with plots, results.json and CSVs. No download.")
    parser.add_argument("--quick", action="store_true", help="a tiny budget (well under a minute), for tests")
    parser.add_argument("--task", choices=("all", "segmentation", "long-tail"), default="all")
    parser.add_argument("--seg-loss", action="append", metavar="SPEC",
                        help="segmentation loss, repeatable, e.g. focal:gamma=2 "
                             f"(default: {' '.join(SEGMENTATION_LOSSES)})")
    parser.add_argument("--cls-loss", action="append", metavar="SPEC",
                        help=f"long-tail loss, repeatable (default: {' '.join(LONG_TAIL_LOSSES)})")
    parser.add_argument("--epochs", type=positive_int, default=None,
                        help="segmentation epochs (default: 10, or 2 with --quick)")
    add_run_options(parser, "seesaw-report")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    require_extras("demo")
    from ..experiments import data, losses, report, train

    seg_specs = losses.parse_losses(args.seg_loss or SEGMENTATION_LOSSES)
    cls_specs = losses.parse_losses(args.cls_loss or LONG_TAIL_LOSSES)
    prepare_output(args.out, args.force)
    device = configure_torch(args)
    n_train, n_val, seg_epochs, cls_epochs = BUDGETS["quick" if args.quick else "default"]
    seg_epochs = args.epochs or seg_epochs
    comparisons, settings = {}, {"quick": args.quick, "device": device, "seed": args.seed}
    segmentation = long_tail = None

    if args.task in ("all", "segmentation"):
        segmentation = data.vessel_dataset(n_train, n_val, size=IMAGE_SIZE, seed=args.seed)
        counts = [int((segmentation.train.masks == c).sum()) for c in range(2)]
        built = [losses.build(spec, counts) for spec in seg_specs]
        seg_settings = train.Settings(epochs=seg_epochs, batch_size=8, lr=3e-3, seed=args.seed, device=device,
                                      width=8, depth=3, progress=args.progress)
        print(f"Segmentation: {segmentation.description}")
        print(f"  U-Net width 8, depth 3; {seg_epochs} epochs, batch 8, AdamW lr 3e-3 (cosine), on {device}")
        comparisons["segmentation"] = train_each(report.BINARY, "Sparse vessel/crack segmentation", segmentation,
                                                  built, train.train_segmentation, seg_settings)
        settings["segmentation"] = asdict(seg_settings)

    if args.task in ("all", "long-tail"):
        long_tail = data.long_tail(seed=args.seed)
        built = [losses.build(spec, long_tail.class_counts) for spec in cls_specs]
        cls_settings = train.Settings(epochs=cls_epochs, batch_size=64, lr=2e-3, seed=args.seed, device=device,
                                      progress=args.progress)
        print(f"\nLong-tailed classification: {long_tail.description}")
        print(f"  MLP 2x128; {cls_epochs} epochs, batch 64, AdamW lr 2e-3 (cosine); groups by training count: "
              "head > 100, medium 20-100, tail < 20")
        comparisons["long_tail"] = train_each(report.LONG_TAIL, "Long-tailed classification", long_tail, built,
                                               train.train_long_tail, cls_settings)
        settings["long_tail"] = asdict(cls_settings)

    for comparison in comparisons.values():
        print("\n" + report.format_table(comparison))
    written = report.write_report(args.out, comparisons, segmentation,
                                  None if long_tail is None else long_tail.class_counts, settings)
    print_files(args.out, written)
    return 0
