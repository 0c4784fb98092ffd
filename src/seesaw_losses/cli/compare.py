"""``seesaw compare``: train with each loss on the user's own images and masks (the built-in U-Net, on whole
resized images or on patches at native resolution), on class folders (a small CNN) or with the user's own
``train(criterion, run)`` function, over seeds, and rank them."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from ..experiments.defaults import (BATCH_SIZE, DEPTH, EPOCHS, IMAGE_SIZE, LR, OVERLAP, PATCHES_PER_IMAGE,
                                    WIDTH)
from ..experiments.losses import DEFAULT_BINARY_LOSSES, DEFAULT_MULTICLASS_LOSSES
from ._common import (
    add_comparison_options, add_run_options, check_losses, configure_torch, device_text, output_folder,
    positive_float, positive_int, print_files, refuse_output_inside, require_extras, run_comparison, whole_number,
)
from .errors import InputError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare", help="train with each loss on your images and masks, or your own model, and rank them",
        description="Train with each loss over several seeds, under the same budget, optionally after tuning "
                    "each loss's hyperparameters, and rank the losses on a held-out split with confidence "
                    "intervals. Three modes: (1) --images and --masks: a small U-Net on your images and masks "
                    "(paired by file name; PNG, JPEG, TIFF or NPY; binary 0/1 or 0/255 masks, or class-index "
                    "masks), on whole resized images or, with --patch-size, on patches at native resolution; "
                    "(2) --images alone: a small CNN on class folders (torchvision's ImageFolder layout, one "
                    "subfolder per class; classes numbered in the folders' sorted order); (3) --train "
                    "FILE.py:FUNCTION: your own function train(criterion, run) -> {metric: value} (see "
                    "seesaw_losses.compare). The data are checked before any training.")
    parser.add_argument("--images", type=Path, help="folder of images")
    parser.add_argument("--masks", type=Path, help="folder of masks, same file names as the images")
    parser.add_argument("--train", metavar="FILE.py:FUNCTION",
                        help="your training function train(criterion, run) -> {metric: value}, from a file or "
                             "an importable module (package.module:FUNCTION), instead of --images/--masks")
    parser.add_argument("--metric", help="with --train: the returned metric that ranks the losses")
    parser.add_argument("--direction", choices=("maximize", "minimize"), default="maximize",
                        help="with --train: whether a larger --metric is better (default maximize)")
    parser.add_argument("--class-counts", metavar="N,N,...",
                        help="with --train: training samples per class (binary: background,foreground pixels), "
                             "for the losses that need them")
    parser.add_argument("--test-images", type=Path,
                        help="held-out images, class folders in the layout of --images without --masks (default: "
                             "split off --test-fraction, stratified by class for class folders)")
    parser.add_argument("--test-masks", type=Path, help="held-out masks, with --test-images")
    parser.add_argument("--test-fraction", type=float, default=0.2,
                        help="fraction held out for the reported metrics without --test-images (default 0.2)")
    parser.add_argument("--val-fraction", type=float, default=0.2,
                        help="fraction of the training pairs used for validation: thresholds, tuning, curves "
                             "(default 0.2)")
    parser.add_argument("--loss", action="append", metavar="SPEC",
                        help="loss, repeatable, with parameters: --loss focal:gamma=2 --loss seesaw:p=0.8,q=2 "
                             f"(default, binary masks: {' '.join(DEFAULT_BINARY_LOSSES)}; class-index masks: "
                             f"{' '.join(DEFAULT_MULTICLASS_LOSSES)}; class folders: the class-index ones, class "
                             "counts from the training split)")
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
    parser.add_argument("--patch-size", type=positive_int, default=None, metavar="P",
                        help=f"segmentation at native resolution: train on random PxP patches (a multiple of "
                             f"{2**DEPTH}; a third centred on foreground, smaller images padded) and predict "
                             "validation and held-out images whole by a sliding window; nothing is resized")
    parser.add_argument("--patches-per-image", type=positive_int, default=PATCHES_PER_IMAGE,
                        help="with --patch-size: patches drawn from each training image per epoch (default "
                             f"{PATCHES_PER_IMAGE})")
    parser.add_argument("--overlap", type=float, default=OVERLAP,
                        help=f"with --patch-size: overlap of the sliding windows, in [0, 1) (default {OVERLAP:g})")
    parser.add_argument("--loader-workers", type=whole_number(0), default=None, metavar="N",
                        help="with --patch-size or class folders: processes reading images on demand (default: "
                             "half the cores this process may use that no other process keeps busy; 0: read in "
                             "this process)")
    parser.add_argument("--epochs", type=positive_int, default=EPOCHS,
                        help=f"epochs per training run (default {EPOCHS})")
    parser.add_argument("--image-size", type=positive_int, default=None,
                        help=f"side images are resized to, a multiple of {2**DEPTH} for segmentation (default: "
                             f"{IMAGE_SIZE['segmentation']}, or the images' smallest side rounded down to a multiple "
                             f"of {2**DEPTH} when they are smaller: never up-sampled; class folders: "
                             f"{IMAGE_SIZE['classification']})")
    parser.add_argument("--batch-size", type=positive_int, default=None,
                        help=f"images a step (default {BATCH_SIZE['segmentation']}; patches a step with "
                             f"--patch-size: {BATCH_SIZE['patches']}; class folders: {BATCH_SIZE['classification']})")
    parser.add_argument("--lr", type=positive_float, default=LR, help=f"AdamW learning rate (default {LR:g})")
    parser.add_argument("--width", type=positive_int, default=None,
                        help=f"channels of the first block: U-Net (default {WIDTH['segmentation']}), class "
                             f"folders' CNN (default {WIDTH['classification']})")
    parser.add_argument("--amp", action="store_true",
                        help="mixed precision: bfloat16 autocast on the CPU, float16 with gradient scaling on CUDA "
                             "(the loss in float32)")
    parser.add_argument("--augment", choices=("flip", "none"), default="flip",
                        help="the built-in models' training augmentation: flip (default) mirrors class-folder "
                             "images left-right at random, and flips and turns segmentation images (patches) with "
                             "their masks by quarter turns; none trains on the images as read (for data whose "
                             "orientation carries meaning: digits, text)")
    parser.add_argument("--tolerance", action="append", type=positive_float, metavar="PIXELS",
                        help="binary masks: tolerance of surface Dice in pixels, repeatable (default: 1 and 2)")
    parser.add_argument("--split-seed", type=whole_number(0), default=0,
                        help="seed of the random held-out and validation splits (default 0); --seed does not move "
                             "them, so runs that differ only in --seed train and score on the same images")
    add_comparison_options(parser, seeds=3)
    add_run_options(parser, "seesaw-compare", seed_help="first seed of the runs: initialisation and data order only "
                                                        "(default 0; the splits follow --split-seed)")
    parser.set_defaults(func=run)


def _check_options(args: argparse.Namespace) -> None:
    if args.train is not None:
        given = [f"--{name}" for name in ("images", "masks") if getattr(args, name) is not None]
        given += ["--augment"] if args.augment != "flip" else []
        if given:
            raise InputError(f"--train trains your own model: leave out {' and '.join(given)} (your function reads "
                             "its own data)")
        if not args.metric:
            raise InputError("--train needs --metric NAME: the key of the mapping your function returns that ranks "
                             "the losses")
        if not args.loss:
            raise InputError("--train needs the losses to compare: --loss SPEC, repeatable (seesaw losses lists them)")
    elif args.images is None:
        raise InputError("give --images and --masks (a folder each), --images alone (a folder of class folders), or "
                         "--train FILE.py:FUNCTION with your own training function")
    elif args.masks is None and args.test_masks is not None:
        raise InputError("--test-masks needs --masks (segmentation); without --masks, --images holds class folders")
    elif args.masks is None:
        given = [option for option, on in (
            ("--patch-size", args.patch_size is not None), ("--mask-mode", args.mask_mode != "auto"),
            ("--ignore-index", args.ignore_index is not None), ("--allow-lossy-masks", args.allow_lossy_masks),
            ("--no-resize", not args.resize), ("--tolerance", bool(args.tolerance))) if on]
        if given:
            raise InputError(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for segmentation: give "
                             "--masks too (without --masks, --images holds class folders)")
    if args.patch_size is not None:
        given = [name for name, on in (("--image-size", args.image_size is not None), ("--no-resize", not args.resize))
                 if on]
        if given:
            raise InputError(f"--patch-size trains at native resolution, nothing is resized: leave out "
                             f"{' and '.join(given)}")
        from ..experiments.trainers import PatchSegmentationTrainer

        PatchSegmentationTrainer.check_windows(args.patch_size, DEPTH, args.overlap)  # before any file is read
    elif args.masks is not None and args.resize and args.image_size is not None and (
            args.image_size % 2**DEPTH or args.image_size < 2**(DEPTH + 1)):
        raise InputError(f"--image-size must be a multiple of {2**DEPTH} and at least {2**(DEPTH + 1)}, "
                         f"got {args.image_size}")
    for name in ("test_fraction", "val_fraction"):
        if not 0 < getattr(args, name) < 1:
            raise InputError(f"--{name.replace('_', '-')} must be between 0 and 1, got {getattr(args, name)}")
    refuse_output_inside(args.out, [args.images, args.masks, args.test_images, args.test_masks])


def load_function(text: str):
    """The function named by ``FILE.py:FUNCTION`` (the file's folder joins ``sys.path``, so that worker
    processes import it too) or ``package.module:FUNCTION``."""
    where, _, name = text.rpartition(":")
    if not where or not name:
        raise InputError(f"--train must be FILE.py:FUNCTION or package.module:FUNCTION, got {text!r}")
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise InputError(f"--train: there is no file {where!r}")
        sys.path.insert(0, str(path.resolve().parent))
        module_name = path.stem
    else:
        module_name = where
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is None or not (module_name == error.name or module_name.startswith(error.name + ".")):
            raise  # the module itself imports something missing: the user's own traceback
        raise InputError(f"--train: no module {module_name!r} can be imported; give FILE.py:FUNCTION or a module "
                         "on the Python path") from None
    function = getattr(module, name, None)
    if not callable(function):
        found = sorted(key for key, value in vars(module).items() if callable(value) and not key.startswith("_")
                       and getattr(value, "__module__", None) == module.__name__)
        raise InputError(f"--train: {where} has no function {name!r} (functions there: {', '.join(found) or 'none'})")
    return function


def _class_counts(text):
    if text is None:
        return None
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise InputError(f"--class-counts must be whole numbers separated by commas, got {text!r}") from None
    if len(counts) < 2 or min(counts) < 0:
        raise InputError(f"--class-counts must give at least two classes, none negative, got {text!r}")
    return counts


def _mode(args: argparse.Namespace) -> str:
    """``"classification"`` (class folders), ``"patches"`` (native resolution) or ``"segmentation"``."""
    if args.masks is None:
        return "classification"
    return "segmentation" if args.patch_size is None else "patches"


def _loader_workers(args: argparse.Namespace) -> int:
    """``--loader-workers``, else half the cores that no other process keeps busy."""
    from ..experiments.trainers.fit import default_loader_workers, idle_cores

    return default_loader_workers(idle_cores()) if args.loader_workers is None else args.loader_workers


def _classification(args: argparse.Namespace, budget, width: int):
    """Class folders: the trainer, the model's header line and the settings the report records."""
    from ..experiments.data.class_folders import load_class_folders
    from ..experiments.trainers import ClassificationTrainer

    size = args.image_size or IMAGE_SIZE["classification"]
    data = load_class_folders(args.images, test_root=args.test_images, test_fraction=args.test_fraction,
                              val_fraction=args.val_fraction, seed=args.split_seed, image_size=size,
                              workers=args.loader_workers)
    trainer = ClassificationTrainer(data, budget, width=width, loader_workers=args.loader_workers,
                                    augment=args.augment)
    return trainer, f"CNN width {width} ({len(data.classes)} classes)", {
        "images": str(args.images), "test_images": None if args.test_images is None else str(args.test_images),
        "image_size": size, "classes": list(data.classes), "class_counts": trainer.class_counts()}


