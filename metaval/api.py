"""The Python API: ``load_predictor(path).value(supplemental, base=None, learner=None)``.

Example::

  import metaval.api as api
  p = api.load_predictor("runs/predictor_quick")
  facts = p.value((x_new, y_new))  # raw inputs and labels; base: the training base
  print(facts.text())
  order = p.rank([(x1, y1), (x2, y2), (x3, y3)])

Inputs are in the task's own raw space (digits pixels 0-16, a CSV's own columns and
labels): the task's stored transform (``Task.encode``, ``Task.encode_labels``) maps
them, so the internal standardised space never reaches the user. Code that already
holds internal points (pool rows, sampled supplements) passes ``inputs="internal"``.

A query featurises S against B (numpy; B's own features are cached) and runs one
jitted forward pass of the value model: no learner is trained.
"""

from __future__ import annotations

import dataclasses
import os

import jax
import numpy as np
from flax import nnx
from scipy import stats as sstats

from metaval.data import TaskError, encode_set, get_task
from metaval.data.validate import as_features, as_labels
from metaval.errors import MetavalError, message_line
from metaval.predictor import features as F
from metaval.predictor import novelty
from metaval.predictor.checkpoint import META_FILE, load_meta, restore_model
from metaval.predictor.data import Normalizer
from metaval.predictor.model import ModelConfig
from metaval.report.facts import NutritionFacts, TargetValue


class QueryError(MetavalError):
  """A value query is malformed (shape, NaN, empty set, unknown task or learner)."""


# The largest S and B a query accepts: featurising holds [n_S, n_B] float64 distances,
# under a gigabyte at 10,000 x 10,000; larger sets are refused rather than run out of memory.
MAX_SET_POINTS = 10_000
INPUT_SPACES = ("raw", "internal")  # the task's raw space (the default) or its internal one


def _as_xy(supplemental, lm: bool, what: str = "supplemental", internal: bool = True):
  """Accepts ``(x, y)``, ``{"x": .., "y": ..}`` or (code task only) bare tokens.

  ``internal`` inputs must be ``[n, d]`` already; raw inputs keep their shape for
  ``Task.encode`` (e.g. images ``[n, H, W]``) and their labels their type (strings).
  """
  if isinstance(supplemental, dict):
    if "x" not in supplemental:
      raise QueryError(f"a {what} dict needs an 'x' entry (and 'y' for labels)")
    x, y = supplemental["x"], supplemental.get("y")
  elif isinstance(supplemental, (tuple, list)) and len(supplemental) == 2:
    x, y = supplemental
  else:
    x, y = supplemental, None
  try:
    x = np.asarray(x)
  except (TypeError, ValueError) as e:
    raise QueryError(f"{what} inputs are not an array: {message_line(e, with_type=True)}") from None
  if internal and x.ndim != 2:
    raise QueryError(f"{what} inputs must be 2-D [n, features]; got shape {x.shape}")
  if x.ndim == 0 or x.shape[0] == 0:
    raise QueryError(f"the {what} set is empty" if x.ndim else f"{what} inputs are a scalar")
  if len(x) > MAX_SET_POINTS:
    raise QueryError(
      f"the {what} set has {len(x):,} points; a query takes at most {MAX_SET_POINTS:,} "
      "(subsample it, or split it and value the parts)"
    )
  if y is None:
    if not lm:
      raise QueryError("labels are required: pass (x, y)")
    y = np.zeros(len(x), np.int64)  # code windows: package 0 unless given
  try:
    return x, np.asarray(y)
  except (TypeError, ValueError) as e:
    raise QueryError(f"{what} labels are not an array: {message_line(e, with_type=True)}") from None


