#!/usr/bin/env bash
# Refreshes requirements/lock.txt: the exact versions that a fresh install of metaval
# with every extra in setup.cfg resolves to today (setup.cfg keeps version ranges for
# users; the lock pins what the tests, the quickstart and the published tables use).
#
#   bash scripts/lock.sh            # a few minutes; then commit requirements/lock.txt
#
# It creates a throw-away virtual environment, installs ".[<all extras>]" from the
# ranges (the lock itself is not used), and freezes it without metaval itself.
# scripts/setup_env.sh re-installs .venv from the new lock on its next run.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="${PYTHON:-python3}"
lock="$repo/requirements/lock.txt"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
extras="$("$py" -c 'import configparser, sys
c = configparser.ConfigParser()
c.read(sys.argv[1])
print(",".join(c["options.extras_require"]))' "$repo/setup.cfg")"
echo "[lock] fresh environment, installing metaval[$extras] from setup.cfg's ranges"
"$py" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q --upgrade pip
"$tmp/venv/bin/python" -m pip install -q "$repo[$extras]"
mkdir -p "$(dirname "$lock")"
{
  echo "# Exact versions for metaval[$extras]; written by scripts/lock.sh (do not edit by hand)."
  echo "# Resolved $(date -u +%Y-%m-%d) for Python $("$tmp/venv/bin/python" -c 'import platform; print(platform.python_version())') on $(uname -m) Linux."
  echo "# Used as a constraints file: pip install -c requirements/lock.txt -e '.[dev]'"
  # --all: setuptools and wheel are pinned too (the install test builds a wheel with them).
  "$tmp/venv/bin/python" -m pip freeze --all --exclude metaval --exclude pip
} > "$lock.tmp"
mv "$lock.tmp" "$lock"
echo "[lock] wrote $lock ($(grep -vc '^#' "$lock") packages)"
