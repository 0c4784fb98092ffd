"""A comparison under faults and mistakes: every value ``train`` returns checked where it arrives, one line and
exit status 2 for every mistake of the command, the user's names printed literally."""

import errno
import json
import math
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from seesaw_losses import compare

QUIET = {"progress": False}
TESTS = Path(__file__).parent


def seesaw_compare(*argv, cwd=None):
    """``seesaw compare ARGV`` in a new process (the tests folder importable): ``(exit status, stdout, stderr)``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "seesaw_losses.cli", "compare", *map(str, argv)], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env=env)
    return done.returncode, done.stdout, done.stderr


def assert_one_line_error(code, stderr, message):
    assert code == 2, stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    assert message in stderr, stderr


def scores_with(value, *, tuning):
    """A ``train`` returning ``value`` as its score in tuning trials (``tuning=True``) or in the final run of seed
    1, and 0.5 otherwise."""

    def train(criterion, run):
        hit = run.tuning if tuning else (not run.tuning and run.seed == 1)
        return {"score": value if hit else 0.5}

    return train


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
@pytest.mark.parametrize("tuning, where", [(True, "for loss 'focal', tuning trial 1"),
                                           (False, "for loss 'focal', seed 1")])
def test_a_metric_that_is_not_finite_is_refused_where_it_arrives(value, tuning, where):
    with pytest.raises(ValueError) as raised:
        compare(scores_with(value, tuning=tuning), ["focal"], metric="score", seeds=2, tune=2 if tuning else 0,
                **QUIET)
    shown = "NaN" if math.isnan(value) else str(value)
    assert str(raised.value) == (f"compare: metric 'score' is {shown} in what train returned (keys: score) {where}; "
                                 "return a finite number for every run, or pass metric= one of these")


def test_a_negative_seed_is_refused_before_any_training():
    with pytest.raises(ValueError, match=r"^compare: seed must be a whole number >= 0, got -1$"):
        compare(scores_with(0.5, tuning=False), ["focal"], metric="score", seed=-1, **QUIET)


@pytest.mark.parametrize("losses, message", [
    (["focal:gamma=3", "focal:gamma=3.0"], "losses='focal:gamma=3.0' is the loss 'focal:gamma=3' again (both are "
                                           "'focal:alpha=0.25,gamma=3'); give each loss once"),
    (["focal", "sigmoid_focal"], "losses='sigmoid_focal' is the loss 'focal' again (both are "
                                 "'focal:alpha=0.25,gamma=2')"),
    (["focal:gamma=3,alpha=0.5", "focal:alpha=0.5,gamma=3.0"], "(both are 'focal:alpha=0.5,gamma=3')"),
    (["focal", "focal:gamma=2"], "losses='focal:gamma=2' is the loss 'focal' again"),  # gamma=2: the default
])
def test_one_loss_spelled_twice_is_refused(losses, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        compare(scores_with(0.5, tuning=False), losses, metric="score", **QUIET)


def test_a_wrong_metric_with_train_is_one_line(tmp_path):
    code, _, stderr = seesaw_compare("--train", "compare_functions:seeded_scores", "--metric", "dice", "--loss",
                                     "bce", "--seeds", "1", "--no-progress", "--out", tmp_path / "out")
    assert_one_line_error(code, stderr, "seesaw compare: error: metric 'dice' is missing in what train returned "
                                        "(keys: score, loss_name) for loss 'bce', seed 0; return a finite number "
                                        "for every run, or pass --metric one of these")


@pytest.mark.parametrize("option", ["--seed", "--split-seed"])
def test_a_negative_seed_on_the_command_is_refused(tmp_path, option):
    code, _, stderr = seesaw_compare("--train", "compare_functions:seeded_scores", "--metric", "score", "--loss",
                                     "bce", option, "-1", "--out", tmp_path / "out")
    assert code == 2 and "Traceback" not in stderr, stderr
    assert f"argument {option}: expected a number >= 0, got -1" in stderr
    assert not (tmp_path / "out").exists()


def test_ctrl_c_while_tuning_says_interrupted_and_nothing_else(tmp_path):
    code, _, stderr = seesaw_compare("--train", "compare_functions:interrupted", "--metric", "score", "--loss",
                                     "focal", "--tune", "2", "--no-progress", "--out", tmp_path / "out")
    assert (code, stderr) == (130, "seesaw compare: interrupted\n")


def test_names_are_printed_literally_never_as_markup_or_emoji(tmp_path):
    folder = tmp_path / "[red]x[" / "]"
    folder.mkdir(parents=True)
    (folder / "a:train:b.py").write_text("def train(criterion, run):\n    return {'score': 0.5}\n")
    function = f"{folder / 'a:train:b.py'}:train"
    code, stdout, stderr = seesaw_compare("--train", function, "--metric", "score", "--loss", "bce", "--seeds",
                                          "1", "--no-progress", "--out", tmp_path / "out")
    assert code == 0, stderr
    def bare(text):  # a title wider than its table wraps
        return re.sub(r"\s", "", text)

    assert bare(f"{function}: costs") in bare(stdout) and "🚋" not in stdout
    assert bare(f"{function} (held-out, ranked by score)") in bare(stdout)


@pytest.fixture
def read_only(tmp_path):
    """An empty folder this process cannot write into (as root, whom permissions do not stop: a read-only mount)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() == 0:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)], check=True)
        yield folder
        subprocess.run(["umount", str(folder)], check=True)
    else:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)


