#!/usr/bin/env bash
# Creates .venv (if missing) and installs metaval (editable) with its extras
# (METAVAL_EXTRAS, default dev) into it, at the exact versions of requirements/lock.txt.
# Re-installs only when setup.cfg, pyproject.toml, the lock or the extras changed.
# Source it or run it. Refresh the lock with scripts/lock.sh.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${METAVAL_VENV:-$repo/.venv}"
py="${PYTHON:-python3}"
lock="$repo/requirements/lock.txt"
if [ ! -x "$venv/bin/python" ]; then
  echo "[setup] creating virtual environment $venv"
  "$py" -m venv "$venv"
fi
stamp="$venv/.metaval-installed"
extras="${METAVAL_EXTRAS:-dev}"  # the test command adds ray for the Ray backend test
want="$( (cat "$repo/setup.cfg" "$repo/pyproject.toml" "$lock"; echo "$extras") | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] installing metaval and its locked dependencies (first run: a few minutes)"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -c "$lock" -e "$repo[$extras]"
  echo "$want" > "$stamp"
fi
