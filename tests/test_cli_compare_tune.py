"""``seesaw compare --tune`` run as a user runs it (a subprocess), on real SQLite studies."""

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seesaw_losses import build_loss
from seesaw_losses.experiments.data.generated import vessels

FAST = ["--epochs", "1", "--image-size", "32", "--width", "4", "--no-progress", "--threads", "1"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    split = vessels(6, size=32, seed=2)
    (root / "images").mkdir()
    (root / "masks").mkdir()
    for name, image, mask in zip(split.names, split.images, split.masks):
        low, high = image.min(), image.max()
        Image.fromarray(((image[0] - low) / (high - low) * 255).astype(np.uint8)).save(root / "images" / f"{name}.png")
        Image.fromarray((mask * 255).astype(np.uint8)).save(root / "masks" / f"{name}.png")
    return root / "images", root / "masks"


def compare_command(folders, out, *argv):
    images, masks = folders
    return [sys.executable, "-m", "seesaw_losses.cli", "compare", "--images", str(images), "--masks", str(masks),
            "--out", str(out), *FAST, *map(str, argv)]


def compare(folders, out, *argv, **kwargs):
    return subprocess.run(compare_command(folders, out, *argv), capture_output=True, text=True, timeout=240,
                          **kwargs)


def trials(out, state="COMPLETE"):
    """Per study name: the trial numbers in ``state``, read from the SQLite file itself (none while the file is
    still being created)."""
    try:
        with sqlite3.connect(out / "study.db") as db:
            rows = db.execute("SELECT s.study_name, t.number FROM trials t JOIN studies s USING (study_id) "
                              "WHERE t.state = ? ORDER BY t.number", (state,)).fetchall()
    except sqlite3.OperationalError:  # no tables yet
        return {}
    found = {}
    for name, number in rows:
        if "/" not in name:  # a tuning study, not the settings or a finals study
            found.setdefault(name.split(":")[-1], []).append(number)
    return found


def hyperparameters(out):
    with sqlite3.connect(out / "study.db") as db:
        rows = db.execute("SELECT s.study_name, t.number, a.value_json FROM trial_user_attributes a "
                          "JOIN trials t USING (trial_id) JOIN studies s USING (study_id) "
                          "WHERE a.key = 'hyperparameters' AND t.state = 'COMPLETE' ORDER BY t.number").fetchall()
    return [(name, json.loads(value)) for name, _, value in rows]


def test_seeds_and_tune_write_a_winner_that_builds(folders, tmp_path):
    out = tmp_path / "r"
    result = compare(folders, out, "--seeds", "2", "--tune", "2", "--loss", "focal", "--loss", "bce")
    assert result.returncode == 0, result.stderr
    assert trials(out) == {"focal": [0, 1]}  # bce has nothing to tune
    assert "hyperparameters tuned with 2 Optuna TPE trials per loss" in result.stdout
    assert "no tunable hyperparameters (defaults trained): bce" in result.stdout
    winner = json.loads((out / "winner.json").read_text())
    module = build_loss(winner["loss"])
    assert winner["loss"] in result.stdout and winner["metric"] == "image_dice" and len(winner["ci95"]) == 2
    assert all(build_loss(config) is not None for config in winner["tied"])
    document = json.loads((out / "results.json").read_text())
    focal = next(r for r in document["segmentation"]["results"] if r["loss"] == "focal")
    assert set(focal["hyperparameters"]) == {"gamma", "alpha"} and focal["trials"] == 2
    assert f"gamma={focal['hyperparameters']['gamma']:.6g}" in focal["config"]
    # the same loss from the Hydra and mmengine snippets
    import yaml
    from hydra.utils import instantiate
    from mmengine.config import Config

    assert repr(instantiate(yaml.safe_load((out / "winner.yaml").read_text())["loss"])) == repr(module)
    assert repr(build_loss(Config.fromfile(str(out / "winner_mmengine.py")).loss)) == repr(module)


def test_resume_after_sigkill_finishes_the_study_as_an_uninterrupted_run(folders, tmp_path):
    out, reference = tmp_path / "killed", tmp_path / "whole"
    argv = ["--seeds", "1", "--tune", "3", "--loss", "focal", "--epochs", "2"]
    # The run pauses as its second trial starts and says so: killed there, one trial is complete, one running.
    process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("paused_compare.py")), "2", "compare",
                                "--images", str(folders[0]), "--masks", str(folders[1]), "--out", str(out), *FAST,
                                *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in process.stderr:
            lines.append(line)
            if line.strip() == "paused":
                break
        assert lines and lines[-1].strip() == "paused", "".join(lines)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        process.stderr.close()
    assert len(trials(out)["focal"]) == 1 and trials(out, "RUNNING") == {"focal": [1]}
    assert not (out / "winner.json").exists()
    resumed = compare(folders, out, *argv, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert trials(out)["focal"] == [0, 2, 3] and trials(out, "FAIL") == {"focal": [1]}
    assert (out / "winner.json").exists()
    whole = compare(folders, reference, *argv)
    assert whole.returncode == 0, whole.stderr
    # the same proposals: the killed trial's run again first (trial 3), then trial 2 proposed from the same history
    assert sorted(map(repr, hyperparameters(out))) == sorted(map(repr, hyperparameters(reference)))


def test_two_workers_share_one_study_and_count_every_trial_once(folders, tmp_path):
    out = tmp_path / "r"
    result = compare(folders, out, "--seeds", "1", "--tune", "3", "--workers", "2", "--loss", "focal",
                     "--loss", "tversky")
    assert result.returncode == 0, result.stderr
    assert "2 worker processes" in result.stdout
    complete = trials(out)
    assert {name: len(numbers) for name, numbers in complete.items()} == {"focal": 3, "tversky": 3}
    # Which worker trains which trial is up to the scheduler; that each trial counts once is not.
    with sqlite3.connect(out / "study.db") as db:
        pids = {json.loads(row[0])[1] for row in db.execute(
            "SELECT a.value_json FROM trial_user_attributes a JOIN trials t USING (trial_id) "
            "WHERE a.key = 'process' AND t.state = 'COMPLETE'")}
    assert 1 <= len(pids) <= 2 and os.getpid() not in pids  # trained in the worker processes


def test_runs_on_one_storage_share_the_study(folders, tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first = compare(folders, tmp_path / "a", "--seeds", "1", "--tune", "2", "--loss", "focal", "--storage", url)
    second = compare(folders, tmp_path / "b", "--seeds", "1", "--tune", "2", "--loss", "focal", "--storage", url)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert not (tmp_path / "a" / "study.db").exists()
    with sqlite3.connect(tmp_path / "shared.db") as db:
        states = db.execute("SELECT state FROM trials").fetchall()
    assert states == [("COMPLETE",)] * 3  # two trials and a final run: the second run found them done
    for name in ("results.json", "report.md", "winner.json"):  # and wrote the same report from the study
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()


def test_a_job_whose_process_is_gone_is_retried_once(tmp_path):
    from optuna.trial import TrialState

    from seesaw_losses.experiments.jobs import Comparison
    from seesaw_losses.experiments.tuning import StudyPlan

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    plan = StudyPlan(f"sqlite:///{tmp_path / 's.db'}", 0, losses=("bce",), seeds=(0, 1),
                     artifacts=str(tmp_path / "artifacts"))
    comparison = Comparison(plan)
    comparison.open()
    study = comparison._study(plan.finals_name("bce"))

    def claim_and_lose():  # the claimed job's process ends without finishing it
        job = comparison.claim()
        comparison.storage.set_trial_user_attr(job.trial_id, "process", [socket.gethostname(), int(gone.stdout),
                                                                        job.number])
        return job.number

    assert [claim_and_lose(), claim_and_lose()] == [0, 1]
    comparison._fail_dead(study)  # both failed, each enqueued once more
    assert claim_and_lose() == 2  # a retried job goes first
    comparison._fail_dead(study)
    states = [(t.number, t.state, t.user_attrs["seed"]) for t in study.get_trials()]
    assert states == [(0, TrialState.FAIL, 0), (1, TrialState.FAIL, 1), (2, TrialState.FAIL, 0),
                      (3, TrialState.WAITING, 1)]  # no second retry of seed 0
