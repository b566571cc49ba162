"""Training the zero-shot value model on a prior of generated tasks.

``table(labels)`` featurises every labelled pair (one ``Context`` per base, the
learner's descriptor swapped in per learner) into a ``Table``; ``select_and_fit``
splits the tasks into training and validation (grouped by task, never by pair),
fits the network and gradient boosting, scores both and every single proxy by the
mean within-group Spearman correlation on the validation tasks, keeps the better
model and calibrates its interval there (split conformal, scaled per query:
``metaval.zeroshot.interval``); ``save`` writes the model folder that
``ZeroShotPredictor`` loads.
"""

from __future__ import annotations

import dataclasses
import os
import shutil

import numpy as np
from scipy import stats

from metaval.errors import MetavalError
from metaval.predictor import features as PF
from metaval.util import io
from metaval.zeroshot import features as Z
from metaval.zeroshot import gate as G
from metaval.zeroshot import interval as I
from metaval.zeroshot import model as M
from metaval.zeroshot import trees
from metaval.zeroshot.domain import outside_domain
from metaval.zeroshot.labels import TaskLabels
from metaval.zeroshot.predictor import GBM, LEGACY_GBM, META, WEIGHTS

_LEARNER = slice(len(Z.FEATURE_NAMES) - PF.LEARNER_DIM, len(Z.FEATURE_NAMES))


@dataclasses.dataclass
class Table:
  """Featurised labelled pairs, one row per (pair, learner).

  Attributes:
    x: ``[R, F]`` raw features (``FEATURE_NAMES``).
    gain: ``[R]`` mean retraining gain in accuracy.
    split_a: ``[R]`` gain over the first half of the seeds.
    split_b: ``[R]`` gain over the second half.
    task: ``[R]`` task id.
    group: ``[R]`` ranking group (task and learner).
    kind: ``[R]`` supplement kind.
    learner: ``[R]`` learner name.
    source: ``[R]`` the task's name (e.g. its prior kind).
  """

  x: np.ndarray
  gain: np.ndarray
  split_a: np.ndarray
  split_b: np.ndarray
  task: np.ndarray
  group: np.ndarray
  kind: np.ndarray
  learner: np.ndarray
  source: np.ndarray

  def select(self, m) -> Table:
    return Table(**{f.name: getattr(self, f.name)[m] for f in dataclasses.fields(self)})

  def save(self, path: str) -> None:
    io.save_npz(path, **dataclasses.asdict(self))

  @classmethod
  def load(cls, path: str) -> Table:
    with np.load(path, allow_pickle=False) as z:
      return cls(**{f.name: z[f.name] for f in dataclasses.fields(cls)})


def task_rows(tl: TaskLabels, index: int | None = None) -> Table:
  """The rows of one task's labels (``index``: its id in the table, default its ``task_id``)."""
  index = tl.task_id if index is None else index
  rows, meta = [], []
  for b, base in enumerate(tl.bases):
    members = np.flatnonzero(tl.base_of == b)
    if members.size == 0:
      continue
    ctx = Z.Context(base, (tl.x_eval, tl.y_eval), seed=tl.task_id)
    feats = ctx.features_many([tl.supp[i] for i in members], tl.learners[0], tl.learner_params[0])
    for i, f in zip(members, feats):
      for j, spec in enumerate(tl.learners):
        g = f.copy()
        g[_LEARNER] = PF.learner_features(spec, tl.learner_params[j])
        rows.append(g)
        meta.append((i, j))
  idx = np.asarray(meta).reshape(-1, 2)
  p, j = idx[:, 0], idx[:, 1]
  names = np.asarray([s["name"] for s in tl.learners])
  return Table(
    x=np.stack(rows).astype(np.float32),
    gain=tl.gain[p, j].astype(np.float32),
    split_a=tl.split_a[p, j].astype(np.float32),
    split_b=tl.split_b[p, j].astype(np.float32),
    task=np.full(len(p), index),
    group=index * 16 + j,
    kind=tl.kind[p].astype(str),
    learner=names[j].astype(str),
    source=np.full(len(p), tl.name).astype(str),
  )


def _rows_chunk(chunk: list[tuple[int, TaskLabels]]) -> list[Table]:
  return [task_rows(tl, i) for i, tl in chunk]


def concat(parts: list[Table]) -> Table:
  """Tables stacked row-wise."""
  return Table(
    **{
      f.name: np.concatenate([getattr(t, f.name) for t in parts]) for f in dataclasses.fields(Table)
    }
  )


