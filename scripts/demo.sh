#!/usr/bin/env bash
# Sets up .venv and runs the main job: `seesaw demo` on the built-in datasets. Extra arguments go to `seesaw demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh cli
exec .venv/bin/seesaw demo "$@"