class Predictor:
  """A trained value predictor (see ``load_predictor``)."""

  def __init__(self, path: str):
    meta_path = os.path.join(path, META_FILE)
    if not os.path.isfile(meta_path):
      raise QueryError(f"no trained predictor at {path!r} (missing {META_FILE})")
    self.meta = load_meta(path)
    self.path = path
    self.targets: list[str] = self.meta["targets"]
    self.coverage = float(self.meta["coverage"])
    self.norm = Normalizer.from_dict(self.meta["normalizer"])
    self.calib = np.asarray(self.meta["calibration"], np.float32)
    self.cfg = ModelConfig(**self.meta["model"])
    self.model = restore_model(path, self.cfg, checksums=self.meta.get("checkpoint"))
    # A plain jax.jit over the split state: nnx.jit re-walks the module graph on
    # every call, which costs more than the forward pass itself at batch size 1.
    graphdef, self._state = nnx.split(self.model)
    self._forward = jax.jit(lambda state, batch: nnx.merge(graphdef, state)(**batch))
    self.featurizer = F.Featurizer(**self.meta["features"])
    self.tasks: dict = self.meta["tasks"]
    self._z = float(sstats.norm.ppf(0.5 + self.coverage / 2))
    self._learner_cache: dict = {}

  # -- inputs ------------------------------------------------------------------

  def _task(self, task):
    if task is not None and not isinstance(task, str):
      raise QueryError(f"task must be a task name (a string), got {type(task).__name__}")
    if task is None:
      if len(self.tasks) != 1:
        raise QueryError(
          f"this predictor knows several tasks; pass task= one of {list(self.tasks)}"
        )
      task = next(iter(self.tasks))
    if task not in self.tasks:
      raise QueryError(f"unknown task {task!r}; this predictor knows: {', '.join(self.tasks)}")
    info = self.tasks[task]
    # Options (a csv: task's label column, ...) rebuild a user-data task as trained.
    return get_task(task, seed=info["seed"], **info.get("options", {})), info

  def _set(self, view, x, y, inputs: str, what: str):
    """A set's embedded inputs and checked labels, from ``inputs`` space."""
    try:
      if inputs == "raw":
        x, y = encode_set(view.task, x, y, what)
      else:  # internal points: numbers and class ids, checked before any arithmetic
        x, y = as_features(x, f"{what} x"), as_labels(y, f"{what} y")
    except TaskError as e:
      raise QueryError(str(e)) from None
    if y.dtype.kind == "U":
      raise QueryError(f"{what} y must hold class ids here, got strings")
    if view.lm and np.array_equal(x, np.round(x)):  # token ids
      x = x.astype(np.int64)
    xe = F.embed_inputs(view, x)
    return xe, F.check_labels(view, y, len(xe))

  def _base(self, view, info, base, inputs: str):
    task = view.task
    if base is None:
      idx = np.asarray(info["base_indices"], np.int64)
      return view.pool[idx], task.y[idx].astype(np.int64)
    is_xy = isinstance(base, dict) or (
      isinstance(base, (tuple, list)) and len(base) == 2 and np.ndim(base[0]) >= 2
    )
    if is_xy:
      xb, yb = _as_xy(base, view.lm, "base", internal=inputs == "internal")
      return self._set(view, xb, yb, inputs, "base")
    try:
      idx = np.asarray(base)
    except (TypeError, ValueError):
      idx = np.zeros((0, 0))
    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
      raise QueryError("base must be pool indices [n] (int) or a pair (x, y)")
    if idx.size > MAX_SET_POINTS:
      raise QueryError(f"the base set has {idx.size:,} points; at most {MAX_SET_POINTS:,}")
    if idx.size == 0:
      raise QueryError("the base set is empty")
    if idx.min() < 0 or idx.max() >= task.pool_size:
      raise QueryError(f"base indices must be in [0, {task.pool_size}) for task {task.name!r}")
    return view.pool[idx], task.y[idx].astype(np.int64)

  def _learner(self, view, info, learner):
    """``(spec dict, num_params, descriptor)`` of the learner a query names.

    ``learner`` is ``None`` (the task's default learner), a ``LearnerSpec``, a dict
    (label-pipeline JSON included: its ``name`` and ``params`` keys are not fields and
    are dropped, any other unknown key is refused; missing fields take the default
    learner's values) or the name of a learner this predictor was trained with.
    """
    from metaval.learners.models import LearnerSpec, SpecError, num_params

    if learner is None:
      spec, n_params = info["learner"], info["learner_params"]
      return spec, n_params, F.learner_features(spec, n_params)
    fields = {f.name for f in dataclasses.fields(LearnerSpec)}
    if isinstance(learner, LearnerSpec):
      learner = learner.to_dict()
    elif isinstance(learner, str):
      named = dict(info.get("named_learners") or {})
      if info["learner"].get("name"):
        named.setdefault(str(info["learner"]["name"]), info["learner"])
      if learner not in named:
        known = ", ".join(sorted(named)) or "none"
        raise QueryError(f"unknown learner name {learner!r}; this predictor knows: {known}")
      learner = named[learner]
    if not isinstance(learner, dict):
      raise QueryError("learner must be a LearnerSpec, a dict of its fields or a learner name")
    default = {k: v for k, v in info["learner"].items() if k in fields}
    try:
      given = LearnerSpec.fields_of(learner)
      full = LearnerSpec(**{**default, **given})
    except (TypeError, ValueError, SpecError) as e:
      raise QueryError(f"bad learner: {e}") from None
    spec = full.to_dict()
    if learner.get("name"):
      spec["name"] = str(learner["name"])
    in_dim = 0 if view.lm else view.task.feature_dim
    n_params = num_params(full, in_dim, view.task.num_classes)
    lf = F.learner_features(spec, n_params)
    if not np.isfinite(lf).all():  # e.g. steps=1e400: the descriptor would be inf
      raise QueryError(f"bad learner: its fields must be finite numbers, got {given}")
    return spec, n_params, lf

  def _features(self, supplemental, base, learner, task, inputs="raw", seed=0):
    if inputs not in INPUT_SPACES:
      raise QueryError(f"inputs must be one of {', '.join(INPUT_SPACES)}; got {inputs!r}")
    task_obj, info = self._task(task)
    view = F.task_view(task_obj)
    xs, ys = _as_xy(supplemental, view.lm, internal=inputs == "internal")
    try:
      xs, ys = self._set(view, xs, ys, inputs, "supplemental")
      xb, yb = self._base(view, info, base, inputs)
      spec, n_params, lf = self._learner(view, info, learner)
      scale = self.featurizer.base(view, xb, yb)[0].scale
      verdict = novelty.repeats(xs, ys, xb, yb, novelty.NEAR_REPEAT_RADIUS * scale)
      pf = None
      if verdict.keep.any():
        keep = verdict.keep
        pf = self.featurizer.pair(view, xb, yb, xs[keep], ys[keep], lf, seed=seed)
    except F.FeatureError as e:
      raise QueryError(str(e)) from None
    ctx = {
      "task": task_obj.name,
      "learner": spec,
      "learner_params": int(n_params),
      "base_size": int(len(yb)),
      "base_default": base is None,
      "info": info,
      "supplement_size": int(len(ys)),
      "dropped_exact": verdict.num_exact,
      "dropped_near": verdict.num_near,
    }
    return pf, ctx

  # -- queries -----------------------------------------------------------------

  def _predict(self, pf: F.PairFeatures):
    inputs = self.norm.inputs(pf)
    mean, log_sigma = self._forward(self._state, inputs)
    mean = np.asarray(mean) * self.norm.y_sd + self.norm.y_mu
    half = self._z * self.calib * np.exp(np.asarray(log_sigma)) * self.norm.y_sd
    if not (np.isfinite(mean).all() and np.isfinite(half).all()):
      # Every input is checked finite first; this guards the model against extremes.
      raise QueryError("the value model gave a non-finite value for this query")
    return mean, half

  def value(
    self, supplemental, base=None, learner=None, *, task=None, inputs: str = "raw"
  ) -> NutritionFacts:
    """Predicted improvement of training on B ∪ S over B, per target metric.

    Args:
      supplemental: ``(x [n, ...], y [n])`` numpy arrays (or a dict with ``x``, ``y``)
        in the task's raw space: inputs as in the task's own data (e.g. digits pixels
        0-16, a CSV's feature columns, images) and labels as in its data (e.g.
        ``"cat"``); for the code task ``x`` holds token windows and ``y`` (package
        ids) is optional. At most ``MAX_SET_POINTS`` points.
      base: ``None`` (the predictor's default base for the task), pool indices
        ``[n_B]`` of the task, or ``(x_B, y_B)`` in the same space as ``supplemental``.
      learner: ``None`` (the default learner), a ``LearnerSpec``, a dict of its
        fields (missing fields take the default learner's values; other keys, such
        as the label pipeline's ``name`` and ``params``, are ignored) or the name
        of a learner the predictor was trained with.
      task: the base task (needed only when the predictor knows several).
      inputs: ``"raw"`` (the default; the task's stored transform is applied) or
        ``"internal"`` for points already in the task's internal space (``task.x``,
        sampled supplements) with class ids as labels.

    Returns:
      ``NutritionFacts`` with per-metric value, interval and warnings.

    Raises:
      QueryError: inputs that do not fit the task (shape, NaN/inf, unknown labels),
        an empty or too large set, unknown task, bad learner.
    """
    pf, ctx = self._features(supplemental, base, learner, task, inputs)
    if pf is None:
      return self._facts(None, ctx, np.zeros(len(self.targets)), np.zeros(len(self.targets)))
    mean, half = self._predict(pf)
    return self._facts(pf, ctx, mean[0], half[0])

  def rank(self, supplements, base=None, learner=None, *, task=None, inputs: str = "raw"):
    """Ranks several supplements by predicted value of the first target metric.

    Args:
      supplements: supplemental sets, each as for ``value``.
      base: as for ``value``.
      learner: as for ``value``.
      task: as for ``value``.
      inputs: as for ``value``.

    Returns:
      A list of ``(index, NutritionFacts)``, best first.

    Raises:
      QueryError: no sets, or any set ``value`` would refuse.
    """
    try:
      supplements = list(supplements)
    except TypeError:
      raise QueryError("rank() takes a list of supplemental sets") from None
    if not supplements:
      raise QueryError("rank() needs at least one supplemental set")
    parts = [self._features(s, base, learner, task, inputs) for s in supplements]
    live = [i for i, (p, _) in enumerate(parts) if p is not None]
    n_t = len(self.targets)
    mean, half = np.zeros((len(parts), n_t)), np.zeros((len(parts), n_t))
    pfs = {}
    if live:
      pf = F.PairFeatures.concatenate([parts[i][0] for i in live])
      mean[live], half[live] = self._predict(pf)
      pfs = {i: pf.take([j]) for j, i in enumerate(live)}
    facts = [self._facts(pfs.get(i), parts[i][1], mean[i], half[i]) for i in range(len(parts))]
    order = np.argsort(-mean[:, 0], kind="stable")
    return [(int(i), facts[i]) for i in order]

  # -- facts -------------------------------------------------------------------

  def _facts(self, pf, ctx, mean, half) -> NutritionFacts:
    info = ctx["info"]
    base_metric = np.asarray(info["base_metric"], np.float64)
    rows = []
    for t, name in enumerate(self.targets):
      bm = float(base_metric[t]) if ctx["base_default"] else None
      share = None
      if bm is not None and name.endswith("accuracy") and bm > 0:
        share = float(mean[t] / bm)
      rows.append(
        TargetValue(
          metric=name,
          value=float(mean[t]),
          low=float(mean[t] - half[t]),
          high=float(mean[t] + half[t]),
          base_metric=bm,
          share_of_base=share,
        )
      )
    sets = dict(zip(F.SET_FEATURES, pf.sets[0].tolist())) if pf is not None else {}
    exact, near = ctx["dropped_exact"], ctx["dropped_near"]
    warnings = [] if pf is None else warnings_for(sets, ctx, rows)
    if exact or near:
      kinds = []
      if exact:
        kinds.append(f"{exact} repeat points already in B or in S (same input and label)")
      if near:
        kinds.append(
          f"{near} lie within {novelty.NEAR_REPEAT_RADIUS:g} x B's typical nearest-neighbour "
          "distance of a same-label point of B or S (near repeats)"
        )
      warnings.insert(
        0,
        f"of {ctx['supplement_size']} points of S, {' and '.join(kinds)}: they are valued at zero"
        + ("; nothing new is left, so S is worth nothing" if pf is None else ""),
      )
    diagnostics = {k: round(float(v), 4) for k, v in sets.items()}
    diagnostics["dropped_exact_duplicates"] = exact
    diagnostics["dropped_near_duplicates"] = near
    return NutritionFacts(
      task=ctx["task"],
      supplement_size=ctx["supplement_size"],
      base_size=ctx["base_size"],
      learner=ctx["learner"],
      learner_params=ctx["learner_params"],
      coverage=self.coverage,
      targets=rows,
      warnings=warnings,
      diagnostics=diagnostics,
      predictor=os.path.abspath(self.path),
    )


