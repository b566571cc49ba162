"""The closest peer on the same labels: pyDVL's data utility learning with DeepSets.

Usage (from the main environment; the peer itself runs in ``.venv-bench``):
  python scripts/bench_predictor_peer.py [--config predictor:quick]
      [--eval runs/evaluate_quick]

pyDVL (Wang et al. 2022, "data utility learning") learns ``u(S)`` with a Deep Sets
network over the raw inputs of the points in S. Here each element is the point's
input concatenated with its one-hot (as-trained) label, so noisy labels are
visible to it, and the target is our label: the improvement of B ∪ S over B. pyDVL
has no notion of a base set (its utility is of S alone), which is the main
difference from metaval's value model. It is trained on exactly the training pairs
of ``metaval evaluate``'s ``pairs`` split and leave-one-kind-out folds, and scored
with ``protocol.agreement`` next to the predictor's figures from ``eval.json``.

Stage 1 (this environment) exports the pairs to an ``.npz``; stage 2 runs
``.venv-bench/bin/python scripts/bench_predictor_peer.py --peer <npz>`` (torch +
pyDVL 0.10, never a runtime dependency of metaval); stage 3 scores. Writes
``runs/bench/predictor_peer.{json,md}``.

References:
  Wang, Yang and Jia, "Improving cooperative game theory-based data valuation via
  data utility learning", 2022 (arXiv:2107.06336).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time

import numpy as np

# ----------------------------------------------------------------------------
# Stage 2: inside .venv-bench (torch + pydvl).


def peer(npz_path: str, out_path: str, epochs: int) -> None:
  import torch
  from pydvl.valuation.dataset import Dataset
  from pydvl.valuation.types import Sample
  from pydvl.valuation.utility.deepset import DeepSetUtilityModel

  torch.manual_seed(0)
  torch.set_num_threads(2)
  z = np.load(npz_path, allow_pickle=False)
  x_all = z["points"]  # [N, d + C] every S point of every pair, input | one-hot label
  offsets, y = z["offsets"], z["label"]  # [P + 1], [P]
  data = Dataset(x_all, np.zeros(len(x_all)))
  samples = [Sample(None, np.arange(offsets[i], offsets[i + 1])) for i in range(len(y))]
  preds = {}
  for fold in [k for k in z.files if k.startswith("train__")]:
    name = fold[len("train__") :]
    tr, te = z[fold], z["test__" + name]
    model = DeepSetUtilityModel(
      data, phi_hidden_dim=64, phi_output_dim=32, rho_hidden_dim=64, lr=1e-3,
      lr_step_size=max(1, epochs // 2), lr_gamma=0.3, batch_size=64, num_epochs=epochs,
    )  # fmt: skip
    # pyDVL keys samples by their subset; identical subsets would collide, so
    # repeated subsets keep their mean target (as pyDVL's own cache would).
    t0 = time.perf_counter()
    model.fit({samples[i]: float(y[i]) for i in tr})
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    p = np.asarray(model.predict([samples[i] for i in te])).reshape(-1)
    preds[name] = p
    preds[name + "__fit_s"] = np.array(fit_s)
    preds[name + "__predict_s"] = np.array(time.perf_counter() - t0)
    print(f"[peer] {name}: fit {fit_s:.1f}s on {len(tr)} pairs, predicted {len(te)}", flush=True)
  np.savez(out_path, **preds)


# ----------------------------------------------------------------------------
# Stages 1 and 3: the main environment.


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--peer", default="", help=argparse.SUPPRESS)
  ap.add_argument("--peer-out", default="", help=argparse.SUPPRESS)
  ap.add_argument("--config", default="predictor:quick")
  ap.add_argument("--eval", default="runs/evaluate_quick", help="metaval evaluate workdir")
  ap.add_argument("--epochs", type=int, default=30)
  ap.add_argument("--out", default="runs/bench")
  ap.add_argument(
    "--bench-venv", default=".venv-bench", help="the peer's environment (setup_bench_env.sh)"
  )
  ap.add_argument("--max-set", type=int, default=64, help="S points per pair fed to the peer")
  ap.add_argument("--no-kinds", action="store_true", help="only the unseen-pairs split")
  args = ap.parse_args()
  if args.peer:
    peer(args.peer, args.peer_out, args.epochs)
    return

  from metaval import protocol
  from metaval.configlib import load
  from metaval.data import get_task
  from metaval.predictor import features as F
  from metaval.predictor import train as T
  from metaval.util import io as uio

  if not os.path.isfile(os.path.join(args.bench_venv, ".ready")):
    sys.exit(f"the benchmark environment {args.bench_venv} is not ready (setup_bench_env.sh)")
  cfg = load(args.config)
  label_sets = T.load_label_sets(cfg)
  targets = T.choose_targets(label_sets, tuple(cfg.targets))
  t0_name = targets[0]
  # The same pair order as metaval evaluate (label sets in order, pairs in order).
  points, offsets, label, kind = [], [0], [], []
  for ls in label_sets:
    task = get_task(ls.task, seed=ls.task_seed)
    view = F.task_view(task)
    for i in range(len(ls)):
      xs = F.embed_inputs(view, ls.supp_x[i])
      ys = np.asarray(ls.supp_y[i], np.int64)
      sub = np.random.default_rng(int(ls.pair_id[i])).permutation(len(ys))[: args.max_set]
      onehot = np.zeros((len(sub), F.MAX_CLASSES), np.float32)
      onehot[np.arange(len(sub)), ys[sub]] = 1.0
      points.append(np.concatenate([xs[sub], onehot], 1))
      offsets.append(offsets[-1] + len(sub))
      label.append(ls.improvement[i, ls.metric_index(t0_name)])
      kind.append(str(ls.kind[i]))
  label, kind = np.asarray(label), np.asarray(kind)
  n = len(label)
  folds = {}
  tr, va, te = T.random_split(n, cfg.train.val_frac, cfg.train.test_frac, cfg.seed)
  folds["pairs"] = (np.concatenate([tr, va]), te)
  kinds = [] if args.no_kinds else (list(cfg.eval.kinds) or sorted(set(kind)))
  for kd in kinds:
    folds[f"kind_{kd}"] = (np.flatnonzero(kind != kd), np.flatnonzero(kind == kd))
  os.makedirs(args.out, exist_ok=True)
  npz = os.path.join(args.out, "peer_pairs.npz")
  arrays = {"points": np.concatenate(points), "offsets": np.asarray(offsets), "label": label}
  for name, (a, b) in folds.items():
    arrays[f"train__{name}"], arrays[f"test__{name}"] = a, b
  np.savez(npz, **arrays)
  out = os.path.join(args.out, "peer_predictions.npz")
  t0 = time.perf_counter()
  subprocess.run(
    [
      os.path.join(args.bench_venv, "bin", "python"),
      __file__,
      "--peer",
      npz,
      "--peer-out",
      out,
      "--epochs",
      str(args.epochs),
    ],
    check=True,
  )
  peer_s = time.perf_counter() - t0
  pr = np.load(out)
  ev_path = os.path.join(args.eval, "eval.json")
  ev = json.load(open(ev_path)) if os.path.isfile(ev_path) else {"splits": {}}
  rows = {}
  a = protocol.agreement(pr["pairs"], label[folds["pairs"][1]])
  rows["pairs"] = {
    "peer": a,
    "predictor": ev["splits"].get("pairs", {}).get("scores", {}).get(t0_name, {}).get("predictor"),
  }
  if kinds:
    idx = np.concatenate([folds[f"kind_{kd}"][1] for kd in kinds])
    est = np.concatenate([pr[f"kind_{kd}"] for kd in kinds])
    rows["kind"] = {
      "peer": protocol.agreement(est, label[idx]),
      "predictor": ev["splits"].get("kind", {}).get("scores", {}).get(t0_name, {}).get("predictor"),
    }
  metrics = ("spearman", "pearson", "mae", "sign_acc", "topk_precision")
  md = [
    f"pyDVL DeepSetUtilityModel (data utility learning) vs metaval predictor, {t0_name}, "
    f"{n} pairs; {os.cpu_count()} CPUs, {datetime.date.today()}; peer total {peer_s:.0f}s",
    "",
    "| split | estimator | " + " | ".join(metrics) + " |",
    "|---|---|" + "---:|" * len(metrics),
  ]
  for split, r in rows.items():
    for name in ("predictor", "peer"):
      if r[name]:
        md.append(
          f"| {split} | {name} | " + " | ".join(f"{r[name][m]:.3f}" for m in metrics) + " |"
        )
  peer_json = {"rows": rows, "peer_seconds": peer_s, "epochs": args.epochs}
  uio.write_text(os.path.join(args.out, "predictor_peer.json"), json.dumps(peer_json, indent=2))
  uio.write_text(os.path.join(args.out, "predictor_peer.md"), "\n".join(md) + "\n")
  print("\n".join(md))


if __name__ == "__main__":
  main()
