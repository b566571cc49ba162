"""``metaval untrain``: sample pairs, untrain them, score against retraining, write tables.

The library (the ascent, ``untrain_pairs``, ``cost_summary``) is
``metaval.valuation.ascent`` (its public names are re-exported here); this module
builds the pairs a config describes (supplement kinds from the one registry,
``metaval.data.samplers``) and writes ``untrain.{json,md}``.
"""

from __future__ import annotations

import dataclasses
import os
import time

import numpy as np

from metaval.data import samplers
from metaval.data.tasks import LANGUAGE_MODEL, Task, task_from_config
from metaval.learners.models import LearnerSpec, num_params
from metaval.pairs import Pairs
from metaval.protocol import agreement
from metaval.util import io as io_lib
from metaval.valuation.ascent import (  # noqa: F401  (the library's names, re-exported)
  AscentSpec,
  UntrainError,
  cost_summary,
  untrain_one,
  untrain_pairs,
)


def sample_pairs(
  task: Task,
  num_pairs: int,
  base_size: int,
  supp_sizes,
  kinds,
  rng: np.random.Generator,
  *,
  supps_per_base: int = 1,
  noise_rate: float = 0.5,
) -> Pairs:
  """Random (B, S) pairs with supplements of several kinds and sizes.

  Supplements come from the kinds registry (``metaval.data.samplers``); every
  ``supps_per_base`` consecutive pairs share one B, so supplements can be compared
  head to head on the same base. For the code task B excludes one package and a
  ``groups`` supplement is that package's windows.

  Args:
    task: the base task.
    num_pairs: number of pairs P.
    base_size: points in B.
    supp_sizes: sizes to draw S's size from.
    kinds: registry kinds to cycle through (``samplers.kinds_for(task)``).
    rng: numpy generator.
    supps_per_base: consecutive pairs sharing one B.
    noise_rate: label-flip rate of ``label_noise`` supplements.

  Returns:
    ``Pairs``.
  """
  if num_pairs < 1 or base_size < 1 or supps_per_base < 1:
    raise UntrainError("num_pairs, base_size and supps_per_base must be >= 1")
  if base_size >= task.pool_size:
    raise UntrainError(f"base_size must be < pool size {task.pool_size}, got {base_size}")
  allowed = samplers.kinds_for(task)
  for k in kinds:
    if k not in allowed:
      raise UntrainError(
        f"unknown supplement kind {k!r} for task {task.name!r}; use one of {', '.join(allowed)}"
      )
  bases, supps, base_of = [], [], []
  group = 0
  for p in range(num_pairs):
    if p % supps_per_base == 0:
      exclude = ()
      if task.kind == LANGUAGE_MODEL:
        group = int(rng.integers(len(task.group_names)))
        exclude = (group,)
      bases.append(samplers.sample_base(task, rng, base_size, exclude_groups=exclude))
    kind = kinds[p % len(kinds)]
    params = {"size": int(rng.choice(np.asarray(supp_sizes)))}
    if kind == "label_noise":
      params["rate"] = float(noise_rate)
    if kind == "groups":
      params["groups"] = [group]
    supps.append(samplers.sample_supplement(kind, task, bases[-1], rng, **params))
    base_of.append(len(bases) - 1)
  return Pairs.from_supplements(bases, supps, base_of)


def leave_group_out_pairs(task: Task, groups=None, pool_indices=None) -> Pairs:
  """Pairs (D \\ S_i, S_i) where D is fixed and S_i is D's points of group i.

  Every pair has the same B ∪ S = D, so one trained model serves all subsets. For
  the code task S_i is one package's files (kind ``groups``); for classification
  one class (kind ``single_class``). The recipe names the group.
  """
  d = np.arange(task.pool_size) if pool_indices is None else np.asarray(pool_indices)
  names = list(task.group_names)
  gids = range(len(names)) if groups is None else [names.index(g) for g in groups]
  kind = "groups" if task.kind == LANGUAGE_MODEL else "single_class"
  bases, supps = [], []
  for g in gids:
    s = d[task.groups[d] == g]
    if len(s) == 0 or len(s) == len(d):
      continue
    bases.append(np.setdiff1d(d, s).astype(np.int32))
    recipe = {"size": int(len(s)), "groups": [int(g)], "group_names": [names[g]]}
    recipe["leave_group_out"] = True
    supps.append(
      samplers.Supplement(task.x[s], task.y[s].astype(np.int32), s.astype(np.int32), kind, recipe)
    )
  return Pairs.from_supplements(bases, supps)


