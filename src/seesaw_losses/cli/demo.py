"""``seesaw demo``: train with each loss on the built-in datasets over seeds, tune the cheap task, and rank them."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass

from ..experiments.losses import DEFAULT_BINARY_LOSSES as SEGMENTATION_LOSSES
from ..experiments.losses import DEFAULT_MULTICLASS_LOSSES as LONG_TAIL_LOSSES
from ._common import (
    add_run_options, check_losses, configure_torch, device_text, output_folder, positive_int, print_files,
    require_extras, run_comparison,
)


@dataclass(frozen=True)
class Budget:
    """Data and training budget of one demo run."""

    train: int  #: built-in training images (a fifth of them become the validation split)
    test: int  #: held-out images
    seg_epochs: int
    seg_seeds: int
    cls_epochs: int
    cls_seeds: int
    cls_trials: int  #: Optuna trials per long-tail loss (the cheap task is the one tuned)


BUDGETS = {"default": Budget(100, 40, 8, 2, 30, 5, 4), "quick": Budget(20, 8, 1, 2, 3, 2, 2)}
IMAGE_SIZE = 64


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="train with each loss on built-in imbalanced data and rank them",
        description="Train a small U-Net with each segmentation loss on built-in vessel/crack images (foreground "
                    "1-5% of pixels) and an MLP with each classification loss on a built-in long-tailed task "
                    "(imbalance 100), over several seeds under the same budget, the classification losses after "
                    "an Optuna search of their hyperparameters; print ranked tables with 95% intervals, ties and "
                    "a recommendation, and write a report folder (report.md, plots, results.json, CSVs, the "
                    "winner as a config). No download.")
    parser.add_argument("--quick", action="store_true", help="a tiny budget (well under a minute), for tests")
    parser.add_argument("--task", choices=("all", "segmentation", "long-tail"), default="all")
    parser.add_argument("--seg-loss", action="append", metavar="SPEC",
                        help="segmentation loss, repeatable, e.g. focal:gamma=2 "
                             f"(default: {' '.join(SEGMENTATION_LOSSES)})")
    parser.add_argument("--cls-loss", action="append", metavar="SPEC",
                        help=f"long-tail loss, repeatable (default: {' '.join(LONG_TAIL_LOSSES)})")
    parser.add_argument("--epochs", type=positive_int, default=None,
                        help=f"segmentation epochs (default: {BUDGETS['default'].seg_epochs}, or "
                             f"{BUDGETS['quick'].seg_epochs} with --quick)")
    parser.add_argument("--seeds", type=positive_int, default=None,
                        help="seeds per loss for both tasks (default: "
                             f"{BUDGETS['default'].seg_seeds} segmentation, {BUDGETS['default'].cls_seeds} long-tail)")
    parser.add_argument("--tune", type=int, default=None, metavar="TRIALS",
                        help=f"Optuna trials per long-tail loss (default {BUDGETS['default'].cls_trials}; 0: none)")
    add_run_options(parser, "seesaw-report")
    parser.set_defaults(func=run, storage=None, artifacts=None, resume=False, workers=1, pruner=None, margin=None)


def run(args: argparse.Namespace) -> int:
    require_extras("demo")
    from ..experiments import tuning
    from ..experiments.data import generated
    from ..experiments.reporting import report
    from ..experiments.trainers import Budget as Training
    from ..experiments.trainers import LongTailTrainer, SegmentationTrainer

    budget = BUDGETS["quick" if args.quick else "default"]
    trials = budget.cls_trials if args.tune is None else max(0, args.tune)
    epochs = args.epochs or budget.seg_epochs
    check_losses(args.seg_loss or SEGMENTATION_LOSSES, [99, 1])
    check_losses(args.cls_loss or LONG_TAIL_LOSSES, [2] * 10)
    results, settings = {}, {"quick": args.quick, "seed": args.seed}
    with output_folder(args.out, force=args.force):
        device = configure_torch(args)
        settings["device"] = device
        if args.task in ("all", "segmentation"):
            segmentation = generated.vessel_dataset(budget.train, budget.test, size=IMAGE_SIZE, seed=args.seed)
            seeds = args.seeds or budget.seg_seeds
            trainer = SegmentationTrainer(segmentation, Training(epochs, batch_size=8, lr=3e-3), width=8, depth=3)
            print(f"Segmentation: {segmentation.description}")
            print(f"  U-Net width 8, depth 3; {epochs} epochs, batch 8, AdamW lr 3e-3 (cosine), {seeds} seeds, "
                  f"{device_text(device)}")
            results["segmentation"] = run_comparison(
                trainer, args.seg_loss or SEGMENTATION_LOSSES, args, metric=trainer.metric, seeds=seeds, tune=0,
                device=device, class_counts=trainer.class_counts(), title="Sparse vessel/crack segmentation",
                description=segmentation.description, epochs=epochs)
            settings["segmentation"] = asdict(trainer.budget) | {"width": 8, "depth": 3, "seeds": seeds}

        if args.task in ("all", "long-tail"):
            long_tail = generated.long_tail(seed=args.seed)
            seeds = args.seeds or budget.cls_seeds
            trainer = LongTailTrainer(long_tail, Training(budget.cls_epochs, batch_size=64, lr=2e-3))
            print(f"\nLong-tailed classification: {long_tail.description}")
            print(f"  MLP 2x128; {budget.cls_epochs} epochs, batch 64, AdamW lr 2e-3 (cosine), {seeds} seeds, "
                  f"{device_text(device)}"
                  + (f", {trials} Optuna trials per loss" if trials else "")
                  + "; groups by training count: many-shot > 100, medium-shot 20-100, few-shot < 20")
            results["long_tail"] = run_comparison(
                trainer, args.cls_loss or LONG_TAIL_LOSSES, args, metric=trainer.metric, seeds=seeds, tune=trials,
                device=device, class_counts=[int(c) for c in long_tail.class_counts],
                title="Long-tailed classification", description=long_tail.description, epochs=budget.cls_epochs,
                storage=tuning.sqlite_url(args.out) if trials else None)  # the study in --out
            settings["long_tail"] = asdict(trainer.budget) | {"seeds": seeds, "tune": trials}

        for result in results.values():
            print("\n" + str(result))
        written = report.write_report(args.out, results, settings, "seesaw demo report")
    print_files(args.out, written, results.values())
    return 0
