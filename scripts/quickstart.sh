#!/usr/bin/env bash
# The quickstart: sets up .venv if needed, then runs the main job end to end on the
# built-in default data (scikit-learn's digits): generate improvement labels,
# train the set-encoder value predictor, and print the Nutrition Facts label of a
# demo supplement it has never seen (JSON, HTML and PNG are written too).
# Finished steps are reused on a rerun (labels resume shard by shard).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export PATH="$PWD/.venv/bin:$PATH"
export WANDB_MODE=offline WANDB_SILENT=true
runs="${1:-runs}"
start=$(date +%s)
echo "[quickstart] 0/4 value a user-style supplement with the shipped zero-shot model (seconds)"
python - <<'PY'
import numpy as np
from sklearn.datasets import load_breast_cancer

import metaval

x, y = load_breast_cancer(return_X_y=True)  # raw arrays, as a user has them
i = np.random.default_rng(0).permutation(len(y))
base, supp, ev = i[:100], i[100:250], i[250:]
p = metaval.load_predictor()  # the zero-shot model shipped inside the package
facts = p.value((x[supp], y[supp]), base=(x[base], y[base]), eval=(x[ev], y[ev]))
print(facts.text())
noisy = p.value((x[supp], 1 - y[supp]), base=(x[base], y[base]), eval=(x[ev], y[ev]))
print(f"the same points with flipped labels: {noisy.targets[0].value:+.4f}")
PY
echo "[quickstart] 1/4 generate improvement labels (digits, linear learner, every supplement kind)"
metaval generate --config labels:quick --workdir "$runs/labels_quick"
echo "[quickstart] 2/4 train the value predictor on them"
metaval train --config predictor:quick --workdir "$runs/predictor_quick" \
  --config.labels.workdirs="('$runs/labels_quick',)"
echo "[quickstart] 3/4 value a clean and a label-noise demo supplement"
metaval value --config value:quick --workdir "$runs/value" \
  --config.predictor="$runs/predictor_quick"
metaval value --config value:quick --workdir "$runs/value_noise" \
  --config.predictor="$runs/predictor_quick" --config.supplement.kind=label_noise
echo "[quickstart] 4/4 write the Nutrition Facts label (JSON, HTML, PNG)"
metaval report --config value:quick --workdir "$runs/report" \
  --config.predictor="$runs/predictor_quick"
echo "[quickstart] done in $(( $(date +%s) - start ))s; Nutrition Facts in $runs/report"
