"""``seesaw_losses.compare`` with small real training functions, on real Optuna SQLite studies."""

import inspect
import json
import math
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import compare_functions
from compare_functions import linear_model, scripted_score, seeded_scores
from seesaw_losses import build_loss, compare, get_loss
from seesaw_losses.compose import parse_config
from seesaw_losses.experiments.tuning import assign_devices

QUIET = {"progress": False}
TESTS = Path(__file__).parent


def studies(folder, state=None):
    """Per loss: ``[(trial number, state, hyperparameters)]`` of its tuning study, read from ``folder/study.db``."""
    with sqlite3.connect(folder / "study.db") as db:
        rows = db.execute("SELECT s.study_name, t.number, t.state, a.value_json FROM trials t "
                          "JOIN studies s USING (study_id) LEFT JOIN trial_user_attributes a "
                          "ON a.trial_id = t.trial_id AND a.key = 'hyperparameters' ORDER BY t.number").fetchall()
    found = {}
    for name, number, trial_state, value in rows:
        if "/" not in name and (state is None or trial_state == state):  # not the settings or a finals study
            found.setdefault(name.split(":")[-1], []).append((number, trial_state, json.loads(value or "null")))
    return found


class Recorder:
    """A training function that records every call and returns ``seeded_scores``'s numbers."""

    def __init__(self, function=seeded_scores):
        self.calls, self.function = [], function

    def __call__(self, criterion, run):
        self.calls.append((run.loss, run.seed, run.tuning, dict(run.hyperparameters)))
        return self.function(criterion, run)


def assert_builds(config, loss=None):
    """``config`` builds the registry's module of ``loss`` (its first term when None) with every option it names."""
    (term, *_), module = parse_config(config), build_loss(config)
    builder = get_loss(loss or term["type"]).builder
    if inspect.isclass(builder):  # a module class (else a function that picks one)
        assert type(module) is builder
    for name, value in term.items():
        if name != "type" and hasattr(module, name):
            assert getattr(module, name) == pytest.approx(value), (config, name)


def test_values_are_the_returned_ones_and_seeds_are_paired():
    recorder = Recorder()
    result = compare(recorder, ["bce", "dice", "focal:gamma=2"], metric="score", seeds=3, seed=5, **QUIET)
    assert [(loss, seed) for loss, seed, _, _ in recorder.calls] == [
        (loss, seed) for loss in ("bce", "dice", "focal:gamma=2") for seed in (5, 6, 7)]
    for entry in result.ranking:
        assert entry.values == [scripted_score(entry.config, seed, False) for seed in (5, 6, 7)]  # exactly
        assert [run.seed for run in entry.runs] == [5, 6, 7]
        assert entry.mean == pytest.approx(sum(entry.values) / 3)
        assert entry.metrics == {"score": pytest.approx(entry.mean), "loss_name": len(entry.config)}
        assert entry.runs[0].history["validation"] == [entry.values[0]] * 3
    means = [entry.mean for entry in result.ranking]
    assert means == sorted(means, reverse=True) and result.seeds == [5, 6, 7]
    assert result.winner in result.tied
    assert_builds(result.winner)
    assert "score" in str(result) and "Recommendation: " in str(result)


def test_tuning_stays_in_the_search_space_and_the_finals_use_the_best_trial(tmp_path):
    recorder = Recorder(linear_model)
    result = compare(recorder, ["focal", "bce", "tversky"], metric="f1", seeds=2, tune=3, out=tmp_path, **QUIET)
    found = studies(tmp_path)
    assert set(found) == {"focal", "tversky"}  # bce has nothing to tune
    for loss, trials in found.items():
        space = get_loss(loss).search_space
        assert [state for _, state, _ in trials] == ["COMPLETE"] * 3
        for _, _, values in trials:
            assert set(values) == set(space)
            for name, value in values.items():
                h = space[name]
                assert value in h.choices if h.choices else h.low <= value <= h.high
    best = {}
    with sqlite3.connect(tmp_path / "study.db") as db:
        for name, value, attributes in db.execute(
                "SELECT s.study_name, v.value, a.value_json FROM trials t JOIN studies s USING (study_id) "
                "JOIN trial_values v USING (trial_id) JOIN trial_user_attributes a USING (trial_id) "
                "WHERE a.key = 'hyperparameters' ORDER BY t.number"):
            loss = name.split(":")[-1]
            if loss not in best or value > best[loss][0]:
                best[loss] = (value, json.loads(attributes))
    for entry in result.ranking:
        finals = [call for call in recorder.calls if call[0] == entry.config and not call[2]]
        expected = best[entry.loss][1] if entry.loss in best else {}
        assert entry.hyperparameters == expected and [call[3] for call in finals] == [expected] * 2
        assert entry.trials == (3 if entry.loss in best else 0) and entry.pruned == 0
    tuning_calls = [call for call in recorder.calls if call[2]]
    assert len(tuning_calls) == 6 and {call[1] for call in tuning_calls} == {0}
    assert {p.name for p in tmp_path.iterdir()} >= {"study.db", "report.md", "results.json", "winner.json"}
    winner = json.loads((tmp_path / "winner.json").read_text())
    assert winner["loss"] == result.winner
    assert {k: winner["hyperparameters"][k] for k in result.winner_entry.hyperparameters} == pytest.approx(
        result.winner_entry.hyperparameters)  # the tuned values, written out
    assert_builds(winner["loss"])


