#!/usr/bin/env bash
# The quickstart: sets up .venv if needed and runs the main job end to end on the
# built-in default data (digits), in a few minutes on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export PATH="$PWD/.venv/bin:$PATH"
export WANDB_MODE=offline WANDB_SILENT=true
work="${1:-runs/quickstart}"
echo "[quickstart] 1/1 train a batch of learners on random subsets of digits"
metaval fit --config configs/fit.py:quick --workdir "$work/fit"
echo "[quickstart] done; outputs under $work"
