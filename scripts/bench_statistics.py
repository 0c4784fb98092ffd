"""Time and peak memory of a comparison's statistics (``summarize``: intervals, labels, 2,000 bootstrap resamples
for "best in N %") for 12 losses x 5 seeds at 2k, 20k and 100k held-out samples.

    PYTHONPATH=src python scripts/bench_statistics.py [--sizes 2000 20000 100000] [--classes 1000]

Each size runs in a fresh process, so that its peak resident memory (inputs, Python, NumPy, SciPy and the
package's own import of torch included; "after imports" is that part) is its own; SciPy is imported before the
clock starts. ``--classes`` gives the samples long-tailed class labels (balanced accuracy; 0: no groups). The last
column is time per sample relative to the smallest size: close to 1 means growth close to linear.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one(samples: int, classes: int) -> dict:
    from scipy import stats  # noqa: F401  (imported on first use by summarize: not part of the timing)

    from seesaw_losses.experiments.statistics import SampleScores, summarize

    imported = peak_mb()
    rng = np.random.default_rng(0)
    losses, seeds = 12, 5
    groups = None
    if classes:
        sizes = np.maximum(1, (samples / classes) * 2 * np.exp(-np.linspace(0, 4, classes))).astype(int)
        groups = np.sort(rng.choice(classes, samples, p=sizes / sizes.sum()))
    base = rng.random(samples)
    samples_of = {f"loss{k}": SampleScores((rng.random((seeds, samples)) < base + 0.01 * k).astype(np.float64),
                                           groups) for k in range(losses)}
    values = {name: s.scores.mean(axis=1) for name, s in samples_of.items()}
    start = time.perf_counter()
    summarize(values, samples=samples_of)
    seconds = time.perf_counter() - start
    return {"samples": samples, "seconds": seconds, "peak_mb": peak_mb(), "imported_mb": imported}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000, 100000])
    parser.add_argument("--classes", type=int, default=0)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.classes)))
        return
    print(f"12 losses x 5 seeds, {args.classes or 'no'} classes")
    print(f"{'samples':>8} {'seconds':>8} {'peak MB':>8} {'after imports':>14} {'s per sample (rel.)':>20}")
    first = None
    for size in args.sizes:
        done = subprocess.run([sys.executable, __file__, "--one", str(size), "--classes", str(args.classes)],
                              capture_output=True, text=True, check=True)
        row = json.loads(done.stdout)
        per_sample = row["seconds"] / size
        first = first or per_sample
        print(f"{size:>8} {row['seconds']:>8.2f} {row['peak_mb']:>8.0f} {row['imported_mb']:>14.0f} "
              f"{per_sample / first:>20.2f}", flush=True)


if __name__ == "__main__":
    main()
