import numpy as np

from cli_checks import assert_png, inches
from seesaw_losses.cli import main
from seesaw_losses.experiments import losses
from seesaw_losses.experiments.reporting import loss_curves


def curves(text, ratio=100.0, true_class=loss_curves.RARE):
    built = loss_curves.build_for_curves(losses.parse_loss(text), ratio)
    return loss_curves.loss_and_gradient(built, np.array([0.1, 0.5, 0.9]), true_class)


def test_plot_writes_both_figures(tmp_path, capsys):
    assert main(["plot", "--out", str(tmp_path / "p"), "--loss", "bce", "--loss", "focal:gamma=2",
                 "--loss", "seesaw:p=0.6", "--loss", "dice"]) == 0
    out = capsys.readouterr().out
    assert "skipped region losses (no per-pixel curve): dice" in out
    assert_png(tmp_path / "p" / "losses.png", inches(12, 4.8))
    assert_png(tmp_path / "p" / "seesaw_factors.png", inches(12, 4.5))


def test_plot_default_losses(tmp_path):
    assert main(["plot", "--out", str(tmp_path / "p")]) == 0
    assert_png(tmp_path / "p" / "losses.png", inches(12, 4.8))


def test_curves_are_the_textbook_formulas():
    p = np.array([0.1, 0.5, 0.9])
    value, gradient = curves("bce")
    np.testing.assert_allclose(value, -np.log(p))
    np.testing.assert_allclose(gradient, 1 - p)
    np.testing.assert_allclose(curves("focal:gamma=0,alpha=None")[0], -np.log(p))
    focal, _ = curves("focal:gamma=2,alpha=None")
    np.testing.assert_allclose(focal, -(1 - p) ** 2 * np.log(p))
    np.testing.assert_allclose(curves("ce")[0], -np.log(p))
    # weighted BCE weighs the rare class by the frequency ratio only
    np.testing.assert_allclose(curves("weighted_bce", ratio=50)[0], -50 * np.log(p))
    np.testing.assert_allclose(curves("weighted_bce", ratio=50, true_class=loss_curves.FREQUENT)[0], -np.log(p))


def test_seesaw_curves_mitigate_only_the_frequent_class_samples():
    p = np.array([0.1, 0.5, 0.9])
    rare, _ = curves("seesaw:q=0")
    np.testing.assert_allclose(rare, -np.log(p))  # the other class is more frequent: no mitigation
    frequent, _ = curves("seesaw:p=1,q=0", ratio=100.0, true_class=loss_curves.FREQUENT)
    # true class frequent, negative 100x rarer: its logit is shifted by log(1/100)
    np.testing.assert_allclose(frequent, -np.log(p / (p + (1 - p) / 100)))


def test_plot_refuses_only_region_losses(tmp_path, capsys):
    assert main(["plot", "--out", str(tmp_path / "p"), "--loss", "dice", "--loss", "bce+dice"]) == 2
    assert "nothing to plot" in capsys.readouterr().err
