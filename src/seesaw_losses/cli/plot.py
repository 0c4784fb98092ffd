"""``seesaw plot``: what each loss and its parameters do, as curves."""

from __future__ import annotations

import argparse

from ..registry import default_losses
from .errors import InputError
from ._common import add_out_options, positive_float, prepare_output, print_files, require_extras

DEFAULT_LOSSES = default_losses("curves")
REFERENCE_EXPONENTS = {"p": (0.0, 0.4, 0.8, 1.2), "q": (0.0, 1.0, 2.0, 3.0)}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "plot", help="plot each loss's value and gradient, and Seesaw's factors",
        description="Plot each loss's value and gradient against the predicted probability of the true class, for "
                    "a sample of a rare and of a frequent class, and Seesaw's mitigation factor against the "
                    "class-frequency ratio and its compensation factor, so the effect of gamma, alpha, p and q "
                    "is visible. Region losses (dice, bce+dice) have no per-pixel curve and are skipped.")
    parser.add_argument("--loss", action="append", metavar="SPEC",
                        help=f"loss, repeatable, e.g. focal:gamma=2,alpha=0.25 (default: {' '.join(DEFAULT_LOSSES)})")
    parser.add_argument("--ratio", type=positive_float, default=100.0,
                        help="samples of the frequent class per sample of the rare class (default 100)")
    add_out_options(parser, "seesaw-plots", "output folder")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    require_extras("plot")
    from ..experiments import losses
    from ..experiments.reporting import loss_curves

    specs = losses.parse_losses(args.loss or DEFAULT_LOSSES)
    skipped = loss_curves.skipped_region_losses(specs)
    kept = [spec for spec in specs if spec.text not in skipped]
    if not kept:
        raise InputError(f"nothing to plot: {', '.join(skipped)} are region losses (a pixel's loss depends on "
                         "the whole mask); give a per-pixel loss such as bce, focal or seesaw")
    prepare_output(args.out, args.force)
    built = [loss_curves.build_for_curves(spec, args.ratio) for spec in kept]
    for loss in built:
        for note in loss.notes:
            print(f"  {note}")
    if skipped:
        print(f"  skipped region losses (no per-pixel curve): {', '.join(skipped)}")
    exponents = loss_curves.seesaw_exponents(built, REFERENCE_EXPONENTS)
    written = [loss_curves.plot_losses(built, args.ratio, args.out / "losses.png"),
               loss_curves.plot_seesaw_factors(exponents["p"], exponents["q"], args.out / "seesaw_factors.png")]
    print_files(args.out, written)
    return 0
