"""Reading prior labels: shards -> one table, and each pair's arrays redrawn on demand.

A prior run's ``<workdir>`` holds ``config.json`` (the config, fingerprinted for
resumes) and ``shards/shard-NNNNN.npz``, one per group of tasks
(``metaval.prior.labels.run_shard``). ``load_prior(workdir)`` concatenates them into
a ``PriorLabels``: one row per (task, pair), the learner ladder on a second axis.
Only S's synthetic inputs are stored (pool points are indices): ``pair_arrays(i)``
rebuilds the task from its spec (cached) and assembles B, S and the evaluation set;
with ``redraw=True`` it redraws S from its seed instead and checks it against the
stored labels, pool indices, synthetic inputs and a checksum of S's inputs.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os

import ml_collections
import numpy as np

from metaval.errors import MetavalError
from metaval.labeling import storage as label_storage
from metaval.prior import generator
from metaval.prior import pairs as prior_pairs


@dataclasses.dataclass
class PriorLabels:
  """Prior labels, one row per (task, pair).

  Attributes:
    config: the prior config that made them.
    task_seed: ``[P]`` the pair's task (group by it for per-task targets).
    pair_index: ``[P]`` the pair's index within its task.
    kind: ``[P]`` supplement kind.
    recipe: ``[P]`` the sampler's parameters (JSON strings).
    n_base: ``[P]`` |B|.
    n_supp: ``[P]`` |S|.
    base_indices: per pair, B's pool indices.
    supp_indices: per pair, S's pool indices (-1 for synthetic points).
    supp_y: per pair, S's labels as trained on.
    synth_x: per pair, S's synthetic inputs ``[n_synthetic, d]`` (pool index -1).
    x_sum: ``[P]`` sum of S's inputs (float64), to check a redraw.
    learners: the L learner names (the ladder).
    learner_specs: per learner, its spec (JSON).
    metric_names: the two metrics, ``test/accuracy`` and ``test/neg_log_loss``.
    metric_base: ``[P, L, K, 2]`` metric of the B model per paired seed.
    metric_full: ``[P, L, K, 2]`` metric of the B ∪ S model, same keys.
    specs: task seed -> its ``TaskSpec``.
  """

  config: dict
  task_seed: np.ndarray
  pair_index: np.ndarray
  kind: np.ndarray
  recipe: np.ndarray
  n_base: np.ndarray
  n_supp: np.ndarray
  base_indices: list[np.ndarray]
  supp_indices: list[np.ndarray]
  supp_y: list[np.ndarray]
  synth_x: list[np.ndarray]
  x_sum: np.ndarray
  learners: list[str]
  learner_specs: list[str]
  metric_names: list[str]
  metric_base: np.ndarray
  metric_full: np.ndarray
  specs: dict[int, generator.TaskSpec]

  def __len__(self) -> int:
    return len(self.task_seed)

  @property
  def num_labels(self) -> int:
    """Labels in all: pairs x learners."""
    return len(self) * len(self.learners)

  def improvement(self, metric: str = "test/accuracy", learner: str | None = None) -> np.ndarray:
    """Δ metric (B ∪ S minus B), mean over paired seeds: ``[P, L]``, or ``[P]`` for one learner."""
    if metric not in self.metric_names:
      raise MetavalError(f"unknown metric {metric!r}; available: {', '.join(self.metric_names)}")
    m = self.metric_names.index(metric)
    d = (self.metric_full - self.metric_base)[..., m].mean(2)
    if learner is None:
      return d
    if learner not in self.learners:
      raise MetavalError(f"unknown learner {learner!r}; available: {', '.join(self.learners)}")
    return d[:, self.learners.index(learner)]

  def table(self) -> dict[str, np.ndarray]:
    """A long table, one row per label (pair x learner): task, kind, learner, sizes, Δs.

    Returns:
      Columns ``row`` (the pair's row in this set), ``task_seed``, ``kind``,
      ``learner``, ``n_base``, ``n_supp``, ``d_accuracy``, ``d_neg_log_loss`` (seed
      means) and ``d_accuracy_seeds`` ``[rows, K]``.
    """
    p, n_l = len(self), len(self.learners)
    rep = lambda a: np.repeat(np.asarray(a), n_l, 0)  # noqa: E731
    seeds = (self.metric_full - self.metric_base)[..., 0].reshape(p * n_l, -1)
    return {
      "row": rep(np.arange(p)),
      "task_seed": rep(self.task_seed),
      "kind": rep(self.kind),
      "learner": np.tile(np.asarray(self.learners), p),
      "n_base": rep(self.n_base),
      "n_supp": rep(self.n_supp),
      "d_accuracy": self.improvement("test/accuracy").reshape(-1),
      "d_neg_log_loss": self.improvement("test/neg_log_loss").reshape(-1),
      "d_accuracy_seeds": seeds,
    }

  def task(self, row: int):
    """The ``Task`` of pair ``row`` (rebuilt from its spec; cached)."""
    return _task(self.specs[int(self.task_seed[row])])

  def pair_arrays(self, row: int, redraw: bool = False) -> dict[str, np.ndarray]:
    """Pair ``row``'s arrays in the task's standardised space.

    Args:
      row: the pair's row.
      redraw: redraw S from its seed (and check it against what is stored) instead
        of assembling it from the stored indices and synthetic inputs.

    Returns:
      ``x_base``, ``y_base``, ``x_supp``, ``y_supp``, ``x_eval``, ``y_eval``.

    Raises:
      MetavalError: a redrawn supplement differs from the stored one (e.g. a
        different numpy changed a random stream).
    """
    task = self.task(row)
    base, idx = self.base_indices[row], self.supp_indices[row]
    x_supp = np.zeros((len(idx), task.feature_dim), np.float32)
    x_supp[idx >= 0] = task.x[idx[idx >= 0]]
    x_supp[idx < 0] = self.synth_x[row]
    if redraw:
      cfg = ml_collections.ConfigDict(self.config)
      supp = prior_pairs.draw_supplement(task, base, cfg, int(self.pair_index[row]), self.kind[row])
      ok = (
        supp.kind == self.kind[row]
        and np.array_equal(supp.y, self.supp_y[row])
        and np.array_equal(supp.pool_indices, idx)
        and np.array_equal(supp.x, x_supp)
        and np.isclose(float(np.asarray(supp.x, np.float64).sum()), self.x_sum[row], atol=1e-6)
      )
      if not ok:
        raise MetavalError(f"pair {row}: the redrawn supplement differs from the stored labels")
    x_eval, y_eval = task.evals["test"]
    return {
      "x_base": task.x[base],
      "y_base": task.y[base],
      "x_supp": x_supp,
      "y_supp": self.supp_y[row],
      "x_eval": x_eval,
      "y_eval": y_eval,
    }


@functools.lru_cache(maxsize=64)
def _task(spec: generator.TaskSpec):
  return generator.build_task(spec)


def _split(flat: np.ndarray, off: np.ndarray) -> list[np.ndarray]:
  return [flat[off[i] : off[i + 1]] for i in range(len(off) - 1)]


def load_prior(workdir: str) -> PriorLabels:
  """Loads every finished shard of a prior run.

  Args:
    workdir: the run's directory (``metaval prior --workdir``).

  Returns:
    ``PriorLabels`` of the finished shards (a run in progress gives what is done).

  Raises:
    MetavalError: no config or no finished shard in ``workdir``.
  """
  path = os.path.join(workdir, "config.json")
  shard_dir = os.path.join(workdir, "shards")
  if not os.path.exists(path) or not os.path.isdir(shard_dir):
    raise MetavalError(f"{workdir!r} holds no prior labels (run `metaval prior` first)")
  files = label_storage.shard_files(shard_dir)
  if not files:
    raise MetavalError(f"{workdir!r} has no finished shard yet")
  with open(path) as fh:
    config = json.load(fh)
  recs = [label_storage.read_shard(f) for f in files]
  cat = lambda k: np.concatenate([r[k] for r in recs])  # noqa: E731
  ragged = {k: [] for k in ("base", "supp_idx", "supp_y", "synth")}
  specs = {}
  for r in recs:
    ragged["base"] += _split(r["base_flat"], r["base_off"])
    ragged["supp_idx"] += _split(r["supp_idx_flat"], r["supp_off"])
    ragged["supp_y"] += _split(r["supp_y_flat"], r["supp_off"])
    ragged["synth"] += _split(r["synth_x_flat"], r["synth_off"])
    for s, js in zip(r["task_seeds"], r["task_specs"], strict=True):
      specs[int(s)] = generator.TaskSpec.from_json(str(js))
  return PriorLabels(
    config=config,
    task_seed=cat("task_seed"),
    pair_index=cat("pair_index"),
    kind=cat("kind"),
    recipe=cat("recipe"),
    n_base=np.array([len(b) for b in ragged["base"]], np.int64),
    n_supp=np.array([len(y) for y in ragged["supp_y"]], np.int64),
    base_indices=ragged["base"],
    supp_indices=ragged["supp_idx"],
    supp_y=ragged["supp_y"],
    synth_x=[
      x.reshape(-1, specs[int(t)].dim)
      for x, t in zip(ragged["synth"], cat("task_seed"), strict=True)
    ],
    x_sum=cat("x_sum"),
    learners=[str(v) for v in recs[0]["learner"]],
    learner_specs=[str(v) for v in recs[0]["learner_spec"]],
    metric_names=[str(v) for v in recs[0]["metric_names"]],
    metric_base=cat("metric_base"),
    metric_full=cat("metric_full"),
    specs=specs,
  )
