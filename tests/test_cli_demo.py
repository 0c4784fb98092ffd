import csv
import json
import subprocess
import sys

import pytest

from cli_checks import assert_png, inches, load_results
from seesaw_losses.cli import main
from seesaw_losses.cli.demo import BUDGETS, LONG_TAIL_LOSSES, SEGMENTATION_LOSSES
from seesaw_losses.experiments.reporting.plots import per_class_size, prediction_grid_size


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    """One `seesaw demo --quick` run with the default losses, as a user would type it."""
    out = tmp_path_factory.mktemp("demo") / "report"
    result = subprocess.run([sys.executable, "-m", "seesaw_losses.cli", "demo", "--quick", "--out", str(out)],
                            capture_output=True, text=True, timeout=240)
    return out, result


def test_demo_exits_zero_and_prints_ranked_tables_with_intervals(quick_demo):
    _, result = quick_demo
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Sparse vessel/crack segmentation (held-out, ranked by Dice/img)" in out
    assert "Sparse vessel/crack segmentation: at threshold 0.5" in out and "per class" not in out.split("Long-")[0]
    assert "95 % t-interval over held-out images x seeds" in out and "best in" in out
    assert "Long-tailed classification (held-out, ranked by Bal. acc)" in out
    for loss in SEGMENTATION_LOSSES + LONG_TAIL_LOSSES:
        assert f" {loss} " in out
    assert "pos_weight" in out and "from the training label counts" in out
    assert out.count("Recommendation: ") == 2 and "±" in out and "Optuna TPE trials" in out
    assert "criterion = seesaw_losses.build_loss(" in out
    assert "Traceback" not in result.stderr


def test_demo_writes_plots_report_and_winner(quick_demo):
    out, _ = quick_demo
    assert_png(out / "segmentation_curves.png", inches(11, 4))
    assert_png(out / "long_tail_curves.png", inches(11, 4))
    assert_png(out / "segmentation_precision_recall.png", inches(6, 5))
    assert_png(out / "long_tail_per_class.png", inches(*per_class_size(10, len(LONG_TAIL_LOSSES))))
    assert_png(out / "segmentation_predictions.png", inches(*prediction_grid_size(4, len(SEGMENTATION_LOSSES))))
    report = (out / "report.md").read_text()
    assert report.count("![") == 5 and "## Long-tailed classification" in report
    assert json.loads((out / "winner.json").read_text())["metric"] == "image_dice"


def test_demo_json_and_csv_hold_every_loss_over_seeds(quick_demo):
    out, _ = quick_demo
    document = load_results(out / "results.json")
    segmentation, long_tail = document["segmentation"], document["long_tail"]
    assert [r["rank"] for r in segmentation["results"]] == list(range(1, len(SEGMENTATION_LOSSES) + 1))
    assert {r["loss"] for r in segmentation["results"]} == set(SEGMENTATION_LOSSES)
    assert {r["loss"] for r in long_tail["results"]} == set(LONG_TAIL_LOSSES)
    dice = [r["summary"]["image_dice"]["mean"] for r in segmentation["results"]]
    assert dice == sorted(dice, reverse=True)  # ranked by the mean per-image Dice
    budget = BUDGETS["quick"]
    for result in segmentation["results"]:
        assert len(result["runs"]) == budget.seg_seeds
        assert len(result["runs"][0]["history"]["validation"]) == budget.seg_epochs
        per_image = result["runs"][0]["per_image"]["image_dice"]
        assert len(per_image) == budget.test  # one Dice per held-out image
        assert result["runs"][0]["metrics"]["image_dice"] == pytest.approx(sum(per_image) / len(per_image))
        assert 0 <= result["best_fraction"] <= 1 and {"surface_dice@1px", "surface_dice@2px"} <= set(result["summary"])
    for result in long_tail["results"]:
        assert len(result["runs"]) == budget.cls_seeds
        assert len([k for k in result["summary"] if k.startswith("accuracy/")]) == 10
    with open(out / "segmentation.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["loss"] for row in rows] == [r["loss"] for r in segmentation["results"]]


def test_demo_refuses_a_non_empty_output_folder(quick_demo, capsys):
    out, _ = quick_demo
    assert main(["demo", "--quick", "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "is not empty; pass --force" in error


def test_demo_with_chosen_losses_and_one_task(tmp_path, capsys):
    code = main(["demo", "--quick", "--task", "long-tail", "--cls-loss", "seesaw:p=0.4,q=1", "--cls-loss", "ce",
                 "--tune", "0", "--seeds", "1", "--out", str(tmp_path / "r"), "--no-progress", "--threads", "1"])
    assert code == 0
    document = load_results(tmp_path / "r" / "results.json")
    assert "segmentation" not in document
    assert {r["loss"] for r in document["long_tail"]["results"]} == {"seesaw:p=0.4,q=1", "ce"}
    assert (tmp_path / "r" / "long_tail_per_class.png").exists()


@pytest.mark.parametrize("argv, message", [
    (["--seg-loss", "focl"], "unknown loss 'focl'"),
    (["--seg-loss", "focal:gamma"], "key=value"),
    (["--seg-loss", "focal:gamma=2+ce"], "mixes one-logit"),
    (["--seg-loss", "bce", "--seg-loss", "bce"], "is given twice"),
    (["--seg-loss", "focal:gama=2"], "did you mean 'gamma'"),
])
def test_demo_bad_loss_options(tmp_path, capsys, argv, message):
    assert main(["demo", "--quick", "--task", "segmentation", "--out", str(tmp_path / "r"), "--no-progress"]
                + argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_help_and_version_still_work():
    for argv in (["--help"], ["demo", "--help"], ["compare", "--help"], ["plot", "--help"], ["--version"]):
        result = subprocess.run([sys.executable, "-m", "seesaw_losses.cli"] + argv, capture_output=True, text=True)
        assert result.returncode == 0 and result.stdout
