"""Does the recommendation survive reseeding? Run the same `seesaw compare` with `--seed 0`, `1` and `2` on
generated vessel images written as PNG folders, and print each run's winner, tied group and per-loss means (and
how often each loss is best in the bootstrap, where results.json has it).

    PYTHONPATH=src python scripts/reseeding.py [--work /tmp/seesaw-reseeding] [--seeds 0 1 2] [--epochs 4]

Only the seed changes between the runs (initialisation and data order; `--move-splits` passes `--split-seed`
equal to `--seed`, so that the validation split moves too); the images are the same. The summary goes to stdout
and to `<work>/reseeding.json`.

Before: ranked by pooled Dice with the seed-level statistics (paired t-test over the 3 seeds), the validation
split drawn with `--seed` (1 thread, about 7 minutes in all):

    --seed 0: winner dice;         tied dice+skeleton_recall, dice, weighted_bce, bce+dice
    --seed 1: winner dice;         tied dice+skeleton_recall, dice, binary_seesaw+dice, bce+dice,
                                        binary_seesaw+cldice (weighted_bce, third by 0.008, not tied)
    --seed 2: winner weighted_bce; tied binary_seesaw+dice, weighted_bce, dice, dice+skeleton_recall, bce+dice,
                                        binary_seesaw, binary_seesaw+cldice
    best means: dice+skeleton_recall 0.260, dice+skeleton_recall 0.301, binary_seesaw+dice 0.307

After: ranked by per-image Dice with the statistics over held-out images x seeds, the splits drawn with
`--split-seed 0` (1 thread, about a minute per run):

    --seed 0: winner dice (best in 47%); equivalent dice, dice+skeleton_recall; tied also bce+dice,
                                        weighted_bce, binary_seesaw+dice
    --seed 1: winner dice (best in 59%); equivalent dice, dice+skeleton_recall; tied also weighted_bce,
                                        binary_seesaw+dice, bce+dice
    --seed 2: winner dice (best in 62%); equivalent dice, dice+skeleton_recall; tied also weighted_bce,
                                        binary_seesaw+dice, bce+dice
    with --move-splits: winners dice (47%), weighted_bce (46%), binary_seesaw+dice (60%)
    with --seeds 0 3 6 (no shared trainings): winners dice (47%), dice (44%), weighted_bce (47%)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from seesaw_losses.experiments.data.generated import vessels


def write_split(folder: Path, count: int, seed: int, prefix: str) -> None:
    split = vessels(count, size=64, seed=seed, prefix=prefix)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    low, high = split.images.min(), split.images.max()
    for image, mask, name in zip(split.images[:, 0], split.masks, split.names):
        gray = np.round((image - low) / (high - low) * 255).astype(np.uint8)
        Image.fromarray(gray).save(folder / "images" / f"{name}.png")
        Image.fromarray((mask * 255).astype(np.uint8)).save(folder / "masks" / f"{name}.png")


def summarize_run(out: Path) -> dict:
    """Winner, tied group and per-loss mean of the ranking metric, read from the report's files."""
    winner = json.loads((out / "winner.json").read_text())
    results = json.loads((out / "results.json").read_text())
    comparison = next(value for value in results.values() if isinstance(value, dict) and "results" in value)
    metric = comparison["ranked_by"]
    means, best_fraction = {}, {}
    for entry in comparison["results"]:
        means[entry["loss"]] = entry["summary"][metric]["mean"]
        if entry.get("best_fraction") is not None:
            best_fraction[entry["loss"]] = entry["best_fraction"]
    return {"winner": winner["loss"], "tied": winner["tied"], "equivalent": winner.get("equivalent", []),
            "metric": metric, "means": means, "best_fraction": best_fraction}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/seesaw-reseeding"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="--seed of each run")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--move-splits", action="store_true",
                        help="pass --split-seed equal to --seed, so the validation split moves with the seed too")
    args = parser.parse_args()
    data = args.work / "data"
    if not (data / "test" / "masks").is_dir():
        write_split(data / "train", 40, seed=100, prefix="train")
        write_split(data / "test", 32, seed=200, prefix="test")
    runs = {}
    for seed in args.seeds:
        out = args.work / f"seed{seed}"
        command = [sys.executable, "-m", "seesaw_losses.cli", "compare",
                   "--images", str(data / "train" / "images"), "--masks", str(data / "train" / "masks"),
                   "--test-images", str(data / "test" / "images"), "--test-masks", str(data / "test" / "masks"),
                   "--seeds", "3", "--epochs", str(args.epochs), "--width", "8", "--image-size", "64",
                   "--threads", str(args.threads), "--seed", str(seed), "--out", str(out), "--force",
                   "--no-progress"] + (["--split-seed", str(seed)] if args.move_splits else [])
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        runs[seed] = summarize_run(out) | {"seconds": round(time.perf_counter() - start, 1)}
        run = runs[seed]
        best_in = run["best_fraction"].get(run["winner"])
        print(f"--seed {seed}: winner {run['winner']}" + (f" (best in {best_in:.0%})" if best_in is not None else "")
              + f"; equivalent {', '.join(run['equivalent']) or '-'}; tied {', '.join(run['tied'])} "
              f"({run['seconds']} s)")
        print("  " + "  ".join(f"{loss} {mean:.4f}" + (f" (best in {run['best_fraction'][loss]:.0%})"
                                                         if loss in run["best_fraction"] else "")
                               for loss, mean in run["means"].items()))
    winners = [run["winner"] for run in runs.values()]
    changes = sum(a != b for a, b in zip(winners, winners[1:]))
    print(f"winner changed {changes} time(s) over {len(winners)} runs; {len(set(winners))} distinct winner(s)")
    (args.work / "reseeding.json").write_text(json.dumps(runs, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