def warnings_for(sets: dict, ctx: dict, rows) -> list[str]:
  """Plain-language warnings from a pair's set statistics."""
  out = []
  if sets["share_exact_dup"] >= 0.2:
    out.append(
      f"likely duplicates: {sets['share_exact_dup']:.0%} of S are exact copies of B points"
    )
  elif sets["share_near_dup"] >= 0.3:
    out.append(f"near duplicates: {sets['share_near_dup']:.0%} of S lie very close to B points")
  if sets["share_dup_within_set"] >= 0.3:
    out.append(f"repeated points: {sets['share_dup_within_set']:.0%} of S duplicate each other")
  disagree = 1.0 - sets["mean_knn_agreement"]
  if disagree >= 0.3 and sets["share_far"] < 0.5:
    out.append(f"possible label noise: {disagree:.0%} of S's labels disagree with B's neighbours")
  if sets["share_constant_rows"] >= 0.5 or sets["share_unique_rows"] <= 0.2:
    out.append("near-constant inputs: most S points are identical or have no variation")
  if sets["share_far"] >= 0.5:
    out.append(f"out of domain: {sets['share_far']:.0%} of S lie far from every B point")
  info = ctx["info"]
  if ctx["learner_params"] > info.get("max_learner_params", ctx["learner_params"]):
    out.append("learner larger than any seen in training: the prediction extrapolates")
  if rows and rows[0].low <= 0 <= rows[0].high:
    out.append(f"the {rows[0].metric} interval includes zero: the gain may be nil")
  return out


