"""``compare`` under ``torchrun`` with two gloo ranks on the CPU (``examples/compare_torchrun.py``): rank 0 claims
each job and the other rank trains the same one with it, inside DDP; rank 0 writes the report."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("optuna", reason="the study needs the cli extra: pip install 'seesaw-losses[cli]'")

EXAMPLE = Path(__file__).parents[1] / "examples" / "compare_torchrun.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_ranks_train_every_job_together_and_rank_0_writes_the_report(tmp_path):
    out = tmp_path / "report"
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                           "--master-addr", "127.0.0.1", "--master-port", str(_free_port()), str(EXAMPLE), "--quick",
                           "--out", str(out)], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(EXAMPLE.parents[1] / "src")})
    assert done.returncode == 0, done.stderr[-3000:]
    calls = {rank: sorted(line.split(": ", 1)[1] for line in done.stdout.splitlines()
                          if line.startswith(f"rank {rank}: ")) for rank in (0, 1)}
    # 2 trials of each of the two tunable losses and 2 seeds of each of the three losses, on both ranks alike
    assert calls[0] == calls[1] and len(calls[0]) == 2 * 2 + 3 * 2, calls
    assert sum(call.startswith("final") for call in calls[0]) == 6
    assert (out / "report.md").exists() and (out / "winner.json").exists()