def _segmentation(args: argparse.Namespace, budget, width: int):
    """Image/mask pairs, whole resized images or patches at native resolution: the trainer, the model's header
    line and the settings the report records."""
    from ..experiments.data import pairs as io

    reading = io.MaskReading(args.mask_mode, args.ignore_index, args.allow_lossy_masks)
    settings = {"images": str(args.images), "masks": str(args.masks), "ignore_index": args.ignore_index,
                "mask_mode": args.mask_mode}
    surface = {"tolerances": tuple(dict.fromkeys(args.tolerance))} if args.tolerance else {}  # else the default
    if args.patch_size is None:
        from ..experiments.trainers import SegmentationTrainer

        size = args.image_size or "auto"
        data = io.load_user_data(args.images, args.masks, size=size if args.resize else None,
                                 test_images=args.test_images, test_masks=args.test_masks,
                                 test_fraction=args.test_fraction, val_fraction=args.val_fraction, seed=args.split_seed,
                                 reading=reading, multiple=2**DEPTH)
        trainer = SegmentationTrainer(data, budget, width=width, depth=DEPTH, augment=args.augment, **surface)
        return trainer, f"U-Net width {width}, depth {DEPTH}", {**settings, "image_size": size if args.resize else None}
    from ..experiments.data.patches import load_patch_data
    from ..experiments.trainers import PatchSegmentationTrainer

    data = load_patch_data(args.images, args.masks, patch_size=args.patch_size, test_images=args.test_images,
                           test_masks=args.test_masks, test_fraction=args.test_fraction,
                           val_fraction=args.val_fraction, seed=args.split_seed, reading=reading,
                           workers=args.loader_workers)
    trainer = PatchSegmentationTrainer(data, budget, patch_size=args.patch_size,
                                       patches_per_image=args.patches_per_image, width=width, depth=DEPTH,
                                       overlap=args.overlap, loader_workers=args.loader_workers,
                                       augment=args.augment, **surface)
    return trainer, (f"U-Net width {width}, depth {DEPTH}, {args.patches_per_image} patches of "
                     f"{args.patch_size}x{args.patch_size} per image and epoch, sliding window (overlap "
                     f"{args.overlap:g})"), {**settings, "image_size": None, "patch_size": args.patch_size,
                                             "patches_per_image": args.patches_per_image, "overlap": args.overlap}