def slice_names(pairs: Pairs) -> np.ndarray:
  """``[P]`` what the by-kind table groups on: the kind, or ``group:<name>`` for a
  leave-one-group-out supplement."""
  return np.asarray(
    [
      f"group:{recipe['group_names'][0]}" if recipe.get("leave_group_out") else str(kind)
      for kind, recipe in zip(pairs.kind, pairs.recipe)
    ]
  )


def score(out: dict, metrics) -> dict:
  names = out["metric_names"]
  rows = {}
  for m in metrics:
    if m not in names:
      raise UntrainError(f"unknown metric {m!r}; available: {', '.join(names)}")
    j = names.index(m)
    est = out["estimate"][:, :, j].mean(1)
    lab = out["label"][:, :, j].mean(1)
    rows[m] = agreement(est, lab)
    # Label repeatability ceiling: seed 0's label against the other seeds' mean.
    if out["label"].shape[1] >= 2:
      rows[m]["label_split_half_spearman"] = agreement(
        out["label"][:, 0, j], out["label"][:, 1:, j].mean(1)
      )["spearman"]
  return rows


def _markdown(rows: dict, cost: dict, timing: dict, header: str) -> str:
  table = [
    {
      "metric": m,
      "n": str(int(r["n"])),
      "Spearman": f"{r['spearman']:.3f}",
      "Pearson": f"{r['pearson']:.3f}",
      "sign acc": f"{r['sign_acc']:.2f}",
      "top-10%": f"{r['topk_precision']:.2f}",
      "label split-half ρ": f"{r.get('label_split_half_spearman', float('nan')):.3f}",
    }
    for m, r in rows.items()
  ]
  lines = [header, "", io_lib.markdown_table(table)]
  amortised = timing["models_per_full_training"]
  estimated = " (estimated from B, see notes)" if cost["train_full_estimated"] else ""
  unit = "× one retraining of B"
  cost_rows = [
    ("retrain B", f"{timing['retrain_base_s']:.3f}", "1.00"),
    (
      f"train B∪S (amortised over {amortised:.0f} subset(s)){estimated}",
      f"{timing['train_full_s'] / amortised:.3f}",
      f"{cost['retrain_label_x'] - 1:.2f}",
    ),
    (
      "untrain: restore + ascent + eval",
      f"{timing['restore_s'] + timing['ascent_eval_s']:.3f}",
      f"{cost['untrain_marginal_x']:.2f}",
    ),
    ("untrain total (B∪S training + untrain)", "", f"{cost['untrain_total_x']:.2f}"),
    ("retraining label (B∪S + B)", "", f"{cost['retrain_label_x']:.2f}"),
  ]
  first = "cost (per subset, K seeds, steady state)"
  lines += [
    "",
    io_lib.markdown_table([{first: a, "seconds": b, unit: c} for a, b, c in cost_rows]),
    "",
    f"Example-gradients: ascent {timing['ascent_example_grads']:.0f} vs training "
    f"{timing['train_example_grads']:.0f} per model "
    f"({cost['ascent_vs_train_example_grads']:.3f}×).",
  ]
  return "\n".join(lines)


