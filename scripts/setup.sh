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
# The tests inside MMDetection need mmcv's compiled ops, of which PyPI has no wheel for this torch: with the test
# extras, a wheel built for torch 2.13.0 / Python 3.11 in ../shared/wheels (see its README) goes into the same pip
# call as the mmdet extra, so pip never builds mmcv from source. Without one, those tests skip and say why.
mmcv_wheel=$(ls ../shared/wheels/mmcv-2.1.0-cp311-*.whl 2>/dev/null | head -n 1 || true)
if [[ ",${extras}," == *",test,"* && -n "$mmcv_wheel" ]] && "$venv_python" -c "import sys, torch
sys.exit(sys.version_info[:2] != (3, 11) or torch.__version__.split('+')[0] != '2.13.0')" >/dev/null 2>&1; then
    extras="${extras},mmdet"
else
    mmcv_wheel=""
fi
"$venv_python" -m pip install --quiet --disable-pip-version-check ${mmcv_wheel:+"$mmcv_wheel"} -e ".[${extras}]"
