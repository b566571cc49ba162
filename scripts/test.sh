#!/usr/bin/env bash
# The test command: sets up .venv if needed, lints, builds the docs site (strict), runs
# the fast suite, then the slow end-to-end suite. Fails if either pytest run collects no
# tests (exit 5).
set -euo pipefail
cd "$(dirname "$0")/.."
METAVAL_EXTRAS=dev,ray,docs bash scripts/setup_env.sh
export PATH="$PWD/.venv/bin:$PATH"
export WANDB_MODE=offline WANDB_SILENT=true
echo "[test] lint: ruff format --check and ruff check"
ruff format --check metaval scripts tests docs
ruff check metaval scripts tests docs
echo "[test] docs: mkdocs build --strict"
bash scripts/build_docs.sh build/docs
run_pytest() {
  set +e
  python -m pytest -q "$@"
  rc=$?
  set -e
  if [ "$rc" -eq 5 ]; then echo "[test] pytest collected no tests for: $*" >&2; exit 1; fi
  if [ "$rc" -ne 0 ]; then exit "$rc"; fi
}
echo "[test] fast suite"
run_pytest
echo "[test] slow end-to-end suite"
run_pytest -m slow
