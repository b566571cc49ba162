#!/usr/bin/env bash
# Builds the docs site strictly: a broken link, a missing include or a docstring that
# names a parameter the function does not have fails the build.
# Usage: bash scripts/build_docs.sh [OUT_DIR]   (default build/docs)
# Needs the `docs` extra (METAVAL_EXTRAS=...,docs bash scripts/setup_env.sh); installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-build/docs}"
# mkdocs 1.x prints a banner about its planned 2.0 on every build; the extra pins <2.
export DISABLE_MKDOCS_2_WARNING=true
python -m mkdocs build --strict -d "$out"
echo "[docs] site written to $out"