def table(labels: list[TaskLabels], workers: int = 0, progress: bool = False) -> Table:
  """Every task's rows, concatenated (tasks numbered by their position in ``labels``).

  Args:
    labels: the labelled tasks.
    workers: processes featurising tasks in parallel (0: in this process). Each
      runs BLAS on one thread; rows do not depend on the number of workers.
    progress: show a progress bar over tasks.

  Returns:
    The ``Table``.
  """
  if not labels:
    raise MetavalError("no labelled tasks to featurise")
  from tqdm import tqdm

  indexed = list(enumerate(labels))
  chunks = [indexed[i : i + 8] for i in range(0, len(indexed), 8)]
  parts: list[Table] = []
  with tqdm(total=len(labels), unit="task", disable=not progress) as bar:
    if workers <= 0:
      for c in chunks:
        parts += _rows_chunk(c)
        bar.update(len(c))
    else:
      from metaval.labeling.pipeline import shard_pool

      with shard_pool(min(workers, len(chunks))) as pool:
        futs = [pool.submit(_rows_chunk, c) for c in chunks]
        for c, f in zip(chunks, futs):  # in order: the table does not depend on timing
          parts += f.result()
          bar.update(len(c))
  return concat(parts)


def group_spearman(pred: np.ndarray, gain: np.ndarray, group: np.ndarray) -> float:
  """Mean Spearman correlation inside groups (groups with < 4 pairs or no spread skipped)."""
  vals = []
  for g in np.unique(group):
    m = group == g
    if m.sum() < 4 or np.ptp(gain[m]) == 0 or np.ptp(pred[m]) == 0:
      continue
    vals.append(stats.spearmanr(pred[m], gain[m])[0])
  return float(np.mean(vals)) if vals else float("nan")