def worse_after_five(criterion, run):
    """Tuning trials 1-5 report 1.0 at every step; later ones alternate 0.0 (clearly worse) and 1.0."""
    number = run.trial.number if run.tuning else 0
    value = 0.0 if number >= 5 and number % 2 else 1.0
    for step in range(4):
        run.history.setdefault("steps", []).append(step)
        run.report(step, value)
    return {"score": value}


def test_the_median_pruner_prunes_the_clearly_worse_trials_and_they_count_in_the_budget(tmp_path):
    steps = []

    def train(criterion, run):
        result = None
        try:
            result = worse_after_five(criterion, run)
        finally:
            steps.append((run.trial.number if run.trial else None, len(run.history["steps"])))
        return result

    result = compare(train, ["focal"], metric="score", seeds=1, tune=9, pruner="median", out=tmp_path, **QUIET)
    trials = studies(tmp_path)["focal"]
    assert [(number, state) for number, state, _ in trials] == [
        (k, "PRUNED" if k >= 5 and k % 2 else "COMPLETE") for k in range(9)]
    assert all(count == 1 for number, count in steps if number is not None and number >= 5 and number % 2)
    assert result.ranking[0].trials == 9 and result.ranking[0].pruned == 2
    assert "| 9 (2 pruned) |" in (tmp_path / "report.md").read_text()
    assert json.loads((tmp_path / "results.json").read_text())["comparison"]["results"][0]["pruned"] == 2


def test_resume_after_an_interrupted_run_finishes_the_budget_without_redoing_trials(tmp_path):
    class Interrupted(Exception):
        pass

    tuning_calls = []

    def breaks_at_third_trial(criterion, run):
        if run.tuning:
            tuning_calls.append(run.trial.number)
            if len(tuning_calls) == 3:
                raise Interrupted("the machine went away")
        return linear_model(criterion, run)

    with pytest.raises(Interrupted, match="the machine went away") as raised:
        compare(breaks_at_third_trial, ["focal"], metric="f1", seeds=1, tune=4, out=tmp_path, **QUIET)
    assert raised.traceback[-1].name == "breaks_at_third_trial"  # the user's own frame raised it
    assert raised.value.__notes__ == ["compare: raised by train for loss 'focal', tuning trial 2"]
    assert [(n, s) for n, s, _ in studies(tmp_path)["focal"]] == [(0, "COMPLETE"), (1, "COMPLETE"), (2, "FAIL"),
                                                                  (3, "WAITING")]  # its last job, not yet trained
    with pytest.raises(ValueError, match="already holds a study; pass resume=True"):
        compare(linear_model, ["focal"], metric="f1", tune=4, out=tmp_path, **QUIET)
    recorder = Recorder(linear_model)
    result = compare(recorder, ["focal"], metric="f1", seeds=1, tune=4, out=tmp_path, resume=True, **QUIET)
    assert len([call for call in recorder.calls if call[2]]) == 2  # the two missing trials, nothing redone
    complete = studies(tmp_path, "COMPLETE")["focal"]
    assert [n for n, _, _ in complete] == [0, 1, 3, 4] and result.ranking[0].trials == 4


def test_one_process_with_a_given_seed_proposes_the_same_trials_and_any_seed_works(tmp_path):
    for name, seed in (("a", 2**32 + 5), ("b", 2**32 + 5), ("c", 7)):
        compare(linear_model, ["focal"], metric="f1", seeds=1, tune=4, seed=seed, out=tmp_path / name, **QUIET)
    proposals = {name: [values for _, _, values in studies(tmp_path / name)["focal"]] for name in "abc"}
    assert proposals["a"] == proposals["b"] != proposals["c"]


