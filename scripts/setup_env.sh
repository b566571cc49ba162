#!/usr/bin/env bash
# Creates .venv (if missing) and installs metaval with its extras (METAVAL_EXTRAS,
# default dev) into it.
# Re-installs only when setup.cfg or pyproject.toml changed. Source it or run it.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${METAVAL_VENV:-$repo/.venv}"
py="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  echo "[setup] creating virtual environment $venv"
  "$py" -m venv "$venv"
fi
stamp="$venv/.metaval-installed"
extras="${METAVAL_EXTRAS:-dev}"  # the test command adds ray for the Ray backend test
want="$( (cat "$repo/setup.cfg" "$repo/pyproject.toml"; echo "$extras") | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] installing metaval and its dependencies (first run: a few minutes)"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -e "$repo[$extras]"
  echo "$want" > "$stamp"
fi
