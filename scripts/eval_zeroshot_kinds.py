"""The shipped zero-shot model on supplement kinds that no part of metaval generates.

  python scripts/eval_zeroshot_kinds.py            # wine, breast_cancer, digits: ~3 min here
  python scripts/eval_zeroshot_kinds.py --quick --out /tmp/kinds

The prior the model learnt from, E2 and ``eval_zeroshot_real.py`` all draw supplements
from the registered kinds (``metaval.data.samplers``). This asks about kinds none of
them makes, each built here from raw arrays as a user or a seller would:

* ``clean`` / ``clean_small``: genuine points of the task (60 / 10), the reference;
* ``synthetic_smote``: points on segments between a point of B and one of its five
  nearest same-class neighbours (SMOTE's recipe): manufactured from B, nothing new;
* ``synthetic_gaussian``: draws from per-class Gaussians fitted to B (mean and
  spread per feature): manufactured from B, nothing new;
* ``pseudo_labels``: genuine inputs labelled by a logistic regression fitted on B
  (new inputs, no new label information: cheap weak labels);
* ``boundary_flips``: the genuine points nearest that classifier's boundary,
  labelled with a class they do not have (label noise placed where it hurts most);
* ``rarest_class_only``: genuine points of B's rarest class only.

Per real task (scikit-learn's bundled sets, raw inputs) and draw, B is a random base
(40 points for wine, 100 otherwise), the evaluation set a third of the rest, and the
supplements come from what is left. The truth is the default learner (MLP-32)
retrained on B and on B ∪ S with ``--seeds`` paired seeds (``metaval.pairs.label``);
the model is asked once per draw with ``rank()``. Reported: per kind, the mean truth
and prediction, how often the interval holds the truth, the sign agreement where the
truth is clear (beyond two standard errors), and how often the kind is valued below
``clean`` where retraining puts it more than ``CLEAR`` below; per task, the mean
within-draw Spearman over the kinds (with the ceiling's caveat: on breast_cancer most
kinds are worth about nothing, so their order is noise). Writes JSON and markdown
(``--out``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from scipy.stats import spearmanr
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import metaval
from metaval.audit.goodhart.attacks import manufactured
from metaval.data import from_arrays
from metaval.learners.models import LearnerSpec
from metaval.pairs.labels import label
from metaval.pairs.pairs import Pairs
from metaval.util.env import machine
from metaval.util.io import markdown_table, write_json, write_text

TASKS = {"wine": load_wine, "breast_cancer": load_breast_cancer, "digits": load_digits}
KINDS = (
  "clean",
  "clean_small",
  "synthetic_smote",
  "synthetic_gaussian",
  "pseudo_labels",
  "boundary_flips",
  "rarest_class_only",
)
SIZE = 60  # points per supplement (clean_small: 10)
CLEAR = 0.02  # retraining puts a kind this far below clean: the model should too


def supplements(rng, xb, yb, xp, yp) -> dict:
  """Every kind's ``(x, y)`` from B ``(xb, yb)`` and the points left ``(xp, yp)``."""
  out = {}
  pick = rng.choice(len(yp), min(SIZE, len(yp)), replace=False)
  out["clean"] = (xp[pick], yp[pick])
  small = rng.choice(len(yp), 10, replace=False)
  out["clean_small"] = (xp[small], yp[small])
  out["synthetic_smote"] = manufactured(xb, yb, SIZE, rng)  # SMOTE's recipe on B
  # Per-class Gaussians of B, classes in B's proportions.
  classes, counts = np.unique(yb, return_counts=True)
  ys = rng.choice(classes, SIZE, p=counts / counts.sum())
  mu = np.stack([xb[yb == c].mean(0) for c in classes])
  sd = np.stack([xb[yb == c].std(0) for c in classes])
  at = np.searchsorted(classes, ys)
  out["synthetic_gaussian"] = (mu[at] + sd[at] * rng.standard_normal((SIZE, xb.shape[1])), ys)
  # B's own classifier: its labels on genuine inputs, and its least certain points.
  scale = StandardScaler().fit(xb)
  clf = LogisticRegression(max_iter=5000).fit(scale.transform(xb), yb)
  out["pseudo_labels"] = (xp[pick], clf.predict(scale.transform(xp[pick])))
  prob = clf.predict_proba(scale.transform(xp))
  top2 = np.argsort(prob, 1)[:, -2:]  # [runner-up, best]
  margin = prob[np.arange(len(yp)), top2[:, 1]] - prob[np.arange(len(yp)), top2[:, 0]]
  k = np.argsort(margin, kind="stable")[:SIZE]
  runner, best = clf.classes_[top2[k, 0]], clf.classes_[top2[k, 1]]
  out["boundary_flips"] = (xp[k], np.where(runner == yp[k], best, runner))  # never the truth
  rare = classes[np.argmin(counts)]
  r = np.flatnonzero(yp == rare)
  r = r[rng.permutation(len(r))[:SIZE]]
  out["rarest_class_only"] = (xp[r], yp[r])
  return out


