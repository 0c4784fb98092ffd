"""`seesaw bench` and `python -m seesaw_losses.bench`, run for real in --quick mode."""

import json
import math
import os
import subprocess
import sys

import pytest
import torch

from seesaw_losses import available_losses
from seesaw_losses.bench import WORKLOADS
from seesaw_losses.bench.baselines import candidates
from seesaw_losses.bench.runner import copy_bandwidth, floor_bytes, format_table
from seesaw_losses.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _check_result(result, workloads):
    assert result["quick"] is True and result["repeats"] == 3
    assert result["machine"]["torch_threads"] == 2 and result["machine"]["device"] == "cpu"
    assert [w["name"] for w in result["workloads"]] == workloads
    assert result["copy_gb_per_s"] > 0
    for w in result["workloads"]:
        logits_mb = math.prod(w["shape"]) * 4 / 2**20  # float32
        assert w["input_mb"] == pytest.approx(logits_mb)
        assert w["floor_mb"] > 2 * logits_mb  # the gradient, the logits and the target
        assert w["floor_ms"] == pytest.approx(w["floor_mb"] * 2**20 / result["copy_gb_per_s"] / 1e6)
        rows = {r["name"]: r for r in w["rows"]}
        native = rows[w["native"]]
        assert native["group"] == "native" and native["time_vs_native"] == 1.0
        assert {r["group"] for r in w["rows"]} >= {"native", "module", "library", "plain"}
        for r in w["rows"]:
            assert len(r["times_ms"]) == 3 and r["median_ms"] > 0
            assert r["time_vs_floor"] == pytest.approx(r["median_ms"] / w["floor_ms"])
            assert r["peak_mb"] > 0 and r["peak_vs_input"] > 0
            if r["group"] == "plain":
                assert rows[r["name"].replace(" (plain autograd)", "")]["group"] == "library"
                assert r["library_speedup"] > 0
                # the plain formula and the fused path compute the same loss
                assert r["loss"] == pytest.approx(rows[r["name"].replace(" (plain autograd)", "")]["loss"],
                                                  rel=1e-4)


def test_module_entry_point_runs_every_workload(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "seesaw_losses.bench", "--quick", "--json", str(out)],
        capture_output=True, text=True, timeout=240,
        env={**os.environ, "PYTHONPATH": os.path.join(ROOT, "src")}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "| F.binary_cross_entropy_with_logits | " in proc.stdout
    assert "| F.cross_entropy | " in proc.stdout
    _check_result(json.loads(out.read_text()), list(WORKLOADS))


def test_seesaw_bench_subcommand(tmp_path, capsys):
    out, table = tmp_path / "one.json", tmp_path / "tables" / "one.md"
    assert main(["bench", "--quick", "--workload", "longtail", "--json", str(out), "--markdown", str(table)]) == 0
    printed = capsys.readouterr().out
    assert "MMDetection Seesaw math" in printed
    result = json.loads(out.read_text())
    _check_result(result, ["longtail"])
    assert table.read_text() == format_table(result) + "\n" and format_table(result) in printed
    assert "| implementation | ms | x native | x floor | library speedup |" in table.read_text()


def test_the_floor_counts_the_logits_the_target_and_the_gradient():
    logits, target = torch.zeros(2, 3, 4, dtype=torch.float16), torch.zeros(2, 4, dtype=torch.int64)
    assert floor_bytes(logits, target) == 2 * 24 * 2 + 8 * 8
    assert copy_bandwidth("cpu", 1 << 16, 3) > 0


def test_bench_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--workload", "nope"])
    assert "invalid choice: 'nope'" in capsys.readouterr().err
    assert main(["bench", "--repeats", "0"]) == 2
    assert "seesaw bench: error: --repeats must be >= 1, got 0" in capsys.readouterr().err


def test_every_workload_has_a_native_baseline_first_and_every_fitting_registered_loss():
    for workload in WORKLOADS.values():
        rows = candidates(workload, workload.make(quick=True)[2])
        assert rows[0].group == "native"
        assert len({r.name for r in rows}) == len(rows)
        modules = {r.name for r in rows if r.group == "module"}
        for entry in available_losses():
            fits = workload.task in entry.tasks and entry.target in (workload.target, "option")
            assert (f"{entry.name} (module)" in modules) == fits, (workload.name, entry.name)


def test_bench_does_not_import_the_cli_or_the_experiments():
    code = ("import sys; from seesaw_losses.bench.command import main; "
            "assert not [m for m in sys.modules if m.startswith(('seesaw_losses.cli', 'seesaw_losses.experiments'))]")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120,
                   env={**os.environ, "PYTHONPATH": os.path.join(ROOT, "src")})