def novel_points(xs, ys, xb, yb, radius: float = 0.0) -> np.ndarray:
  """``[n_S]`` bool: the points of S that are not repeats of B or of earlier points of S.

  The value policy of the API (``metaval.predictor.novelty``): data the buyer
  already has, or the same point sold twice, is worth nothing, so repeats are
  dropped before the predictor sees S (retraining agrees: repeats of B move the
  model by about nothing, and they are the cheapest way to game a size-sensitive
  estimate). A repeat with a *different* label is not a duplicate (it is label
  noise) and is kept and valued.

  Args:
    xs: ``[n_S, d]`` inputs of S.
    ys: ``[n_S]`` labels of S.
    xb: ``[n_B, d]`` inputs of B.
    yb: ``[n_B]`` labels of B.
    radius: near-repeat distance in input units; 0 (the default) drops exact repeats
      only. ``Predictor.value`` uses ``NEAR_REPEAT_RADIUS`` times B's scale.

  Returns:
    The keep mask.
  """
  return novelty.repeats(xs, ys, xb, yb, radius).keep


def load_predictor(path: str | None = None):
  """Loads a value predictor.

  Args:
    path: ``None`` for the zero-shot model shipped with the package, a folder
      written by ``metaval zeroshot-train`` (it holds ``zeroshot.json``), or the
      workdir of ``metaval train``.

  Returns:
    A ``metaval.zeroshot.ZeroShotPredictor`` (raw arrays of any task) or a
    ``Predictor`` (the tasks it was trained on).
  """
  from metaval import zeroshot

  if path is None or zeroshot.is_model_dir(path):
    return zeroshot.load(path)
  return Predictor(path)