def main(argv=None) -> dict:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
  ap.add_argument("--draws", type=int, default=3, help="bases drawn per task")
  ap.add_argument("--seeds", type=int, default=8, help="paired seeds of the retraining truth")
  ap.add_argument("--model", default=None, help="a model folder (default: the shipped one)")
  ap.add_argument("--quick", action="store_true", help="wine, one draw, 2 seeds")
  ap.add_argument("--out", default="experiments/results/e2_predictor/unlisted_kinds")
  a = ap.parse_args(argv)
  if a.quick:
    a.tasks, a.draws, a.seeds = ["wine"], 1, 2
  t0 = time.perf_counter()
  predictor = metaval.load_predictor(a.model)
  spec = LearnerSpec(family="mlp", width=32, steps=150)  # the model's default learner
  cases, rhos = [], {}
  for name in a.tasks:
    x, y = TASKS[name](return_X_y=True)
    rhos[name] = []
    for draw in range(a.draws):
      rng = np.random.default_rng([100, draw])
      order = rng.permutation(len(y))
      n_b, n_t = (40 if name == "wine" else 100), len(y) // 3
      b, t, rest = order[:n_b], order[n_b : n_b + n_t], order[n_b + n_t :]
      sets = supplements(rng, x[b], y[b], x[rest], y[rest])
      task = from_arrays(x[b], y[b], x_test=x[t], y_test=y[t], name=name)
      pairs = Pairs.from_lists(
        [np.arange(n_b)] * len(KINDS),
        [np.full(len(sets[k][1]), -1) for k in KINDS],
        [task.encode(sets[k][0]).astype(np.float32) for k in KINDS],
        [task.encode_labels(sets[k][1]) for k in KINDS],
        list(KINDS),
      )
      truth = label(task, pairs, spec, num_seeds=a.seeds).improvement("test/accuracy")
      ranked = dict(predictor.rank(sets, base=(x[b], y[b]), eval=(x[t], y[t]), learner="mlp32"))
      for kind, gains in zip(KINDS, truth):
        v = ranked[kind].targets[0]
        se = float(gains.std(ddof=1) / np.sqrt(len(gains))) if len(gains) > 1 else float("nan")
        cases.append(
          {"task": name, "draw": draw, "kind": kind, "truth": float(gains.mean()), "se": se,
           "predicted": float(v.value), "low": float(v.low), "high": float(v.high)}
        )  # fmt: skip
      mine = cases[-len(KINDS) :]
      rho = spearmanr([c["truth"] for c in mine], [c["predicted"] for c in mine])[0]
      rhos[name].append(float(rho))
      print(f"{name} draw {draw}: Spearman over the kinds {rho:.3f}", flush=True)
  kinds = [_kind_row(kind, cases) for kind in KINDS]
  tasks = [{"task": n, "Spearman": float(np.mean(r)), "draws": len(r)} for n, r in rhos.items()]
  out = {
    "command": "python scripts/eval_zeroshot_kinds.py "
    + " ".join(sys.argv[1:] if argv is None else argv),
    "seeds": a.seeds,
    "model": predictor.path,
    "machine": machine(),
    "seconds": time.perf_counter() - t0,
    "kinds": kinds,
    "tasks": tasks,
    "cases": cases,
  }
  write_json(a.out + ".json", out)
  cols = ("kind", "cases", "truth", "predicted", "coverage", "sign", "below clean")
  cells = [
    {c: (f"{r[c]:+.4f}" if c in ("truth", "predicted") else _cell(r[c])) for c in cols}
    for r in kinds
  ]
  text = (
    "# Zero-shot model on supplement kinds no part of metaval generates\n\n"
    f"`{out['command'].strip()}` ({out['seconds']:.0f} s; {a.seeds} paired seeds of "
    "MLP-32 per label). Per kind: mean retraining gain in test accuracy and mean "
    f"prediction; coverage: share of cases whose {predictor.coverage:.0%} interval holds "
    "the truth; sign: agreement of signs where the truth is beyond two standard errors "
    f"(cases); below clean: cases valued below `clean` where retraining puts the kind "
    f"more than {CLEAR} below it.\n\n"
    + markdown_table(cells, cols)
    + "\n\nMean within-draw Spearman over the kinds: "
    + ", ".join(f"{r['task']} {r['Spearman']:.3f} ({r['draws']} draws)" for r in tasks)
    + f".\n\nModel: `{os.path.relpath(predictor.path)}`.\n"
  )
  write_text(a.out + ".md", text)
  return out


def _kind_row(kind: str, cases: list) -> dict:
  mine = [c for c in cases if c["kind"] == kind]
  clean = {(c["task"], c["draw"]): c for c in cases if c["kind"] == "clean"}
  clear = [c for c in mine if np.isfinite(c["se"]) and abs(c["truth"]) > 2 * c["se"]]
  below = [
    c for c in mine if clean[c["task"], c["draw"]]["truth"] - c["truth"] > CLEAR
  ]  # fmt: skip
  return {
    "kind": kind,
    "cases": len(mine),
    "truth": float(np.mean([c["truth"] for c in mine])),
    "predicted": float(np.mean([c["predicted"] for c in mine])),
    "coverage": float(np.mean([c["low"] <= c["truth"] <= c["high"] for c in mine])),
    "sign": [sum(np.sign(c["truth"]) == np.sign(c["predicted"]) for c in clear), len(clear)],
    "below clean": [
      sum(c["predicted"] < clean[c["task"], c["draw"]]["predicted"] for c in below),
      len(below),
    ],
  }


def _cell(v) -> str:
  if isinstance(v, list):
    return f"{v[0]} of {v[1]}" if v[1] else "–"
  return f"{v:.2f}" if isinstance(v, float) else str(v)


if __name__ == "__main__":
  main()
