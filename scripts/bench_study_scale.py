"""How well the comparison's job model scales: N worker processes on one PostgreSQL study, each running
``compare`` with a ``train`` that sleeps instead of training, so that only the orchestration is measured.

    PYTHONPATH=src python scripts/bench_study_scale.py                      # 8, 16, 32 workers, then kills
    PYTHONPATH=src python scripts/bench_study_scale.py --workers 8 --sleep 2 --kills 0

The same comparison at every worker count: 4 losses, each with ``T`` tuning trials and ``T`` final runs, where
``4 T`` is ``--rounds`` times the largest worker count (each phase a whole number of rounds at every count).
Every process imports torch and Optuna and runs a small warm-up comparison first, then waits at a barrier; the
clock starts when the barrier opens and stops when the last job completes (``jobs_s``; ``first_job_s``: when
the first job started, the comparison set up in the study; ``returned_s``: when the last process's ``compare``
returned, its result built from the study). The ideal is ``jobs x sleep / workers``; the throughput is the
ideal over ``jobs_s``, and the orchestration overhead per job is the idle worker time per job,
``(jobs_s x workers - jobs x sleep) / jobs``. With ``--kills K`` (on the largest worker count) K workers are
killed with SIGKILL at random moments once the first job runs; the study must then hold every job complete once, and only the jobs
running in a killed process may have been trained twice.

Needs PostgreSQL's binaries (a throwaway cluster like the tests') and the ``postgres`` extra.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import multiprocessing
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from postgres_cluster import postgres_binaries, throwaway_cluster  # noqa: E402

LOSSES = ("focal", "tversky", "dice", "weighted_bce")


def sleeping_train(criterion, run):
    """Train nothing: sleep for ``SEESAW_BENCH_SLEEP`` seconds and log the call to ``SEESAW_BENCH_LOG``."""
    time.sleep(float(os.environ["SEESAW_BENCH_SLEEP"]))
    kind, key = ("tuning", run.trial.number) if run.tuning else ("final", run.seed)
    line = json.dumps([kind, run.loss.split(":")[0], key]) + "\n"
    descriptor = os.open(os.environ["SEESAW_BENCH_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(descriptor, line.encode())
    finally:
        os.close(descriptor)
    return {"score": 0.5 + 0.1 * math.sin(sum(map(float, run.hyperparameters.values())) + run.seed)}


def worker(url: str, artifacts: str, tune: int, seeds: int, barrier, finished) -> None:
    import torch

    from seesaw_losses import compare

    torch.set_num_threads(1)
    measured = {key: os.environ[key] for key in ("SEESAW_BENCH_SLEEP", "SEESAW_BENCH_LOG")}
    with tempfile.TemporaryDirectory() as folder:  # a warm-up: everything compare imports, before the clock
        os.environ.update(SEESAW_BENCH_SLEEP="0", SEESAW_BENCH_LOG=os.path.join(folder, "calls.log"))
        compare(sleeping_train, [LOSSES[0]], metric="score", tune=1, seeds=1, class_counts=[90, 10],
                storage=f"sqlite:///{folder}/warm.db", progress=False)
    os.environ.update(measured)
    barrier.wait()
    try:
        compare(sleeping_train, list(LOSSES), metric="score", tune=tune, seeds=seeds, storage=url,
                artifacts=artifacts, class_counts=[90, 10], progress=False)
    except Exception as error:
        finished.put(f"{type(error).__name__}: {error}")
        raise
    finished.put(time.perf_counter())


def study_counts(url: str, tune: int, seeds: int):
    """Whether every tuning study holds ``tune`` complete trials and every finals study each seed complete once,
    and when the last job completed (seconds since the epoch)."""
    import optuna
    from optuna.trial import TrialState

    from seesaw_losses.experiments.tuning import _quiet, open_storage

    _quiet(optuna)
    storage = open_storage(url)
    complete, last, first = {}, 0.0, math.inf
    for name in optuna.get_all_study_names(storage):
        study = optuna.load_study(study_name=name, storage=storage)
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        last = max([last] + [t.datetime_complete.timestamp() for t in trials])
        first = min([first] + [t.datetime_start.timestamp() for t in trials])
        if name.endswith("/finals"):
            complete[name] = sorted(t.user_attrs["seed"] for t in trials)
        elif not name.endswith("/settings"):
            complete[name] = len(trials)
    ok = all(value == (list(range(seeds)) if name.endswith("/finals") else tune) for name, value in complete.items())
    return ok and len(complete) == 2 * len(LOSSES), first, last


def measure(url: str, workers: int, tune: int, seeds: int, sleep: float, kills: int, seed: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="seesaw-bench-"))
    log = folder / "calls.log"
    os.environ.update(SEESAW_BENCH_SLEEP=str(sleep), SEESAW_BENCH_LOG=str(log))
    from seesaw_losses.experiments.tuning import open_storage

    open_storage(url)  # the tables, as any storage has them after its first comparison
    context = multiprocessing.get_context("spawn")
    barrier, finished = context.Barrier(workers + 1), context.Queue()
    processes = [context.Process(target=worker, args=(url, str(folder / "artifacts"), tune, seeds, barrier, finished))
                 for _ in range(workers)]
    for process in processes:
        process.start()
    barrier.wait()  # every process has imported torch and Optuna
    start, started_at = time.perf_counter(), time.time()
    jobs = len(LOSSES) * (tune + seeds)
    ideal = jobs * sleep / workers
    killed = []
    if kills:
        while not log.exists():  # the comparison is set up and a job runs: from then on the kills
            time.sleep(0.05)
        first = time.perf_counter()
        rng = random.Random(seed)
        for moment in sorted(rng.uniform(0.2, 0.9) * ideal for _ in range(kills)):
            time.sleep(max(0.0, first + moment - time.perf_counter()))
            victim = rng.choice([p for p in processes if p.is_alive() and p not in killed])
            os.kill(victim.pid, signal.SIGKILL)
            killed.append(victim)
    ends = [finished.get(timeout=600) for _ in range(workers - len(killed))]
    failed = [end for end in ends if isinstance(end, str)]
    if failed:
        sys.exit(f"{len(failed)} worker(s) failed: {failed[0]}")
    for process in processes:
        process.join()
    returned = max(ends) - start
    calls = collections.Counter(tuple(json.loads(line)) for line in log.read_text().splitlines())
    once, first, last = study_counts(url, tune, seeds)
    wall = last - started_at  # until the last job completed
    return {"workers": workers, "jobs": jobs, "sleep_s": sleep, "jobs_s": round(wall, 2),
            "ideal_s": round(ideal, 2), "throughput_of_ideal": round(ideal / wall, 3),
            "overhead_ms_per_job": round(1000 * (wall * workers - jobs * sleep) / jobs, 1),
            "first_job_s": round(first - started_at, 2),
            "throughput_after_first_job": round(ideal / (last - first), 3), "returned_s": round(returned, 2),
            "killed": len(killed),
            "trained_twice": sum(n - 1 for n in calls.values() if n > 1), "calls_missing": jobs - len(calls),
            "study_complete_once": once}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--sleep", type=float, default=3.0, help="seconds each job sleeps (default 3)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="rounds per phase (tuning, finals) at the largest worker count (default 1)")
    parser.add_argument("--kills", type=int, default=3, help="workers killed in the last run (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if postgres_binaries() is None:
        sys.exit("PostgreSQL's binaries (initdb, pg_ctl, psql) are not installed: apt-get install postgresql")
    per_phase = max(args.workers) * args.rounds  # jobs per phase: whole rounds at every worker count
    tune = seeds = per_phase // len(LOSSES)
    runs = [(n, 0) for n in args.workers] + ([(max(args.workers), args.kills)] if args.kills else [])
    names = [f"bench{k}" for k in range(len(runs))]
    with throwaway_cluster(*names, max_connections=max(100, 8 * max(args.workers))) as urls:
        for name, (workers, kills) in zip(names, runs):
            print(json.dumps(measure(urls[name], workers, tune, seeds, args.sleep, kills, args.seed)), flush=True)


if __name__ == "__main__":
    main()
