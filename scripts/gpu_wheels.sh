#!/usr/bin/env bash
# Wheels for a GPU machine that cannot reach the package index, downloaded here into .whl/ (ignored by git) so
# that they travel with the working tree; scripts/gpu_check.sh installs from .whl/ without an index.
#
#   bash scripts/gpu_wheels.sh [PYTHON_VERSION]      # default 3.12, the GPU image's python3
#
# GPU images ship PyTorch, Triton, NumPy, SciPy, scikit-image, matplotlib, torchmetrics, rich, Pillow, PyYAML,
# tqdm and pytest (with pytest-timeout and hypothesis); of the cli extra's requirements they lack Optuna and
# what Optuna needs beyond them. gpu_check.sh asks pip for the whole cli extra, so a package missing from this
# list fails its install step by name.
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-3.12}
python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version "$version" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl optuna alembic sqlalchemy colorlog mako
ls .whl
