"""Comparisons of ``logged_train.train`` run as a user runs them (``seesaw compare`` subprocesses), with every
call logged: what the tests of the job model on SQLite and PostgreSQL share."""

import collections
import json
import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).parent
LOSSES = ("focal", "tversky", "bce")  #: two with a search space, one without
TUNE, SEEDS = 3, 2


def command(out, storage, artifacts, *argv):
    return [sys.executable, "-m", "seesaw_losses.cli", "compare", "--train", f"{TESTS / 'logged_train.py'}:train",
            "--metric", "score", *[a for loss in LOSSES for a in ("--loss", loss)], "--tune", str(TUNE),
            "--seeds", str(SEEDS), "--storage", storage, "--artifacts", str(artifacts), "--out", str(out),
            "--no-progress", "--threads", "1", *map(str, argv)]


def start(out, storage, artifacts, log, *argv, **environment):
    """A ``seesaw compare`` process on ``storage`` logging its calls (and its workers') to ``log``."""
    env = {**os.environ, "SEESAW_TEST_LOG": str(log), "PYTHONPATH": os.pathsep.join(sys.path), **environment}
    return subprocess.Popen(command(out, storage, artifacts, *argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def finish(*processes):
    """Wait for ``processes``; assert each succeeded."""
    outputs = [process.communicate(timeout=300) for process in processes]
    assert [process.returncode for process in processes] == [0] * len(processes), "".join(e for _, e in outputs)
    return outputs


def calls(log):
    """``{(kind, loss, trial number or seed): times called}`` and the processes that trained, from ``log``."""
    lines = [json.loads(line) for line in Path(log).read_text().splitlines()] if Path(log).exists() else []
    return collections.Counter((kind, loss, key) for kind, loss, key, _ in lines), {line[3] for line in lines}


def every_job_once():
    """Each job of the comparison, called once."""
    jobs = [("tuning", loss, k) for loss in ("focal", "tversky") for k in range(TUNE)]
    return collections.Counter(jobs + [("final", loss, seed) for loss in LOSSES for seed in range(SEEDS)])


def report_files(out):
    return {name: (Path(out) / name).read_text() for name in ("report.md", "results.json", "winner.json")}


def two_commands_and_workers_train_every_job_once(storage, artifacts, tmp_path):
    """Two commands at once (one with two local workers), then the same command on the finished study, then
    ``seesaw report``: every job trained once in all, the same report from each."""
    log = tmp_path / "calls.log"
    finish(start(tmp_path / "a", storage, artifacts, log, "--workers", "2"),
           start(tmp_path / "b", storage, artifacts, log))
    counted, _ = calls(log)
    assert counted == every_job_once()
    assert report_files(tmp_path / "a") == report_files(tmp_path / "b")
    finish(start(tmp_path / "c", storage, artifacts, log))  # the same command again: nothing left to train
    assert calls(log)[0] == counted and report_files(tmp_path / "c") == report_files(tmp_path / "a")
    reported = subprocess.run([sys.executable, "-m", "seesaw_losses.cli", "report", "--storage", storage,
                               "--artifacts", str(artifacts), "--out", str(tmp_path / "d")], capture_output=True,
                              text=True, timeout=300)
    assert reported.returncode == 0, reported.stderr
    assert report_files(tmp_path / "d") == report_files(tmp_path / "a")