def test_bad_arguments_fail_before_any_training(tmp_path):
    def never(criterion, run):
        raise AssertionError("trained")

    cases = [
        (dict(losses=["class_balanced_ce"]), ValueError,
         "loss 'class_balanced_ce' needs the training label counts; pass class_counts="),
        (dict(losses=["seesaw"]), ValueError, "loss 'seesaw' needs the number of classes; pass class_counts="),
        (dict(losses=["focl"]), ValueError, "did you mean 'focal'"),
        (dict(losses="focal"), TypeError, r"did you mean \['focal'\]"),
        (dict(direction="up"), ValueError, "direction must be 'maximize' or 'minimize', got 'up'"),
        (dict(pruner="mean"), ValueError, "pruner must be None, 'median' or 'hyperband'"),
        (dict(workers=2, tune=1), TypeError, "must be picklable"),
        (dict(resume=True, tune=1, out=tmp_path / "r"), ValueError, "no study to continue"),
        (dict(seeds=0), ValueError, "seeds must be a whole number >= 1, got 0"),
    ]
    for options, error, message in cases:
        arguments = {"losses": ["focal"], "metric": "score", **QUIET, **options}
        with pytest.raises(error, match=message):
            compare(never, **arguments)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("returned, message", [
    ({"dice": 0.5}, r"metric 'score' is missing in what train returned \(keys: dice\)"),
    ({"score": math.nan, "dice": 0.5}, r"metric 'score' is NaN in what train returned \(keys: score, dice\)"),
])
def test_a_missing_or_nan_metric_is_a_clear_error(returned, message):
    with pytest.raises(ValueError, match=message):
        compare(lambda criterion, run: returned, ["bce"], metric="score", seeds=1, **QUIET)


def test_two_workers_count_every_trial_once(tmp_path):
    result = compare(seeded_scores, ["focal", "tversky"], metric="score", seeds=1, tune=3, workers=2,
                     out=tmp_path, **QUIET)
    complete = studies(tmp_path, "COMPLETE")
    assert {loss: len(trials) for loss, trials in complete.items()} == {"focal": 3, "tversky": 3}
    assert [entry.trials for entry in result.ranking] == [3, 3]
    for loss, trials in complete.items():  # three distinct proposals, each inside the loss's search space
        proposals = [values for _, _, values in trials]
        assert len({json.dumps(values, sort_keys=True) for values in proposals}) == 3, proposals
        space = get_loss(loss).search_space
        assert all(set(values) == set(space) for values in proposals)


def test_devices_go_round_robin_over_the_visible_gpus():
    assert assign_devices(3, "cuda", ["2", "5"]) == ["cuda:0", "cuda:1", "cuda:0"]
    assert assign_devices(2, "cuda", ["7"]) == ["cuda:0", "cuda:0"]
    assert assign_devices(2, "cpu", ["0", "1"]) == ["cpu", "cpu"]
    assert assign_devices(2, "cuda:1", ["0", "1"]) == ["cuda:1", "cuda:1"]  # a device named: all on it
    assert assign_devices(1, "cuda", []) == ["cuda"]


def test_the_segmentation_trainer_with_mixed_precision_on_the_cpu():
    from seesaw_losses.experiments.data.generated import vessel_dataset
    from seesaw_losses.experiments.trainers import Budget, SegmentationTrainer

    trainer = SegmentationTrainer(vessel_dataset(6, 3, size=32, seed=1), Budget(1, 4, 3e-3, amp=True), width=4)
    result = compare(trainer, ["bce", "dice"], metric=trainer.metric, seeds=1, class_counts=trainer.class_counts(),
                     **QUIET)
    assert trainer.metric == result.metric == "image_dice"
    for entry in result.ranking:
        run = entry.runs[0]
        assert 0 <= entry.values[0] <= 1 and run.artifacts["outputs"].shape == (3, 32, 32)
        per_image = run.samples["image_dice"][0]
        assert len(per_image) == 3 and run.history["train_loss"] and run.artifacts["peak_mb"] > 0
        assert entry.values[0] == pytest.approx(per_image.mean())  # the ranked mean is the per-image one
        assert {"dice", "surface_dice@1px", "surface_dice@2px"} <= set(run.metrics)
        assert entry.mean == pytest.approx(per_image.mean()) and entry.ci95[0] <= entry.mean <= entry.ci95[1]
    assert "Dice/img" in str(result) and "3 held-out samples x 1 seed" in str(result)