def run(args: argparse.Namespace) -> int:
    require_extras("compare")
    _check_options(args)
    if args.train is not None:
        return _run_function(args)
    from ..experiments.statistics import MARGIN
    from ..experiments.trainers import Budget

    mode = _mode(args)
    args.loader_workers = 0 if mode == "segmentation" else _loader_workers(args)  # read once: threads share the cores
    width, batch_size = args.width or WIDTH[mode], args.batch_size or BATCH_SIZE[mode]
    budget = Budget(args.epochs, batch_size, args.lr, args.amp)
    build = _classification if mode == "classification" else _segmentation
    trainer, model, settings = build(args, budget, width)
    data, counts = trainer.data, trainer.class_counts()
    binary = getattr(data, "binary", False)
    specs = check_losses(args.loss or (DEFAULT_BINARY_LOSSES if binary else DEFAULT_MULTICLASS_LOSSES), counts,
                         ignore_index=trainer.ignore_index, epochs=trainer.epochs, families=trainer.families)
    device = configure_torch(args, args.loader_workers)
    settings.update({"epochs": args.epochs, "batch_size": batch_size, "lr": args.lr, "seed": args.seed,
                     "split_seed": args.split_seed, "device": device, "width": width, "amp": args.amp,
                     "augment": args.augment,
                     "seeds": args.seeds, "tune": args.tune, "pruner": args.pruner,
                     "margin": MARGIN if args.margin is None else args.margin,
                     **({} if mode == "classification" else {"depth": DEPTH, "tolerances": list(trainer.tolerances)})})
    with output_folder(args.out, force=args.force, resume=args.resume):
        print(f"Data: {data.description}")
        print(f"  {model}; {args.epochs} epochs, batch {batch_size}, AdamW lr {args.lr:g} (cosine)"
              f"{', mixed precision' if args.amp else ''}, {args.seeds} seed(s), {device_text(device)}")
        result = run_comparison(trainer, specs, args, seeds=args.seeds, tune=args.tune, device=device,
                                title="Your data", description=data.description, notes=data.notes, out=args.out,
                                settings=settings)
        print("\n" + str(result))
    print_files(args.out, result.files, [result])
    return 0


def _run_function(args: argparse.Namespace) -> int:
    """``--train FILE.py:FUNCTION``: the user's function through ``compare``."""
    train = load_function(args.train)
    counts = _class_counts(args.class_counts)
    specs = check_losses(args.loss, counts)
    device = configure_torch(args)
    with output_folder(args.out, force=args.force, resume=args.resume):
        print(f"Training function: {args.train}; ranked by {args.metric} ({args.direction}), {args.seeds} seed(s), "
              f"{device_text(device)}")
        settings = {"train": args.train, "metric": args.metric, "direction": args.direction,
                    "class_counts": counts, "seeds": args.seeds, "tune": args.tune, "pruner": args.pruner,
                    "seed": args.seed, "device": device}
        result = run_comparison(train, specs, args, metric=args.metric, seeds=args.seeds, tune=args.tune,
                                device=device, class_counts=counts, title=f"{args.train}", direction=args.direction,
                                out=args.out, settings=settings)
        print("\n" + str(result))
    print_files(args.out, result.files, [result])
    return 0
