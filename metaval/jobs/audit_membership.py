"""``metaval audit membership``: memorization spot-check, members vs non-members ROC AUC.

Trains complementary pairs of tiny character LMs with and without each contributor
(see :mod:`metaval.audit.membership` for the design and the scores), scores every
model on the contributors' prompts and writes the AUC table.
"""

from __future__ import annotations

import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from metaval.audit.membership import (
  MembershipError,
  analyse,
  complementary_plan,
  format_table,
  score_models,
  select_contributors,
)
from metaval.data import task_from_config
from metaval.learners.models import LearnerSpec
from metaval.learners.train import train_many
from metaval.util import io as uio


def run(config, workdir: str | None = None) -> dict:
  """``metaval audit membership``: train complementary LM pairs, score, report AUCs.

  Writes ``membership.json`` (config, plan, AUC rows, timing), ``membership.md``
  (the table) and ``scores.npz`` (per-window scores ``[M, W]``, plan, owner) to
  ``workdir``.
  """
  task = task_from_config(config.task)
  spec = LearnerSpec.from_config(config.learner)
  if spec.family != "lm":
    raise MembershipError(f"the membership audit trains LMs; learner.family is {spec.family!r}")
  win = task.x.shape[1]
  if not 1 <= config.prefix_len < win - 1:
    raise MembershipError(f"prefix_len must be in [1, {win - 2}], got {config.prefix_len}")
  if not 0 < config.min_k_frac <= 1:
    raise MembershipError(f"min_k_frac must be in (0, 1], got {config.min_k_frac}")
  rng = np.random.default_rng(config.seed)
  k = int(config.num_contributors)
  files, rows, excluded = select_contributors(task, k, config.min_windows, config.max_windows, rng)
  base_idx = np.flatnonzero(~excluded)
  if config.base_size:
    base_idx = rng.choice(base_idx, min(int(config.base_size), len(base_idx)), replace=False)
  n_pool = task.pool_size
  base = np.zeros(n_pool, np.float32)
  base[base_idx] = 1.0
  contrib = np.zeros((k, n_pool), np.float32)
  for c, r in enumerate(rows):
    contrib[c, r] = float(config.contributor_weight)
  plan = complementary_plan(k, int(config.num_pairs), rng)  # [M, K]
  masks = base[None] + plan.astype(np.float32) @ contrib  # [M, N]
  # The two models of a pair share a key on purpose (paired with/without runs).
  pair_keys = jax.random.split(jax.random.key(config.seed), config.num_pairs)
  keys = jnp.repeat(jax.random.key_data(pair_keys), 2, axis=0)  # [M, 2]
  print(task.describe())
  print(
    f"{k} contributor files ({', '.join(str(len(r)) for r in rows)} windows), base "
    f"{len(base_idx)} windows, {2 * config.num_pairs} LMs (w{spec.width} d{spec.depth}, "
    f"{spec.steps} steps x {spec.batch_size})"
  )
  t0 = time.perf_counter()
  res = train_many(keys, task, masks, spec, return_params=True, chunk=config.chunk or None)
  train_s = time.perf_counter() - t0
  prompts = [r[: config.prompts_per_contributor] for r in rows]
  owner = np.concatenate([np.full(len(p), c) for c, p in enumerate(prompts)])
  windows = jnp.asarray(task.x[np.concatenate(prompts)])  # [W, T + 1]
  t0 = time.perf_counter()
  window_scores = jax.device_get(
    score_models(
      res.params,
      windows,
      spec=spec,
      prefix_len=int(config.prefix_len),
      min_k_frac=float(config.min_k_frac),
    )
  )
  score_s = time.perf_counter() - t0
  table_rows = analyse(window_scores, plan, owner, num_boot=config.num_boot, rng=rng)
  table = format_table(table_rows)
  heldout = res.metrics["heldout/neg_loss"]
  print(
    f"trained in {train_s:.1f}s (heldout neg_loss {heldout.mean():+.3f} ± {heldout.std():.3f}), "
    f"scored {windows.shape[0]} prompts x {len(plan)} models in {score_s:.1f}s"
  )
  print(table)
  out = {
    "task": task.name,
    "learner": spec.to_dict(),
    "contributor_files": [task.file_names[f] for f in files],
    "contributor_windows": [int(len(r)) for r in rows],
    "base_windows": int(len(base_idx)),
    "plan": plan.astype(int).tolist(),
    "heldout_neg_loss": heldout.tolist(),
    "prefix_len": int(config.prefix_len),
    "min_k_frac": float(config.min_k_frac),
    "rows": table_rows,
    "seconds": {"train": train_s, "score": score_s},
  }
  if workdir:
    uio.write_text(os.path.join(workdir, "membership.json"), json.dumps(out, indent=2) + "\n")
    uio.write_text(os.path.join(workdir, "membership.md"), table + "\n")
    # Raw per-window scores, so the analysis can be redone without retraining.
    uio.save_npz(os.path.join(workdir, "scores.npz"), plan=plan, owner=owner, **window_scores)
    print(f"wrote {workdir}/membership.json, membership.md, scores.npz")
  return out