def unusable_folders(tmp_path, read_only):
    """``(out, what the refusal says after out='...')`` for each way an output folder cannot hold a report."""
    (tmp_path / "notes.txt").write_text("a file")
    return [(read_only, "is not writable (read-only, or not yours); choose another out= folder"),
            (read_only / "report", f"would be made in {str(read_only)!r}, which is not writable"),
            (tmp_path / "notes.txt" / "report", f"is under {str(tmp_path / 'notes.txt')!r}, a file")]


def test_an_unusable_output_folder_is_refused_before_any_training(tmp_path, read_only):
    calls = []

    def train(criterion, run):
        calls.append(run.seed)
        return {"score": 0.5}

    for out, message in unusable_folders(tmp_path, read_only):
        with pytest.raises(ValueError, match=re.escape(f"compare: out={str(out)!r} {message}")):
            compare(train, ["focal"], metric="score", out=out, **QUIET)
    assert calls == []


def test_an_output_folder_on_a_full_disk_is_refused_before_any_training(tmp_path, monkeypatch):
    from collections import namedtuple

    from seesaw_losses.experiments.reporting import report

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(report.shutil, "disk_usage", lambda path: usage(2**30, 2**30 - 2**20, 2**20))
    with pytest.raises(ValueError, match=re.escape(f"out={str(tmp_path / 'out')!r} is on a disk with 1.0 MB free; "
                                                   "the report needs about 32 MB")):
        compare(scores_with(0.5, tuning=False), ["focal"], metric="score", out=tmp_path / "out", **QUIET)


def test_the_command_refuses_an_unusable_output_folder_in_one_line(tmp_path, read_only):
    for out, message in unusable_folders(tmp_path, read_only):
        code, stdout, stderr = seesaw_compare("--train", "compare_functions:seeded_scores", "--metric", "score",
                                              "--loss", "bce", "--seeds", "1", "--no-progress", "--out", out)
        assert_one_line_error(code, stderr, f"seesaw compare: error: --out {str(out)!r} "
                                            + message.replace("out= folder", "--out folder"))
        assert stdout == ""


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_while_writing_the_report_keeps_every_result(tmp_path, monkeypatch):
    from seesaw_losses.experiments.reporting import report

    monkeypatch.setattr(report, "write_csv", no_space)  # the disk fills after results.json
    out = tmp_path / "out"
    with pytest.raises(report.ReportError) as raised:
        compare(scores_with(0.5, tuning=False), ["focal", "bce"], metric="score", seeds=2, out=out, **QUIET)
    assert str(raised.value) == (
        f"compare: the comparison finished, but writing the report into out={str(out)!r} failed (OSError: No space "
        f"left on device); the results are kept in {out / 'results.json'}; free space (or choose another folder) "
        "and write the report again with error.result.save(folder)")
    saved = json.loads((out / "results.json").read_text())["comparison"]
    assert sorted(entry["loss"] for entry in saved["results"]) == ["bce", "focal"]
    assert [run["metrics"]["score"] for entry in saved["results"] for run in entry["runs"]] == [0.5] * 4
    assert not list(out.glob(".results.json.*"))  # no temporary file left beside it
    monkeypatch.undo()
    written = raised.value.result.save(tmp_path / "again")
    assert {path.name for path in written} >= {"results.json", "report.md", "comparison.csv"}