@dataclasses.dataclass
class Fitted:
  """A fitted model and how it standardises its features."""

  kind: str  # "net" or "gbm"
  mean: np.ndarray
  sd: np.ndarray
  low: np.ndarray  # each feature's range over the training rows: the model's domain
  high: np.ndarray
  net: M.ValueNet | None = None
  net_cfg: M.NetConfig | None = None
  gbm: tuple | None = None
  scale: I.Scale | None = None  # the interval, once calibrated (validate)
  constant: float = 0.0  # the constant half-width of the same coverage (validate)

  def standardise(self, x: np.ndarray) -> np.ndarray:
    return M.standardise(x, self.mean, self.sd)

  def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(score, gain)`` for raw feature rows."""
    z = self.standardise(x)
    if self.kind == "net":
      return M.net_predict(self.net, z)
    return self.gbm[0].predict(z), self.gbm[1].predict(z)

  def half_widths(self, x: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """``[n]`` interval half-widths of raw feature rows with gain estimates ``gain``
    (as the loaded model gives them: ``interval.half_widths``)."""
    outside = outside_domain(x, self.low, self.high).any(-1)
    return I.half_widths(self.scale, self.standardise(x), gain, self.constant, outside)


def fit(t: Table, kind: str, net_cfg: M.NetConfig, seed: int = 0) -> Fitted:
  """Fits one model kind on a table."""
  mean, sd = M.feature_scale(t.x)
  z = M.standardise(t.x, mean, sd)
  scale = (mean, sd, t.x.min(0), t.x.max(0))
  if kind == "net":
    return Fitted(kind, *scale, net=M.fit_net(z, t.gain, t.group, net_cfg), net_cfg=net_cfg)
  if kind == "gbm":
    return Fitted(kind, *scale, gbm=M.fit_gbm(z, t.gain, t.group, seed))
  raise MetavalError(f"unknown model kind {kind!r}; use 'net' or 'gbm'")


def task_split(t: Table, val_share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """Boolean ``(train, val)`` row masks with whole tasks on one side."""
  tasks = np.unique(t.task)
  rng = np.random.default_rng(seed)
  val_tasks = rng.choice(tasks, max(1, int(round(val_share * len(tasks)))), replace=False)
  val = np.isin(t.task, val_tasks)
  return ~val, val


def validate(f: Fitted, va: Table, coverage: float, seed: int = 0) -> tuple:
  """A model fitted on training tasks, on the validation tasks: calibrates its interval
  (sets ``f.scale``) and returns ``(Spearman, constant half-width, interval report,
  Goodhart gate verdict)``."""
  score, gain = f.predict(va.x)
  spearman = group_spearman(score, va.gain, va.group)
  half = f.constant = I.conformal_q(np.abs(gain - va.gain), coverage)
  z = f.standardise(va.x)
  f.scale, interval = I.fit_scale(z, gain - va.gain, gain, va.task, coverage, seed, kind=va.kind)
  verdict = G.check(gain, f.half_widths(va.x, gain), va.kind, va.gain, va.group)
  return spearman, half, interval, verdict


def select_and_fit(
  t: Table, net_cfg: M.NetConfig, val_share=0.2, coverage=0.9, seed=0, gate=True, refit=False
):
  """Fits both model kinds on the training tasks; keeps the better on validation tasks.

  With ``gate`` a candidate must also pass the Goodhart gate on the validation
  tasks (``metaval.zeroshot.gate``): the best validation Spearman among the
  candidates that pass is kept; if none passes, the one that violates the fewest
  clear pairs over all junk kinds.

  With ``refit`` the chosen kind is fitted again, with the same settings, on every
  task (training and validation) and that model is returned. The report's
  validation figures, gate verdict and interval are those of the fit on the training
  tasks alone: the refit has no held-out tasks left to measure them on.

  The interval is scaled per query (``interval.fit_scale`` on the validation tasks);
  ``interval_half_width``, the one constant half-width of the same coverage, is kept
  in the report: the interval is never narrower than it outside the training domain.

  Returns:
    ``(Fitted, report)``; ``report`` holds the validation Spearman of each model and
    proxy, each candidate's gate verdict, the interval (its held-out coverage and
    widths against the constant one's) and whether the returned model was refitted.
  """
  train_m, val_m = task_split(t, val_share, seed)
  tr, va = t.select(train_m), t.select(val_m)
  report = {"train_rows": int(train_m.sum()), "val_rows": int(val_m.sum())}
  report["train_tasks"] = int(len(np.unique(tr.task)))
  report["val_tasks"] = int(len(np.unique(va.task)))
  kinds = ("net", "gbm")
  fitted, scores, gates, intervals = {}, {}, {}, {}
  for kind in kinds:
    fitted[kind] = fit(tr, kind, net_cfg, seed)
    scores[kind], _, intervals[kind], gates[kind] = validate(fitted[kind], va, coverage, seed)
  for j, name in enumerate(Z.PROXIES):
    scores[name] = group_spearman(va.x[:, j], va.gain, va.group)

  def spearman(k):
    return float(np.nan_to_num(scores[k], nan=-2.0))

  passing = [k for k in kinds if not gate or gates[k]["passed"]]
  if passing:
    best = max(passing, key=spearman)
  else:  # none passes: the fewest violated clear pairs, then the better ranking
    best = min(kinds, key=lambda k: (gates[k]["violation"], -spearman(k)))
  if refit:
    held = fitted[best]
    fitted[best] = fit(t, best, net_cfg, seed)
    fitted[best].scale, fitted[best].constant = held.scale, held.constant
  report.update(
    refit_on_all_tasks=bool(refit),
    chosen=best,
    val_spearman={k: round(v, 4) for k, v in scores.items()},
    interval_half_width=fitted[best].constant,
    interval=intervals[best],
    coverage=coverage,
    val_ceiling=group_spearman(va.split_a, va.split_b, va.group),
  )
  if gate:
    report["gate"] = {
      "clear": G.CLEAR,
      "max_violation": G.MAX_VIOLATION,
      "chosen_passed": gates[best]["passed"],
      **gates,
    }
  return fitted[best], report


def save(fitted: Fitted, report: dict, out: str) -> str:
  """Writes the model folder (``zeroshot.json`` and the weights) to ``out``."""
  os.makedirs(out, exist_ok=True)
  for stale in (WEIGHTS, GBM, LEGACY_GBM):
    if os.path.exists(os.path.join(out, stale)):
      os.remove(os.path.join(out, stale))
  meta = {
    "kind": fitted.kind,
    "features": list(Z.FEATURE_NAMES),
    "feature_mean": fitted.mean.tolist(),
    "feature_sd": fitted.sd.tolist(),
    "feature_min": fitted.low.tolist(),
    "feature_max": fitted.high.tolist(),
    "interval_half_width": report["interval_half_width"],
    "interval_scale": fitted.scale.to_dict() if fitted.scale else None,
    "coverage": report["coverage"],
    "net": dataclasses.asdict(fitted.net_cfg) if fitted.net_cfg else None,
    "report": report,
  }
  if fitted.kind == "net":
    io.save_npz(os.path.join(out, WEIGHTS), **M.to_arrays(fitted.net))
  else:
    rank_m, gain_m = (trees.Forest.from_sklearn(m) for m in fitted.gbm)
    io.save_npz(os.path.join(out, GBM), **rank_m.to_arrays("rank/"), **gain_m.to_arrays("gain/"))
  io.write_json(os.path.join(out, META), meta)
  return out


def ship(out: str, package_dir: str) -> None:
  """Copies a trained model folder over the packaged default."""
  os.makedirs(package_dir, exist_ok=True)
  for name in (META, WEIGHTS, GBM, LEGACY_GBM):
    dst = os.path.join(package_dir, name)
    if os.path.exists(dst):
      os.remove(dst)
    if os.path.exists(os.path.join(out, name)):
      shutil.copyfile(os.path.join(out, name), dst)
