"""``metaval attribute``: split a retraining gain among contributors and pay royalties.

The job around ``metaval.valuation.contributors``: contributors and the base set
come from the config; every needed coalition is trained with ``train_many``
(exact: all 2^n in one batch); the gain is attributed with Shapley and Banzhaf,
optionally with a contributor who copies another's data, valued with and without
the copy policy; the outputs are ``attribution.json``, ``attribution.md`` and the
royalty ledger ``royalties.json`` (from the Shapley values of the deduplicated game).
"""

from __future__ import annotations

import os
import time

import numpy as np

from metaval.data.tasks import Task
from metaval.games import GameError, RetrainingUtility, Valuation
from metaval.learners.models import LearnerSpec
from metaval.util import io as io_lib
from metaval.valuation import contributors, royalties


def contributor_rows(task: Task, cfg, rng) -> tuple[list[str], np.ndarray, np.ndarray]:
  """Contributors and base set from the config: ``[n]`` names, ``[n, N]``, ``[N]``."""
  n_pool = task.pool_size
  c = cfg.contributors
  if c.by == "group":
    names = [s for s in c.groups.split(",") if s] if c.groups else []
    if not names:
      names = list(task.group_names[: c.num])
    unknown = [s for s in names if s not in task.group_names]
    if unknown:
      raise GameError(
        f"unknown group(s) {unknown} for task {task.name!r}; available: "
        f"{', '.join(task.group_names)}"
      )
    rows = np.stack([task.groups == task.group_names.index(s) for s in names]).astype(np.float32)
    if c.max_points:
      for r in rows:
        on = np.flatnonzero(r)
        r[on[c.max_points :]] = 0.0
    rest = np.flatnonzero(rows.sum(0) == 0)
  elif c.by == "random":
    if c.num < 1 or c.num * c.points > n_pool:
      raise GameError(f"cannot draw {c.num} contributors of {c.points} points each")
    perm = rng.permutation(n_pool)
    names = [f"contributor_{i}" for i in range(c.num)]
    rows = np.zeros((c.num, n_pool), np.float32)
    for i in range(c.num):
      rows[i, perm[i * c.points : (i + 1) * c.points]] = 1.0
    rest = perm[c.num * c.points :]
  else:
    raise GameError(f"contributors.by must be 'group' or 'random', got {c.by!r}")
  base = np.zeros(n_pool, np.float32)
  size = min(int(cfg.base_size), len(rest)) if cfg.base_size else len(rest)
  base[rng.choice(rest, size, replace=False)] = 1.0
  if cfg.copy_of:
    if cfg.copy_of not in names:
      raise GameError(f"copy_of {cfg.copy_of!r} is not a contributor; have {names}")
    rows = np.concatenate([rows, rows[names.index(cfg.copy_of)][None]])
    names.append(f"copy_of_{cfg.copy_of}")
  return names, rows, base


def format_table(results: dict[str, list[Valuation]]) -> str:
  """A markdown table: one row per contributor, one column per (policy, method).

  Cells show ``value ± standard error``: the Monte-Carlo error for sampling
  methods, the spread over training seeds for exact ones (when several seeds).
  """
  cols = [(f"{pol}: {a.method}", a) for pol, lst in results.items() for a in lst]
  rows = []
  for i, name in enumerate(cols[0][1].players):
    row = {"contributor": str(name)}
    for head, a in cols:
      cell = f"{a.values[i]:+.4f}"
      if a.stderr[i] > 0:
        cell += f" ± {a.stderr[i]:.4f}"
      elif a.seed_stderr is not None:
        cell += f" ± {a.seed_stderr[i]:.4f}"
      row[head] = cell
    rows.append(row)
  rows.append({"contributor": "**Σ values**", **{h: f"{a.values.sum():+.4f}" for h, a in cols}})
  rows.append(
    {"contributor": "**gain u(all)-u(∅)**", **{h: f"{a.total_gain:+.4f}" for h, a in cols}}
  )
  return io_lib.markdown_table(rows)


def _expand(a: Valuation, keep: np.ndarray, names: list[str]) -> None:
  """Puts the kept contributors' results back among all (the others get exactly 0)."""
  n = len(names)
  for field in ("values", "stderr", "seed_stderr"):
    part = getattr(a, field)
    if part is not None:
      full = np.zeros(n)
      full[keep] = part
      setattr(a, field, full)
  a.players = list(names)


