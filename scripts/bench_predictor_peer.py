"""pyDVL's data utility learning next to the zero-shot value model, task by real task.

Usage (from the main environment; the peer itself runs in ``.venv-bench``):
  python scripts/bench_predictor_peer.py [--labels runs/zeroshot/real_labels]
      [--folds 5] [--epochs 60] [--out runs/bench]

pyDVL (Wang et al. 2022, "data utility learning") learns ``u(S)`` with a Deep Sets
network over the points of S. It cannot move across tasks of different widths, so
it is trained inside each real task: the task's pairs are cut into K folds (seeded,
by pair, so no label of a test pair enters training), and one ``DeepSetUtilityModel``
per (learner, fold) is fitted on the other folds' pairs and predicts the held-out
ones. Each element of a set is an S point standardised by its base's statistics
(``metaval.zeroshot.features.Context.transform``) concatenated with its one-hot
label (an extra slot for labels B and T never use); the target is the retraining
gain of that learner, standardised on the training pairs. pyDVL has no notion of a
base set: its utility is of S alone, so the base enters only through the
standardisation. The zero-shot model shipped in the package
(``metaval.load_predictor()``), trained on generated tasks only, is scored on the
same pairs. Both are scored as E2 scores everything: the mean within-group Spearman
correlation (group: task and learner) over the rows of
``metaval.zeroshot.train.task_rows``, pooled over the held-out folds, and per fold.

Stage 1 (this environment) exports the sets and folds to an ``.npz``; stage 2 runs
``.venv-bench/bin/python scripts/bench_predictor_peer.py --peer <npz>`` (torch +
pyDVL 0.10, never a runtime dependency of metaval); stage 3 scores and writes
``runs/bench/zeroshot_peer.{json,md}``, which E2 (``metaval experiment e2``) reads.

References:
  Wang, Yang and Jia, "Improving cooperative game theory-based data valuation via
  data utility learning", 2022 (arXiv:2107.06336).
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import time

import numpy as np

NOTE = (
  "pyDVL utility learning: pyDVL 0.10 DeepSetUtilityModel (Wang et al. 2022) trained "
  "inside each real task by K-fold over its pairs (one model per learner and fold; "
  "elements = S's points standardised by B's statistics | one-hot label; target = the "
  "gain, standardised). Unlike the zero-shot model it has seen the task's other pairs "
  "and labels; it has no notion of a base set (its utility is of S alone)."
)

# ----------------------------------------------------------------------------
# Stage 2: inside .venv-bench (torch + pydvl).


def peer(npz_path: str, out_path: str, epochs: int, batch: int, threads: int, seed: int) -> None:
  """Fits and predicts every (task, learner, fold) of the exported ``npz``."""
  import torch
  from pydvl.valuation.dataset import Dataset
  from pydvl.valuation.types import Sample
  from pydvl.valuation.utility.deepset import DeepSetUtilityModel

  torch.set_num_threads(threads)
  z = np.load(npz_path, allow_pickle=False)
  preds = {}
  for n, fit in enumerate(sorted(k[: -len("__train")] for k in z.files if k.endswith("__train"))):
    task = fit.split("__")[0]
    points, offsets = z[task + "__points"], z[task + "__offsets"]
    data = Dataset(points, np.zeros(len(points)))
    sets = [Sample(None, np.arange(offsets[i], offsets[i + 1])) for i in range(len(offsets) - 1)]
    tr, te, target = z[fit + "__train"], z[fit + "__test"], z[fit + "__target"]
    mean, sd = float(target.mean()), float(target.std()) + 1e-8
    torch.manual_seed(seed + n)
    model = DeepSetUtilityModel(
      data, phi_hidden_dim=64, phi_output_dim=32, rho_hidden_dim=64, lr=1e-3,
      lr_step_size=max(1, epochs // 2), lr_gamma=0.3, batch_size=batch, num_epochs=epochs,
    )  # fmt: skip
    t0 = time.perf_counter()
    model.fit({sets[i]: (float(y) - mean) / sd for i, y in zip(tr, target)})
    preds[fit + "__fit_s"] = np.array(time.perf_counter() - t0)
    preds[fit] = np.asarray(model.predict([sets[i] for i in te])).reshape(-1) * sd + mean
    # its fit on its own training pairs: tells under-fitting from failing to generalise
    preds[fit + "__train_pred"] = np.asarray(model.predict([sets[i] for i in tr])).reshape(-1)
    print(f"[peer] {fit}: fit {float(preds[fit + '__fit_s']):.1f}s on {len(tr)} pairs", flush=True)
  np.savez(out_path, **preds)


# ----------------------------------------------------------------------------
# Stages 1 and 3: the main environment.


def pair_folds(n_pairs: int, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
  """``k`` folds over ``n_pairs`` pairs: ``[(train, test)]``, each test set one shuffled slice.

  Args:
    n_pairs: pairs of the task.
    k: folds (2 <= k <= n_pairs).
    seed: seed of the shuffle.

  Returns:
    Sorted pair indices per fold; the test sets partition the pairs.
  """
  from metaval.errors import MetavalError

  if not 2 <= k <= n_pairs:
    raise MetavalError(f"need 2 <= folds <= pairs; got {k} folds for {n_pairs} pairs")
  order = np.random.default_rng(seed).permutation(n_pairs)
  out = []
  for test in np.array_split(order, k):
    out.append((np.setdiff1d(order, test), np.sort(test)))
  return out


def set_elements(tl) -> tuple[np.ndarray, np.ndarray]:
  """Every S point of a task as a pyDVL element: ``(points [N, d + C], offsets [P + 1])``.

  Args:
    tl: a ``metaval.zeroshot.labels.TaskLabels``.

  Returns:
    Points standardised by their base (``Context.transform``) next to their one-hot
    label (``Context.labels``: the task's classes, then one slot for unseen labels);
    pair ``i``'s points are rows ``offsets[i]:offsets[i + 1]``.
  """
  from metaval.zeroshot import features as Z

  ctxs = [Z.Context(b, (tl.x_eval, tl.y_eval), seed=tl.task_id) for b in tl.bases]
  width = max(c.k for c in ctxs)
  points, offsets = [], [0]
  for i, (xs, ys) in enumerate(tl.supp):
    ctx = ctxs[tl.base_of[i]]
    onehot = np.zeros((len(ys), width), np.float32)
    onehot[np.arange(len(ys)), ctx.labels(ys)] = 1.0
    points.append(np.concatenate([ctx.transform(xs).astype(np.float32), onehot], 1))
    offsets.append(offsets[-1] + len(ys))
  return np.concatenate(points), np.asarray(offsets)


def export(labels: list, k: int, seed: int) -> tuple[dict, dict]:
  """The arrays stage 2 reads and the folds of each task.

  Args:
    labels: ``TaskLabels`` of the real tasks.
    k: folds per task.
    seed: fold seed (task ``t`` uses ``seed + t``).

  Returns:
    ``(arrays, folds)``: ``arrays`` for ``np.savez`` (per task ``t<t>__points`` and
    ``__offsets``; per fit ``t<t>__l<j>__f<f>__train``, ``__target`` and ``__test``),
    ``folds[t]`` the ``pair_folds`` of task ``t``.
  """
  arrays, folds = {}, {}
  for t, tl in enumerate(labels):
    arrays[f"t{t}__points"], arrays[f"t{t}__offsets"] = set_elements(tl)
    folds[t] = pair_folds(len(tl.supp), k, seed + t)
    for j in range(len(tl.learners)):
      for f, (tr, te) in enumerate(folds[t]):
        key = f"t{t}__l{j}__f{f}"
        arrays[key + "__train"], arrays[key + "__test"] = tr, te
        arrays[key + "__target"] = tl.gain[tr, j]
  return arrays, folds


def row_index(tl) -> tuple[np.ndarray, np.ndarray]:
  """``(pair, learner)`` of each row of ``task_rows(tl)``."""
  from metaval.zeroshot import evaluate as E

  pair = E._pair_index(tl)
  return pair, np.tile(np.arange(len(tl.learners)), len(pair) // len(tl.learners))


def out_of_fold(preds, t: int, folds: list, n_pairs: int, n_learners: int) -> np.ndarray:
  """``[P, L]`` the held-out prediction of every (pair, learner) of task ``t``."""
  oof = np.full((n_pairs, n_learners), np.nan)
  for j in range(n_learners):
    for f, (_, te) in enumerate(folds):
      oof[te, j] = preds[f"t{t}__l{j}__f{f}"]
  return oof


def scores(rows, pair: np.ndarray, estimates: dict, folds: list) -> dict:
  """Within-group Spearman of each estimate (``[R]`` per row) pooled and per fold.

  Args:
    rows: the task's ``Table`` (``task_rows``).
    pair: ``[R]`` the pair of each row.
    estimates: ``{name: [R] estimate}``.
    folds: the task's ``pair_folds``.

  Returns:
    ``{name: {"spearman": pooled over held-out folds, "per_fold": [...], "fold_mean"}}``.
  """
  from metaval.zeroshot import train as T

  out = {}
  for name, est in estimates.items():
    per_fold = []
    for _, te in folds:
      m = np.isin(pair, te)
      per_fold.append(T.group_spearman(est[m], rows.gain[m], rows.group[m]))
    out[name] = {
      "spearman": T.group_spearman(est, rows.gain, rows.group),
      "per_fold": per_fold,
      "fold_mean": float(np.nanmean(per_fold)) if not np.all(np.isnan(per_fold)) else np.nan,
    }
  return out


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--peer", default="", help=argparse.SUPPRESS)
  ap.add_argument("--peer-out", default="", help=argparse.SUPPRESS)
  ap.add_argument("--labels", default="runs/zeroshot/real_labels", help="TaskLabels pickles")
  ap.add_argument("--folds", type=int, default=5)
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--epochs", type=int, default=60)
  ap.add_argument("--batch", type=int, default=8)
  ap.add_argument("--threads", type=int, default=1, help="torch threads of the peer")
  ap.add_argument("--out", default="runs/bench")
  ap.add_argument(
    "--bench-venv", default=".venv-bench", help="the peer's environment (setup_bench_env.sh)"
  )
  args = ap.parse_args()
  if args.peer:
    peer(args.peer, args.peer_out, args.epochs, args.batch, args.threads, args.seed)
    return

  from metaval.util import io as uio
  from metaval.util.env import machine
  from metaval.zeroshot import labels as L
  from metaval.zeroshot import train as T
  from metaval.zeroshot.predictor import ZeroShotPredictor

  if not os.path.isfile(os.path.join(args.bench_venv, ".ready")):
    sys.exit(f"the benchmark environment {args.bench_venv} is not ready (setup_bench_env.sh)")
  labels = L.load_dir(args.labels)
  files = sorted(glob.glob(os.path.join(args.labels, "task_*.pkl")))  # load_dir's order
  if not labels:
    sys.exit(f"no task_*.pkl labels under {args.labels}")
  load_before = os.getloadavg()
  arrays, folds = export(labels, args.folds, args.seed)
  os.makedirs(args.out, exist_ok=True)
  npz = uio.save_npz(os.path.join(args.out, "zeroshot_peer_sets.npz"), **arrays)
  out = os.path.join(args.out, "zeroshot_peer_predictions.npz")
  cmd = [os.path.join(args.bench_venv, "bin", "python"), __file__, "--peer", npz]
  cmd += ["--peer-out", out, "--epochs", str(args.epochs), "--batch", str(args.batch)]
  cmd += ["--threads", str(args.threads), "--seed", str(args.seed)]
  t0 = time.perf_counter()
  subprocess.run(cmd, check=True)
  peer_s = time.perf_counter() - t0
  preds = dict(np.load(out))
  zs = ZeroShotPredictor()
  tasks, table = {}, []
  for t, tl in enumerate(labels):
    rows = T.task_rows(tl)
    pair, learner = row_index(tl)
    oof = out_of_fold(preds, t, folds[t], len(tl.supp), len(tl.learners))
    zs_rows = zs.predict(rows.x)[0]
    sc = scores(rows, pair, {"pydvl": oof[pair, learner], "zeroshot": zs_rows}, folds[t])
    fit_s = [float(v) for k, v in preds.items() if k.startswith(f"t{t}__") and k.endswith("fit_s")]
    train_rho = [
      T.group_spearman(v, arrays[k[: -len("__train_pred")] + "__target"], np.zeros(len(v)))
      for k, v in preds.items()
      if k.startswith(f"t{t}__") and k.endswith("__train_pred")
    ]
    file = os.path.basename(files[t])
    tasks[tl.name] = {
      "labels_file": file,
      "labels_sha256": uio.file_sha256(os.path.join(args.labels, file)),
      "pairs": len(tl.supp),
      "learners": [s["name"] for s in tl.learners],
      "rows": len(rows.gain),
      "train_pairs_per_fold": [len(tr) for tr, _ in folds[t]],
      "pydvl": sc["pydvl"],
      "zeroshot": sc["zeroshot"],
      "ceiling": T.group_spearman(rows.split_a, rows.split_b, rows.group),
      "pydvl_train_spearman": float(np.nanmean(train_rho)),
      "pydvl_fit_s": {"total": sum(fit_s), "per_fit_mean": float(np.mean(fit_s))},
    }
    table.append(
      {
        "task": tl.name,
        "pairs × learners": len(rows.gain),
        "train pairs per fold": "/".join(str(len(tr)) for tr, _ in folds[t]),
        "pyDVL (in-task K-fold)": sc["pydvl"]["spearman"],
        "zero-shot model": sc["zeroshot"]["spearman"],
        "pyDVL fold mean": sc["pydvl"]["fold_mean"],
        "zero-shot fold mean": sc["zeroshot"]["fold_mean"],
        "ceiling": tasks[tl.name]["ceiling"],
        "pyDVL on its training pairs": tasks[tl.name]["pydvl_train_spearman"],
        "pyDVL fit s (all folds)": sum(fit_s),
      }
    )
  settings = {
    k: getattr(args, k) for k in ("labels", "folds", "seed", "epochs", "batch", "threads")
  }
  command = "python scripts/bench_predictor_peer.py " + " ".join(
    f"--{k} {v}" for k, v in settings.items()
  )
  result = {
    "note": NOTE,
    "command": command,
    "settings": settings,
    "zeroshot_model": zs.path,
    "peer_seconds": peer_s,
    "load_average": {"before": load_before, "after": os.getloadavg()},
    "machine": machine(),
    "tasks": tasks,
  }
  uio.write_json(os.path.join(args.out, "zeroshot_peer.json"), result)
  m = result["machine"]
  md = [
    "# pyDVL utility learning (DeepSets, in-task K-fold) vs the zero-shot value model",
    "",
    NOTE,
    "",
    f"Mean within-group Spearman (group: task and learner) over {args.folds} held-out "
    "folds, pooled (fold mean: the mean of each fold's own Spearman).",
    "",
    uio.markdown_table(table),
    "",
    f"`{command}`; peer {peer_s:.0f} s in all; {m['cpu']}, {m['cores']} cores, load "
    f"{load_before[0]:.1f} before / {result['load_average']['after'][0]:.1f} after.",
  ]
  uio.write_text(os.path.join(args.out, "zeroshot_peer.md"), "\n".join(md) + "\n")
  print("\n".join(md))


if __name__ == "__main__":
  main()