def build_pairs(config, task: Task) -> Pairs:
  """The pairs a config describes (``pairs.mode``: ``random`` or ``leave_group_out``)."""
  pc = config.pairs
  if pc.mode == "leave_group_out":
    d = None
    if pc.base_size and pc.base_size < task.pool_size:
      d = np.sort(
        np.random.default_rng(pc.seed).choice(task.pool_size, pc.base_size, replace=False)
      )
    groups = list(pc.groups) if pc.groups else None
    return leave_group_out_pairs(task, groups=groups, pool_indices=d)
  if pc.mode == "random":
    return sample_pairs(
      task,
      pc.num_pairs,
      pc.base_size,
      tuple(pc.supp_sizes),
      tuple(pc.kinds),
      np.random.default_rng(pc.seed),
      supps_per_base=pc.supps_per_base,
      noise_rate=pc.noise_rate,
    )
  raise UntrainError(f"unknown pairs.mode {pc.mode!r}; use random or leave_group_out")


def run(config, workdir: str | None = None) -> dict:
  """``metaval untrain``: untraining estimates vs retraining labels, and their cost.

  Writes ``untrain.json`` and ``untrain.md`` under ``workdir`` (orbax checkpoints
  under ``workdir/ckpt_<config hash>``, reused on rerun) and returns the summary.
  """
  task = task_from_config(config.task)
  spec = LearnerSpec.from_config(config.learner)
  asc = AscentSpec(**dict(config.ascent))
  pairs = build_pairs(config, task)
  if len(pairs) < 3:
    raise UntrainError(f"need at least 3 pairs to score untraining, got {len(pairs)}")
  workdir = workdir or os.path.join("runs", "untrain")
  os.makedirs(workdir, exist_ok=True)
  ckpt_dir = os.path.join(workdir, f"ckpt_{io_lib.fingerprint(config.to_dict(), 10)}")
  in_dim = 0 if spec.family == "lm" else task.feature_dim
  print(task.describe())
  print(
    f"learner {spec.family} width {spec.width} ({num_params(spec, in_dim, task.num_classes):,} "
    f"params), {len(pairs)} pairs x {config.num_seeds} seeds, ascent {asc}"
  )
  t0 = time.perf_counter()
  out = untrain_pairs(
    task, pairs, spec, asc, num_seeds=config.num_seeds, seed=config.seed, ckpt_dir=ckpt_dir
  )
  metrics = list(config.metrics) or [n for n in out["metric_names"] if n.count("/") == 1]
  rows = score(out, metrics)
  cost = cost_summary(out["timing"])
  kinds = {}
  j = out["metric_names"].index(metrics[0])
  slices = slice_names(pairs)
  for k in np.unique(slices):
    sel = slices == k
    kinds[str(k)] = {
      "n": int(sel.sum()),
      "label_mean": float(out["label"][sel, :, j].mean()),
      "estimate_mean": float(out["estimate"][sel, :, j].mean()),
    }
  md = _markdown(
    rows,
    cost,
    out["timing"],
    f"Untraining vs retraining on `{task.name}` ({spec.family} width {spec.width}, "
    f"{len(pairs)} pairs × {config.num_seeds} seeds, {asc.steps} ascent steps)",
  )
  print(md)
  summary = {
    "task": task.name,
    "learner": spec.to_dict(),
    "ascent": dataclasses.asdict(asc),
    "num_pairs": len(pairs),
    "num_seeds": int(config.num_seeds),
    "agreement": rows,
    "cost": cost,
    "timing": out["timing"],
    "by_kind": kinds,
    "seconds": time.perf_counter() - t0,
    "two_x_training_claim": {
      "untrain_total_x": cost["untrain_total_x"],
      "holds_within_25pct": bool(abs(cost["untrain_total_x"] - 2.0) <= 0.5),
    },
  }
  io_lib.write_json(os.path.join(workdir, "untrain.json"), summary)
  io_lib.write_text(os.path.join(workdir, "untrain.md"), md + "\n")
  print(f"wrote {os.path.join(workdir, 'untrain.json')} ({summary['seconds']:.1f}s)")
  return summary