def run(config, workdir: str | None = None) -> dict:
  """Attributes the configured gain, writes the table and the royalty ledger.

  Returns:
    The JSON written to ``attribution.json`` (results per policy, timing, every
    trained coalition's metric per seed, the ledger's hash).
  """
  from metaval.data import task_from_config

  task = task_from_config(config.task)
  spec = LearnerSpec.from_config(config.learner)
  rng = np.random.default_rng(config.seed)
  names, rows, base = contributor_rows(task, config, rng)
  print(task.describe())
  print(
    f"{len(names)} contributors "
    f"({', '.join(f'{a}: {int(r.sum())} pts' for a, r in zip(names, rows))}), "
    f"base {int(base.sum())} pts, learner {spec.family} w{spec.width} x{config.num_seeds} seeds, "
    f"metric {config.metric}"
  )
  policies = {"plain": rows}
  if config.copy_of or config.dedupe:
    deduped, removed = contributors.dedupe_contributors(task, rows, base)
    if (removed > 0).any():
      print(
        "copy policy removed rows already owned: "
        + ", ".join(f"{a}: {int(k)}" for a, k in zip(names, removed) if k)
      )
    policies["deduped"] = deduped
  results, timing, utilities = {}, {}, {}
  for pol, contrib in policies.items():
    keep = np.flatnonzero(contrib.sum(1) > 0)
    game = RetrainingUtility(
      task,
      spec,
      contrib[keep],
      base,
      metric=config.metric,
      num_seeds=config.num_seeds,
      seed=config.seed,
      batch_size=config.chunk or None,
      names=[names[i] for i in keep],
    )
    t0 = time.perf_counter()
    res = contributors.attribute(
      game,
      method=config.method,
      max_exact=config.max_exact,
      num_permutations=config.num_permutations,
      banzhaf_samples=config.banzhaf_samples,
      seed=config.seed,
      compare_exact=config.compare_exact,
    )
    timing[pol] = {
      "seconds": time.perf_counter() - t0,
      "models_trained": game.fits,
      "coalitions": game.coalitions,
    }
    for a in res:
      if "vs_exact" in a.info:
        e = a.info["vs_exact"]
        print(
          f"{a.method}: {e['coalitions_sampled']} of {e['coalitions_total']} coalitions; "
          f"max |error| {e['max_abs_error']:.4f}, max |error|/se {e['max_error_over_se']:.2f}, "
          f"rank agreement (Spearman) {e['spearman']:.3f}"
        )
    # Every trained coalition's metric per seed, for audit and re-analysis:
    # key = membership bits in contributor order (of the contributors kept).
    coal, per_seed = game.cached()
    utilities[pol] = {
      "contributors": [names[i] for i in keep],
      "per_seed": {
        "".join("1" if b else "0" for b in c): [float(x) for x in v] for c, v in zip(coal, per_seed)
      },
    }
    if len(keep) < len(names):
      for a in res:
        _expand(a, keep, names)
    results[pol] = res
    print(
      f"[{pol}] {game.fits} models for {game.coalitions} coalitions in "
      f"{timing[pol]['seconds']:.1f}s"
    )
  table = format_table(results)
  print(table)
  final = results["deduped" if "deduped" in results else "plain"][0]
  ledger = royalties.build_ledger(
    {str(a): float(v) for a, v in zip(final.players, final.values)},
    revenue_per_inference=config.royalties.revenue_per_inference,
    num_inferences=config.royalties.num_inferences,
    unit=config.royalties.unit,
    negative_policy=config.royalties.negative_policy,
    source=f"{final.method} over {'deduplicated ' if 'deduped' in results else ''}contributors, "
    f"task {task.name}, metric {config.metric}",
  )
  print(royalties.format_ledger(ledger))
  out = {
    "task": task.name,
    "learner": spec.to_dict(),
    "metric": config.metric,
    "num_seeds": config.num_seeds,
    "contributor_points": {a: int(r.sum()) for a, r in zip(names, rows)},
    "base_points": int(base.sum()),
    "results": {pol: [a.to_dict() for a in lst] for pol, lst in results.items()},
    "timing": timing,
    "ledger_hash": ledger["sha256"],
    "utilities": utilities,
  }
  if workdir:
    io_lib.write_json(os.path.join(workdir, "attribution.json"), out)
    io_lib.write_text(os.path.join(workdir, "attribution.md"), table + "\n")
    royalties.write_ledger(ledger, os.path.join(workdir, "royalties.json"))
    print(f"wrote {workdir}/attribution.json, attribution.md, royalties.json")
  return out
