#!/usr/bin/env bash
# Builds .venv-bench: pyDVL and OpenDataVal for scripts/bench_baselines.py (never a
# runtime dependency of metaval). Idempotent: exits early when .venv-bench/.ready
# exists (delete it to rebuild). torch is installed first from the local CPU wheel so
# nothing pulls a CUDA build; OpenDataVal goes in with --no-deps because its pins
# cannot coexist with that wheel on Python 3.11 (requirements-bench.txt says which).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-bench
if [ -f "$VENV/.ready" ]; then
  echo "[bench-env] $VENV is ready"
  exit 0
fi
python3 -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip wheel
$PIP install -q torch==2.13.0
$PIP install -q -r requirements-bench.txt
$PIP install -q --no-deps opendataval==1.3.0
# A CUDA torchvision wheel pulled in by something else would break OpenDataVal's import.
$PIP uninstall -y -q torchvision >/dev/null 2>&1 || true
# Smoke test: both peers import (with the torchvision stub) and torch is the CPU build.
"$VENV/bin/python" scripts/bench_baselines.py --peer-smoke
touch "$VENV/.ready"
echo "[bench-env] $VENV ready"