def test_the_command_prints_the_tables_when_the_report_cannot_be_written(tmp_path, monkeypatch, capsys):
    from seesaw_losses.cli import main
    from seesaw_losses.experiments.reporting import report

    monkeypatch.syspath_prepend(str(TESTS))
    import compare_functions

    calls = []

    def counted(criterion, run):
        calls.append((run.loss, run.seed))
        return compare_functions.seeded_scores(criterion, run)

    monkeypatch.setattr(compare_functions, "counted_scores", counted, raising=False)
    monkeypatch.setattr(report, "write_csv", no_space)
    out = tmp_path / "out"
    command = ["compare", "--train", "compare_functions:counted_scores", "--metric", "score", "--loss", "bce",
               "--loss", "focal", "--seeds", "2", "--no-progress", "--out", str(out)]
    code = main(command)
    captured = capsys.readouterr()
    assert_one_line_error(code, captured.err, (
        f"seesaw compare: error: the comparison finished, but writing the report into --out {str(out)!r} failed "
        f"(OSError: No space left on device); the results are kept in {out / 'results.json'}; the tables are "
        "above; free space (or choose another --out) and run the same command with --resume: it trains nothing "
        "and writes the report"))
    assert "(held-out, ranked by score)" in captured.out and (out / "results.json").is_file()
    assert len(calls) == 4
    monkeypatch.undo()  # the disk has room again: what the message says writes the report from the study
    monkeypatch.syspath_prepend(str(TESTS))
    monkeypatch.setattr(compare_functions, "counted_scores", counted, raising=False)
    assert main(command + ["--resume"]) == 0
    assert len(calls) == 4 and (out / "report.md").is_file()


def write_photos(root, counts, suffix=".jpg"):
    """Noise images with a class-specific stripe, ``counts[name]`` in class folder ``name``, 48x48 colour."""
    from PIL import Image
    import numpy as np

    rng = np.random.default_rng(0)
    for label, (name, count) in enumerate(counts.items()):
        (root / name).mkdir(parents=True)
        for k in range(count):
            pixels = rng.integers(0, 255, (48, 48, 3)).astype(np.uint8)
            pixels[:, 4 * label:4 * label + 4] = 230
            Image.fromarray(pixels).save(root / name / f"{k:03d}{suffix}")
    return root


