import subprocess
import sys
from pathlib import Path

import seesaw_losses
from seesaw_losses.cli import main


def test_version_and_help(capsys):
    try:
        main(["--version"])
    except SystemExit as exit_:
        assert exit_.code == 0
    assert seesaw_losses.__version__ in capsys.readouterr().out
    assert main([]) == 0
    assert "usage: seesaw" in capsys.readouterr().out


def test_import_needs_torch_only():
    optional = "{'numpy', 'matplotlib', 'tqdm', 'PIL', 'mmengine', 'hydra', 'omegaconf'}"
    code = ("import sys, torch; before = set(sys.modules); import seesaw_losses; "
            f"print(sorted({optional} & (set(sys.modules) - before)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_gpu_check_parses_and_asks_for_its_output_folder():
    scripts = Path(__file__).resolve().parents[1] / "scripts"
    for script in ("gpu_check.sh", "gpu_wheels.sh"):
        subprocess.run(["bash", "-n", str(scripts / script)], check=True)
    done = subprocess.run(["bash", str(scripts / "gpu_check.sh")], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr == "usage: bash scripts/gpu_check.sh OUT_FOLDER\n"
