#!/usr/bin/env bash
# The GPU check, one command on a CUDA machine, from the repository root:
#
#   bash scripts/gpu_check.sh OUT_FOLDER
#
# 1. the Python to run with: the machine's own python3 where it already has a CUDA build of torch and Triton
#    (GPU images do, often without access to the package index: what they lack of the cli extra comes from
#    wheels in .whl/, written beforehand by scripts/gpu_wheels.sh on a machine that has the index), else a fresh
#    .venv with torch's CUDA build and triton from the package index (a bare machine); prints nvidia-smi and the
#    versions;
# 2. the CUDA-marked tests (tests/test_cuda.py: every Triton kernel against the engine and a float64 reference,
#    no host sync, counts on the device, torch.compile);
# 3. `seesaw bench --device cuda` on the binary 2D/3D, dense multi-class and long-tail workloads: each module in
#    training mode against the native loss and the bandwidth floor (CUDA events, peak memory);
# 4. a small `seesaw compare --device cuda --workers 2 --tune 2` on generated images, and the same through the
#    Python `compare` API where the package has it;
# 5. docs/bench_cuda.json and docs/bench_cuda.md, copied with every step's log into OUT_FOLDER (8 files).
#
# Every step runs even when an earlier one fails; the summary at the end (also OUT_FOLDER/summary.txt) lists each
# step's exit status, and the script exits with 1 when any step failed. Meant to take under 8 minutes on one
# H100 (on a bare machine most of it is the download of torch's CUDA wheels); each step has its own time limit.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ $# -ne 1 ]; then
    echo "usage: bash scripts/gpu_check.sh OUT_FOLDER" >&2
    exit 2
fi
out=$(mkdir -p "$1" && cd "$1" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if python3 -c 'import sys, torch, triton; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
    python=python3  # the machine's own CUDA torch and Triton; the package from src/
    export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
else
    python=.venv/bin/python
fi
summary=()
failed=0

step() {  # step NAME TIMEOUT_SECONDS COMMAND...: runs COMMAND (a function of this script too), its output also
          # in OUT_FOLDER/NAME.log
    local name=$1 limit=$2 status
    shift 2
    echo "=== $name: $*"
    local start=$SECONDS
    timeout "$limit" bash -c '"$@"' bash "$@" 2>&1 | tee "$out/$name.log"
    status=${PIPESTATUS[0]}
    summary+=("$name: exit $status in $((SECONDS - start)) s")
    [ "$status" -eq 0 ] || failed=1
    return "$status"
}

install() {
    local pip=("$python" -m pip install --quiet --disable-pip-version-check)
    if [ "$python" = python3 ]; then  # only what the image lacks of the cli extra and the CUDA tests
        [ -d .whl ] && pip+=(--no-index --find-links .whl)
        "${pip[@]}" $("$python" - <<'EOF'
import tomllib
extras = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]
runner = [r for r in extras["test"] if r.split(">")[0] in ("pytest", "pytest-timeout", "hypothesis")]
print(" ".join(extras["cli"] + runner))
EOF
        ) || return 1
    else
        if [ ! -x .venv/bin/python ]; then
            python3 -m venv .venv ||  # without Debian's python3-venv: virtualenv from the package index
                { python3 -m pip install --quiet virtualenv && python3 -m virtualenv .venv; } || return 1
        fi
        "${pip[@]}" --upgrade pip && "${pip[@]}" torch triton && "${pip[@]}" -e ".[test,cli]" || return 1
    fi
    nvidia-smi
    "$python" - <<'EOF'
import platform, sys
import torch, triton, seesaw_losses
print(f"python {platform.python_version()}, torch {torch.__version__} (CUDA {torch.version.cuda}), "
      f"triton {triton.__version__}, seesaw-losses {seesaw_losses.__version__}")
if not torch.cuda.is_available():
    sys.exit("torch sees no CUDA device (a CPU build of torch in .venv?): remove .venv and rerun")
print(f"device: {torch.cuda.get_device_name()}, capability {torch.cuda.get_device_capability()}")
EOF
}

make_images() {  # PNG image/mask pairs of the generated vessels task, as users' folders hold them
    "$python" - "$work/data" <<'EOF'
import sys
from pathlib import Path
import numpy as np
from PIL import Image
from seesaw_losses.experiments.data.generated import vessels

root = Path(sys.argv[1])
(root / "images").mkdir(parents=True)
(root / "masks").mkdir()
split = vessels(12, size=64, seed=2)
for name, image, mask in zip(split.names, split.images, split.masks):
    low, high = image.min(), image.max()
    Image.fromarray(((image[0] - low) / (high - low) * 255).astype(np.uint8)).save(root / "images" / f"{name}.png")
    Image.fromarray((mask * 255).astype(np.uint8)).save(root / "masks" / f"{name}.png")
EOF
}

compare_cli() {
    make_images &&
    "$python" -m seesaw_losses.cli compare --images "$work/data/images" --masks "$work/data/masks" --device cuda \
        --workers 2 --tune 2 --seeds 2 --loss bce --loss focal --epochs 2 --image-size 64 --no-progress \
        --out "$work/cli-report"
}

compare_api() {  # the Python API, where the package has it
    if ! "$python" -c "from seesaw_losses import compare" 2>/dev/null; then
        echo "seesaw_losses.compare is not in this version of the package: skipped"
        return 0
    fi
    cat > "$work/api_check.py" <<'EOF'
"""compare() on a small model of the user's own, on CUDA, with two worker processes."""
import sys
import torch
from seesaw_losses import compare


def train(criterion, run):
    torch.manual_seed(run.seed)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(256, 8, generator=gen)
    y = (x[:, :2].sum(1, keepdim=True) > 1.5).float()
    x, y = x.cuda(), y.cuda()
    model = torch.nn.Linear(8, 1).cuda()
    criterion = criterion.cuda()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.5)
    for step in range(30):
        optimiser.zero_grad()
        criterion(model(x), y).backward()
        optimiser.step()
    with torch.no_grad():
        predicted = (model(x) > 0).float()
        dice = 2 * (predicted * y).sum() / (predicted.sum() + y.sum()).clamp(min=1)
    return {"dice": float(dice)}


if __name__ == "__main__":
    result = compare(train, ["bce", "focal"], metric="dice", seeds=2, tune=2, workers=2, out=sys.argv[1],
                     progress=False)
    print(result)
EOF
    "$python" "$work/api_check.py" "$work/api-report"
}

export python work
export -f install make_images compare_cli compare_api
step install 360 install
step pytest-cuda 240 "$python" -m pytest -m cuda tests/test_cuda.py -p no:cacheprovider -q -ra
step bench-cuda 240 "$python" -m seesaw_losses.cli bench --device cuda --workload binary2d --workload binary3d \
    --workload dense --workload longtail --json docs/bench_cuda.json --markdown docs/bench_cuda.md
step compare-cli 240 compare_cli
step compare-api 180 compare_api
cp docs/bench_cuda.json docs/bench_cuda.md "$out"/ 2>/dev/null
printf '%s\n' "${summary[@]}" | tee "$out/summary.txt"
exit "$failed"