def test_the_multiclass_segmentation_trainer_ranks_by_per_image_miou():
    from seesaw_losses.experiments.data.generated import SegmentationData, vessel_dataset
    from seesaw_losses.experiments.trainers import Budget, SegmentationTrainer

    binary = vessel_dataset(6, 3, size=32, seed=1)
    for split in (binary.train, binary.validation, binary.test):
        split.masks[:, :8] *= 2  # the top rows' foreground is a second class
    data = SegmentationData(binary.train, binary.validation, binary.test, 3, "three classes")
    trainer = SegmentationTrainer(data, Budget(1, 4, 3e-3), width=4)
    result = compare(trainer, ["ce"], metric=trainer.metric, seeds=1, class_counts=trainer.class_counts(), **QUIET)
    run = result.ranking[0].runs[0]
    assert result.metric == "image_mean_iou" and len(run.samples["image_mean_iou"][0]) == 3
    assert run.metrics["image_mean_iou"] == pytest.approx(run.samples["image_mean_iou"][0].mean())
    assert "mean_iou" in run.metrics and "mIoU/img" in str(result)


def run_cli(*argv, cwd):
    env_path = f"{TESTS}:{Path(compare_functions.__file__).parents[1] / 'src'}"
    return subprocess.run([sys.executable, "-m", "seesaw_losses.cli", "compare", *map(str, argv)],
                          capture_output=True, text=True, timeout=240, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": env_path})


def test_the_cli_runs_the_users_function_and_writes_a_winner_that_builds(tmp_path):
    out = tmp_path / "r"
    result = run_cli("--train", TESTS / "compare_functions.py:linear_model", "--metric", "f1", "--loss", "focal",
                     "--loss", "bce", "--loss", "weighted_bce", "--class-counts", "270,30", "--seeds", "2",
                     "--tune", "2", "--pruner", "median", "--out", out, "--no-progress", "--threads", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    winner = json.loads((out / "winner.json").read_text())
    assert winner["metric"] == "f1"
    assert_builds(winner["loss"])
    document = json.loads((out / "results.json").read_text())
    assert {r["loss"] for r in document["comparison"]["results"]} == {"focal", "bce", "weighted_bce"}
    config = next(r["config"] for r in document["comparison"]["results"] if r["loss"] == "weighted_bce")
    options = dict(option.split("=") for option in config.split(":")[1].split(","))
    # the counts give 270 / 30 = 9, capped by the tuned max_weight
    assert float(options["pos_weight"]) == pytest.approx(min(9.0, float(options.get("max_weight", 9))), rel=1e-3)
    assert (out / "comparison_curves.png").exists() and winner["loss"] in result.stdout
    module_form = run_cli("--train", "compare_functions:seeded_scores", "--metric", "score", "--loss", "bce",
                          "--seeds", "1", "--out", tmp_path / "m", "--no-progress", cwd=tmp_path)
    assert module_form.returncode == 0, module_form.stderr


@pytest.mark.parametrize("argv, message", [
    (["--train", "nope.py:train", "--metric", "f1", "--loss", "bce"], "--train: there is no file 'nope.py'"),
    (["--train", "{file}:nothing", "--metric", "f1", "--loss", "bce"], "has no function 'nothing' (functions there: "),
    (["--train", "no_such_module_here:train", "--metric", "f1", "--loss", "bce"], "no module 'no_such_module_here'"),
    (["--train", "{file}:linear_model", "--loss", "bce"], "--train needs --metric NAME"),
    (["--train", "{file}:linear_model", "--metric", "f1"], "--train needs the losses to compare"),
    (["--train", "{file}:linear_model", "--metric", "f1", "--loss", "bce", "--images", "x"], "leave out --images"),
    (["--train", "{file}:linear_model", "--metric", "f1", "--loss", "logit_adjusted"],
     "needs the training label counts"),
    (["--train", "{file}:linear_model", "--metric", "f1", "--loss", "bce", "--class-counts", "3,x"],
     "--class-counts must be whole numbers"),
    (["--metric", "f1", "--loss", "bce"], "give --images and --masks"),
])
def test_the_cli_refuses_bad_input_before_any_training(tmp_path, capsys, argv, message):
    from seesaw_losses.cli import main

    argv = [a.replace("{file}", str(TESTS / "compare_functions.py")) for a in argv]
    code = main(["compare", *argv, "--out", str(tmp_path / "r"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("example", ["compare_custom_model.py", "compare_mmengine.py"])
def test_the_examples_run_with_a_tiny_budget(example, tmp_path):
    root = TESTS.parent
    result = subprocess.run([sys.executable, str(root / "examples" / example), "--quick"], capture_output=True,
                            text=True, timeout=300, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(root / "src")})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Recommendation: " in result.stdout
    assert_builds(result.stdout.strip().splitlines()[-1].removeprefix("winner: "))