def truncate(path):
    """Cut the last quarter of ``path``: the header stays readable, the pixel data ends early."""
    data = path.read_bytes()
    path.write_bytes(data[:len(data) * 3 // 4])


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_a_truncated_image_is_refused_up_front_by_name(tmp_path, suffix):
    root = write_photos(tmp_path / "classes", {"cat": 8, "dog": 8}, suffix)
    truncate(root / "dog" / f"003{suffix}")
    code, stdout, stderr = seesaw_compare("--images", root, "--loss", "ce", "--epochs", "1", "--seeds", "1",
                                          "--no-progress", "--loader-workers", "1", "--out", tmp_path / "out")
    assert_one_line_error(code, stderr, f"seesaw compare: error: cannot read {root / 'dog' / f'003{suffix}'}: "
                                        "OSError: image file is truncated")
    assert stdout == "" and not (tmp_path / "out").exists()


def test_a_read_error_while_tuning_is_a_data_error_that_spends_no_trial(tmp_path):
    from seesaw_losses.experiments import DataError
    from seesaw_losses.experiments.data.class_folders import load_class_folders
    from seesaw_losses.experiments.trainers import Budget, ClassificationTrainer

    root = write_photos(tmp_path / "classes", {"cat": 8, "dog": 8})
    data = load_class_folders(root, image_size=16)
    trainer = ClassificationTrainer(data, Budget(1, 8, 3e-3), width=4, loader_workers=1)
    broken = data.train.paths[0]
    intact = broken.read_bytes()
    truncate(broken)  # damaged after the up-front check: read by a loader worker process during a trial
    out = tmp_path / "out"
    with pytest.raises(DataError) as raised:
        compare(trainer, ["ce"], seeds=1, tune=2, out=out, **QUIET)
    assert str(raised.value).startswith(f"cannot read {broken}: OSError: image file is truncated")
    assert "\n" not in str(raised.value)
    with sqlite3.connect(out / "study.db") as db:
        states = [state for (state,) in db.execute("SELECT state FROM trials")]
    assert sorted(states) == ["FAIL", "WAITING"]  # not pruned as a divergence: the budget is untouched
    broken.write_bytes(intact)
    result = compare(trainer, ["ce"], seeds=1, tune=2, out=out, resume=True, **QUIET)
    assert (result.ranking[0].trials, result.ranking[0].pruned) == (2, 0)


def test_class_counts_of_a_short_list_shows_no_progress_bar(capsys):
    import torch

    from seesaw_losses import class_counts

    assert class_counts([torch.tensor([0, 1]), torch.tensor([1]), torch.tensor([2])], 3).tolist() == [1, 2, 1]
    assert capsys.readouterr().err == ""


def test_progress_counts_runs_when_train_has_no_epochs(capsys):
    compare(scores_with(0.5, tuning=False), ["bce", "focal"], metric="score", seeds=1, progress=True)
    lines = capsys.readouterr().err.splitlines()
    assert [line.rsplit("[", 1)[1] for line in lines] == ["1/2 runs]", "2/2 runs]"]


def test_with_one_seed_the_notes_say_what_was_computed():
    from seesaw_losses.experiments.reporting.report import format_tables

    def train(criterion, run):
        return {"score": 0.7 if run.loss == "bce" else 0.5}

    text = format_tables(compare(train, ["bce", "focal"], metric="score", seeds=1, **QUIET))
    assert "ranked by score, no interval (one seed, no per-sample scores);" in text
    assert "half-width of its no interval" not in text and "of resamples" not in text and "100 %" not in text
    assert ("Recommendation: bce (score 0.700), the best mean; with one seed and no per-sample scores nothing is "
            "resampled or tested: train 3 or more seeds.") in text


def test_compare_help_names_the_three_modes():
    done = subprocess.run([sys.executable, "-m", "seesaw_losses.cli", "compare", "--help"], capture_output=True,
                          text=True, timeout=60)
    text = " ".join(done.stdout.split())
    assert done.returncode == 0
    assert "Three modes: (1) --images and --masks: a small U-Net" in text
    assert "(2) --images alone: a small CNN on class folders" in text
    assert "(3) --train FILE.py:FUNCTION: your own function" in text


def test_integer_class_folders_in_text_order_are_noted(tmp_path):
    from seesaw_losses.experiments.data.class_folders import load_class_folders

    root = write_photos(tmp_path / "digits", {"1": 10, "2": 10, "10": 10}, ".png")
    notes = load_class_folders(root, image_size=16).notes
    assert ("the class folders are numbered in the order of their sorted names, as torchvision's ImageFolder "
            "numbers them, not by the numbers they name: 0: 1, 1: 10, 2: 2; name them with leading zeros (01, 02, "
            "..., 10) to make both orders agree") in notes
    padded = write_photos(tmp_path / "padded", {"01": 10, "02": 10, "10": 10}, ".png")
    assert not any("leading zeros" in note for note in load_class_folders(padded, image_size=16).notes)


def test_class_folders_paste_line_names_the_classes_and_augment_reaches_the_trainer(tmp_path, monkeypatch, capsys):
    from seesaw_losses.cli import main
    from seesaw_losses.experiments.reporting import report
    from seesaw_losses.experiments.trainers import ClassificationTrainer

    seen = []

    def train(self, criterion, run):  # what the CLI built, without training
        seen.append(self.augment)
        return {"balanced_accuracy": 0.5 + 0.1 * (run.loss == "ce"),
                **{f"accuracy/{name}": 0.5 for name in self.data.classes}}

    monkeypatch.setattr(ClassificationTrainer, "__call__", train)
    monkeypatch.setattr(report, "plot_classification", lambda comparison, out, name: [])  # no artifacts to draw
    root = write_photos(tmp_path / "classes", {"zero": 6, "[bold]": 6, "two": 6}, ".png")
    code = main(["compare", "--images", str(root), "--loss", "ce", "--loss", "softmax_focal", "--seeds", "1",
                 "--augment", "none", "--no-progress", "--threads", "1", "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 0 and set(seen) == {"none"}
    paste = out[out.index("Paste into training code"):].splitlines()
    assert paste[1] == ("    # class indices as torchvision's ImageFolder numbers the folders (sorted names): "
                        "0: [bold], 1: two, 2: zero")
    assert paste[2].startswith('    criterion = seesaw_losses.build_loss("ce')
    report = (tmp_path / "out" / "report.md").read_text()
    assert "0: [bold], 1: two, 2: zero" in report
    assert "[bold]" in out[:out.index("Paste into training code")]  # a class name in the tables, as it is


def test_flip_none_keeps_the_class_folder_images_and_patches_as_read(monkeypatch):
    import numpy as np
    import torch

    from seesaw_losses.experiments.data.patches import sample_patches
    from seesaw_losses.experiments.trainers import classification

    image = torch.arange(64 * 64, dtype=torch.float32).reshape(1, 64, 64)  # increases along rows and columns
    mask = torch.zeros(64, 64, dtype=torch.int64)
    for augment in (False, True):
        patches, _, _ = sample_patches(image, mask, size=16, count=16, rng=np.random.default_rng(0), augment=augment)
        as_read = [bool((p[..., 1:] > p[..., :-1]).all() and (p[..., 1:, :] > p[..., :-1, :]).all()) for p in patches]
        assert all(as_read) if not augment else not all(as_read)
    with pytest.raises(ValueError, match=r"ClassificationTrainer: augment must be one of 'flip', 'none', got 'turn'"):
        classification.ClassificationTrainer(None, augment="turn")


def test_busy_cores_are_counted_from_the_processes_running_now():
    from seesaw_losses.experiments.trainers import fit

    cores = fit.usable_cores()
    spinning = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        assert fit.running_elsewhere() >= 2  # never sleeping: runnable at every reading
        assert 1 <= fit.idle_cores() <= max(1, cores - 2)
    finally:
        for process in spinning:
            process.kill()
            process.wait()
    assert fit.default_loader_workers(1) == 0 and fit.default_loader_workers(8) == 4
