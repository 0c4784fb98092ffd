#!/usr/bin/env bash
# Creates .venv (once) and installs the package with the given extras into it.
# Usage: scripts/setup.sh EXTRAS   (e.g. "cli" or "test")
set -euo pipefail
cd "$(dirname "$0")/.."
extras=${1:-cli}
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
venv_python=.venv/bin/python
# A plain `torch` requirement would pull a multi-GB CUDA build: install the CPU 2.13.0 wheel first when no
# torch is present. A torch that is already there (CUDA or CPU, >= 2.4) is kept.
if ! "$venv_python" -c "import torch" >/dev/null 2>&1; then
    "$venv_python" -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
fi
"$venv_python" -m pip install --quiet --disable-pip-version-check -e ".[${extras}]"
