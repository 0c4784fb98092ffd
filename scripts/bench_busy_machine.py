"""``seesaw demo --quick`` on a busy machine: seconds with the default threads and with each ``--threads`` choice.

Pins itself, the demo and ``--busy`` spinning processes (``while True: pass``, the other users of the machine) to
the first ``--cores`` cores this process may use, then runs the demo once per setting: the default (no
``--threads``), then ``--threads 1 .. --cores``. Prints the seconds of each and the ratio of the default to the
best setting (target <= 1.5: the defaults hold on a busy machine).

    PYTHONPATH=src python scripts/bench_busy_machine.py                        # 2 cores, 2 busy processes
    PYTHONPATH=src python scripts/bench_busy_machine.py --task long_tail       # the demo's cheaper task only

Extra arguments after ``--`` go to ``seesaw demo``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 1.5


def pinned(cores):
    """A ``preexec_fn`` that confines the child to ``cores``."""
    return lambda: os.sched_setaffinity(0, cores)


def run_demo(cores, threads, demo_arguments) -> float:
    """Seconds of one ``seesaw demo --quick`` on ``cores`` (``threads`` None: the default)."""
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "seesaw_losses.cli", "demo", "--quick", "--no-progress", "--device", "cpu",
                   "--out", str(Path(folder) / "report"), *demo_arguments]
        command += [] if threads is None else ["--threads", str(threads)]
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, preexec_fn=pinned(cores))
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2, help="cores the demo and the busy processes share")
    parser.add_argument("--busy", type=int, default=2, help="spinning processes beside the demo")
    parser.add_argument("--task", default=None, help="the demo's --task (default: all)")
    parser.add_argument("demo", nargs="*", help="more arguments for seesaw demo (after --)")
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0))[:args.cores]
    demo_arguments = args.demo + ([] if args.task is None else ["--task", args.task])
    spinning = [subprocess.Popen([sys.executable, "-c", "while True: pass"], preexec_fn=pinned(cores))
                for _ in range(args.busy)]
    try:
        seconds = {threads: run_demo(cores, threads, demo_arguments)
                   for threads in [None, *range(1, len(cores) + 1)]}
    finally:
        for process in spinning:
            process.kill()
            process.wait()
    print(f"seesaw demo --quick {' '.join(demo_arguments)} on {len(cores)} core(s) beside {args.busy} busy "
          "process(es):")
    for threads, value in seconds.items():
        print(f"  {'default' if threads is None else f'--threads {threads}':<12} {value:7.1f} s")
    best = min(seconds.values())
    ratio = seconds[None] / best
    print(f"default / best: {ratio:.2f} (target <= {TARGET}): {'ok' if ratio <= TARGET else 'too slow'}")


if __name__ == "__main__":
    main()
