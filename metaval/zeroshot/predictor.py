"""``ZeroShotPredictor``: value any tabular supplement from raw arrays.

Example::

  import metaval
  p = metaval.load_predictor()  # the model shipped inside the package
  facts = p.value((x_s, y_s), base=(x_b, y_b), eval=(x_t, y_t), learner="mlp32")
  print(facts.text())

``base`` and ``eval`` are raw arrays of any width (at most ``MAX_CLASSES`` classes);
B's own mean and standard deviation standardise every set. Without ``eval`` a
stratified quarter of B (seeded) is held out as the evaluation set and the value
is that of S for the remaining three quarters. ``base`` may also name a built-in
task (``"wine"``): its training pool is B and its test set is the evaluation set,
both in the task's raw input space.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import os
import pickle
import zlib
from collections.abc import Mapping

import numpy as np

from metaval.data.table import frame_digest
from metaval.errors import MetavalError
from metaval.learners.models import LearnerSpec, SpecError, num_params
from metaval.report.facts import NutritionFacts, TargetValue
from metaval.zeroshot import features as Z
from metaval.zeroshot import interval as I
from metaval.zeroshot import model as M
from metaval.zeroshot import trees
from metaval.zeroshot.checks import coarse_eval_note
from metaval.zeroshot.domain import domain_warning, outside_domain
from metaval.zeroshot.inputs import column_fill, fill_missing, split_pair, tabular

META = "zeroshot.json"
WEIGHTS = "weights.npz"
GBM = "gbm.npz"  # both boosted models as packed tree arrays (metaval.zeroshot.trees)
LEGACY_GBM = "gbm.pkl"  # scikit-learn pickles, as written before the packed format
DEFAULT_LEARNER = "mlp32"
HOLDOUT = 0.25  # share of B held out as the evaluation set when none is given


class ZeroShotError(MetavalError):
  """A zero-shot query or model file is malformed."""


def default_path() -> str:
  """The folder of the model shipped inside the package."""
  return str(importlib.resources.files("metaval.zeroshot") / "default")


def is_model_dir(path: str) -> bool:
  """True when ``path`` holds a zero-shot model (its ``zeroshot.json``)."""
  return os.path.isfile(os.path.join(path, META))


def parse_learner(learner) -> LearnerSpec:
  """``None`` | ``"linear"`` | ``"mlp32"`` / ``"mlp64x2"`` | dict | ``LearnerSpec`` -> spec."""
  if learner is None:
    learner = DEFAULT_LEARNER
  if isinstance(learner, LearnerSpec):
    return learner
  try:
    if isinstance(learner, dict):
      return LearnerSpec(**LearnerSpec.fields_of(learner))
    if isinstance(learner, str):
      if learner == "linear":
        return LearnerSpec(family="linear", steps=150)
      if learner.startswith("mlp"):
        width, x, depth = learner[3:].partition("x")
        if not width.isdigit() or not (depth if x else "1").isdigit():
          raise ZeroShotError(
            f"bad learner {learner!r}: an MLP is named 'mlp<width>' or 'mlp<width>x<depth>' "
            "(e.g. 'mlp32', 'mlp64x2')"
          )
        return LearnerSpec(family="mlp", width=int(width), depth=int(depth or 1), steps=150)
  except (ValueError, TypeError, SpecError) as e:
    raise ZeroShotError(f"bad learner {learner!r}: {e}") from None
  raise ZeroShotError(
    f"learner must be 'linear', 'mlp<width>[x<depth>]', a dict or a LearnerSpec; got {learner!r}"
  )


def holdout_split(y: np.ndarray, share: float = HOLDOUT, seed: int = 0):
  """Stratified ``(keep, held_out)`` indices of B (at least one kept per class)."""
  rng = np.random.default_rng(seed)
  keep, held = [], []
  for c in np.unique(y):
    idx = rng.permutation(np.flatnonzero(y == c))
    n_held = int(round(share * len(idx))) if len(idx) > 1 else 0
    held.append(idx[:n_held])
    keep.append(idx[n_held:])
  keep, held = np.sort(np.concatenate(keep)), np.sort(np.concatenate(held))
  if len(held) == 0:
    raise ZeroShotError("the base set is too small to hold out an evaluation set; pass eval=")
  return keep, held


@functools.lru_cache(maxsize=64)
def _num_params(spec: LearnerSpec, width: int, classes: int) -> int:
  # ``num_params`` initialises the learner in JAX (about a tenth of a second): once per shape.
  return num_params(spec, width, classes)


def _builtin(name: str):
  """A built-in task's raw training pool and raw test set."""
  from metaval.data import get_task

  task = get_task(name)
  if task.kind != "classification" or task.transform is None:
    raise ZeroShotError(f"task {name!r} is not a tabular classification task with raw inputs")
  classes = np.asarray(task.classes) if task.classes else None
  x_t, y_t = task.evals["test"]

  def raw(x, y):
    return task.decode(x), (classes[y] if classes is not None else y)

  return raw(task.x, task.y), raw(x_t, y_t)


class ZeroShotPredictor:
  """The zero-shot value model (see the module docstring; ``load`` builds one)."""

  def __init__(self, path: str | None = None):
    path = default_path() if path is None else path
    if not is_model_dir(path):
      raise ZeroShotError(f"no zero-shot model at {path!r} (missing {META})")
    with open(os.path.join(path, META)) as f:
      self.meta = json.load(f)
    if tuple(self.meta["features"]) != Z.FEATURE_NAMES:
      raise ZeroShotError(f"model at {path!r} was trained on other features; retrain it")
    self.path = path
    self.kind = self.meta["kind"]
    self.mean = np.asarray(self.meta["feature_mean"], np.float32)
    self.sd = np.asarray(self.meta["feature_sd"], np.float32)
    self.half_width = float(self.meta["interval_half_width"])
    self.coverage = float(self.meta["coverage"])
    # The interval scaled per query (older models: the constant half_width).
    scale = self.meta.get("interval_scale")
    self.scale = I.Scale.from_dict(scale) if scale else None
    # The range of every feature over the training rows (older models lack it: no check).
    self.low = np.asarray(self.meta.get("feature_min", []), np.float64)
    self.high = np.asarray(self.meta.get("feature_max", []), np.float64)
    if self.kind == "net":
      with np.load(os.path.join(path, WEIGHTS)) as w:
        arrays = dict(w)
      cfg = M.NetConfig(**self.meta["net"])
      self.net = M.from_arrays(arrays, len(Z.FEATURE_NAMES), cfg)
      import jax
      from flax import nnx

      graphdef, state = nnx.split(self.net)
      fwd = jax.jit(lambda st, x: nnx.merge(graphdef, st)(x))
      self._forward = lambda x: tuple(np.asarray(a) for a in fwd(state, x))
    elif self.kind == "gbm":
      self.gbm = _load_forests(path)
      self._forests = trees.Stacked(self.gbm)  # both walked in one pass
    else:
      raise ZeroShotError(f"unknown zero-shot model kind {self.kind!r}")
    self._ctx, self._ctx_key, self._ctx_suffix, self._fill = None, None, "", None
    self._table = None  # B's DataFrame encoding (text columns), with the last context
    self._frames: dict = {}  # (role, frame digest, table) -> encoded inputs, one per role
    self._learners: dict = {}  # (width, classes, learner name) -> (spec dict, parameter count)

  # -- inputs --------------------------------------------------------------------

  def context(self, base, eval=None) -> tuple[Z.Context, str]:
    """The ``Context`` of a (B, T) pair (the last one is cached) and the task's name."""
    name = "user data"
    if isinstance(base, str):
      name = base
      base, builtin_eval = _builtin(base)
      eval = builtin_eval if eval is None else eval
    base, notes, table = self._tabular(base, "base", None, fit=True)
    xb, yb = Z.as_arrays(base, "base", missing=True)
    key = [_fingerprint(xb), _fingerprint(yb), table]
    if eval is not None:
      eval, eval_notes, _ = self._tabular(eval, "eval", table)
      notes += eval_notes
      xe, ye = Z.as_arrays(eval, "eval", missing=True)
      key += [_fingerprint(xe), _fingerprint(ye)]
    key = tuple(key)
    if self._ctx_key == key:
      return self._ctx, name + self._ctx_suffix
    # Missing inputs (NaN) take B's column medians, in B, T and every supplement.
    fill = column_fill(xb)
    xb, gaps = fill_missing(xb, fill)
    notes += [f"base: {gaps} missing input cell(s) (NaN) filled with B's column medians"] * bool(
      gaps
    )
    if eval is None:
      keep, held = holdout_split(yb)
      eval, base = (xb[held], yb[held]), (xb[keep], yb[keep])
      self._ctx_suffix = f" (eval: {HOLDOUT:.0%} of B held out)"
    else:
      if xe.shape[1] != xb.shape[1]:
        raise Z.FeatureError(f"eval has {xe.shape[1]} features but base has {xb.shape[1]}")
      xe, gaps = fill_missing(xe, fill)
      notes += [f"eval: {gaps} missing input cell(s) (NaN) filled with B's column medians"] * bool(
        gaps
      )
      eval, base, self._ctx_suffix = (xe, ye), (xb, yb), ""
    ctx = Z.Context(base, eval)
    ctx.notes += notes
    self._ctx, self._ctx_key, self._fill, self._table = ctx, key, fill, table
    return ctx, name + self._ctx_suffix

  def _tabular(self, data, what: str, table, fit: bool = False):
    """``inputs.tabular``, B's and the evaluation set's pandas frames encoded once: the
    last encoding of each is kept under its frame's digest (``table.frame_digest``),
    so repeated queries on the same frames read no cell again."""
    x, y = split_pair(data, what)
    digest = frame_digest(x)
    if digest is None:
      return tabular(data, what, table, fit)
    key = (what, digest, table)
    if key not in self._frames:
      self._frames = {k: v for k, v in self._frames.items() if k[0] != what}
      self._frames[key] = tabular(data, what, table, fit)
    (encoded, _), notes, fitted = self._frames[key]
    return (encoded, y), list(notes), fitted

  def featurize(self, supplements, base, eval=None, learner=None) -> tuple[np.ndarray, dict]:
    """``[n, F]`` raw features of each supplement and the query's context facts."""
    ctx, name = self.context(base, eval)
    q = self._query(ctx, name, learner)
    return ctx.features_many(self._filled(supplements)[0], q["spec"], q["params"]), q

  def _filled(self, supplements) -> tuple[list, list[int], list[list[str]]]:
    """Supplements as arrays (DataFrames encoded as B's: ``inputs.tabular``), their missing
    inputs (NaN) filled with B's column medians (the last context's), how many cells
    each had filled and each one's encoding notes."""
    out, gaps, notes = [], [], []
    for sup in supplements:
      sup, said, _ = tabular(sup, "supplemental", self._table)
      notes.append(said)
      xs, ys = Z.as_arrays(sup, "supplemental", missing=True)
      if xs.shape[1] != len(self._fill):
        raise Z.FeatureError(
          f"supplemental has {xs.shape[1]} features but base has {len(self._fill)}"
        )
      xs, n = fill_missing(xs, self._fill)
      out.append((xs, ys))
      gaps.append(n)
    return out, gaps, notes

  def standardise(self, rows: np.ndarray) -> np.ndarray:
    """Feature rows as the model reads them (standardised by its training rows, clipped)."""
    return M.standardise(rows, self.mean, self.sd)

  def half_widths(self, rows: np.ndarray, gain: np.ndarray, outside=None) -> np.ndarray:
    """``[n]`` half-widths of the gain's interval for feature rows and their gain
    estimates (``interval.half_widths``: scaled, never narrower than the constant one
    outside the training domain; ``outside``: ``outside_domain`` of the rows, when
    already known)."""
    if outside is None and len(self.low):
      outside = outside_domain(rows, self.low, self.high)
    outside = None if outside is None else outside.any(-1)
    return I.half_widths(self.scale, self.standardise(rows), gain, self.half_width, outside)

  def predict(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(score, gain)`` per feature row: the ranking score and the raw-gain estimate."""
    x = self.standardise(rows)
    if self.kind == "net":
      score, gain = self._forward(x)
      return score, gain / 10.0
    return self._forests.predict(x)

  # -- queries -------------------------------------------------------------------

  def value(self, supplemental, base, eval=None, learner=None, name: str = "supplemental set"):
    """The Nutrition Facts of one supplement.

    Args:
      supplemental: ``(x_S, y_S)`` raw inputs and labels (same width as B).
      base: ``(x_B, y_B)`` raw arrays, or a built-in task name.
      eval: ``(x_T, y_T)`` the set the gain is measured on (default: a stratified
        quarter of B held out).
      learner: ``"linear"``, ``"mlp<width>[x<depth>]"``, a dict or a ``LearnerSpec``.
      name: the label's title.

    Returns:
      ``NutritionFacts`` with the predicted gain in accuracy, its interval and sign.
    """
    return self.rank([supplemental], base, eval, learner, names=[name])[0][1]

  def rank(self, supplements, base, eval=None, learner=None, names=None):
    """Values several supplements against one (B, T); best first.

    Args:
      supplements: a list of ``(x_S, y_S)``, or a dict of them by name.
      base: as in ``value``.
      eval: as in ``value``.
      learner: as in ``value``.
      names: optional titles, one per supplement (a dict's keys by default).

    Returns:
      A list of ``(index, NutritionFacts)`` ordered by the ranking score, best first;
      for a dict, ``(key, NutritionFacts)``.
    """
    keys = None
    if isinstance(supplements, Mapping):
      keys = list(supplements)
      names = names or [str(k) for k in keys]
    supplements = list(supplements.values() if keys is not None else supplements)
    if not supplements:
      raise ZeroShotError("no supplements to value")
    names = names or [f"supplement {i}" for i in range(len(supplements))]
    if len(names) != len(supplements):
      raise ZeroShotError(f"{len(names)} names for {len(supplements)} supplements")
    ctx, task = self.context(base, eval)
    q = self._query(ctx, task, learner)
    supplements, filled, encoding = self._filled(supplements)
    kept = ctx.new_points_many(supplements)
    live = [i for i, ((_, ys), _) in enumerate(kept) if len(ys)]
    score = np.full(len(supplements), -np.inf)  # copies of B alone rank last
    facts = [None] * len(supplements)
    if live:
      sets = [kept[i][0] for i in live]
      # The checks beside the features when those take several batches (on threads).
      several = len(ctx.batches([len(y) for _, y in sets])) > 1
      checks = Z.beside(ctx.checks_many, sets, threaded=several)
      rows = ctx.features_many(sets, q["spec"], q["params"])
      s_live, gain = self.predict(rows)
      outside = outside_domain(rows, self.low, self.high) if len(self.low) else None
      half = self.half_widths(rows, gain, outside)
      checks = checks()
      for j, i in enumerate(live):
        score[i] = s_live[j]
        facts[i] = self._facts(
          rows[j], gain[j], half[j], s_live[j], q, names[i], kept[i][1], checks[j],
          None if outside is None else outside[j],
        )  # fmt: skip
    for i in range(len(supplements)):
      if facts[i] is None:
        facts[i] = self._copies_only(q, names[i], kept[i][1])
      if filled[i]:
        facts[i].warnings.append(
          f"{filled[i]} missing input cell(s) (NaN) of S filled with B's column medians"
        )
      facts[i].warnings.extend(encoding[i])
    order = np.argsort(-score, kind="stable")
    return [(int(i) if keys is None else keys[i], facts[i]) for i in order]

  def _query(self, ctx, name, learner) -> dict:
    """The facts of one query: its context, task name, learner spec and parameter count.

    A learner named by a string (or None) is parsed once per task shape: parsing,
    validating and counting parameters cost as much as a tenth of a query."""
    named = learner is None or isinstance(learner, str)
    key = (ctx.xb.shape[1], ctx.k, learner) if named else None
    found = self._learners.get(key)
    if found is None:
      spec = parse_learner(learner)
      found = (spec.to_dict(), _num_params(spec, ctx.xb.shape[1], ctx.k - 1))
      if named:
        self._learners = {key: found}  # the last query's only
    return {"ctx": ctx, "name": name, "spec": dict(found[0]), "params": found[1]}

  def _label(self, q, name, n_s, target, warnings, diagnostics) -> NutritionFacts:
    return NutritionFacts(
      task=q["name"],
      supplement_size=n_s,
      base_size=q["ctx"].n_b,
      learner=q["spec"],
      learner_params=int(q["params"]),
      coverage=self.coverage,
      targets=[target],
      warnings=warnings,
      diagnostics=diagnostics,
      predictor=f"zero-shot ({self.kind}) {self.path}",
      name=name,
    )

  def _facts(
    self, row, gain, half, score, q, name, copies=0, checks=(), outside=None
  ) -> NutritionFacts:
    n_new = int(round(np.exp(row[Z.FEATURE_NAMES.index("log_n_supp")])))
    lo, hi = float(gain) - float(half), float(gain) + float(half)
    warnings = list(checks)
    if len(self.low):
      said = domain_warning(row, self.low, self.high, outside)
      warnings += [said] if said else []
    if hi < 0:
      warnings.append("predicted to hurt: the whole interval is below zero")
    step = 1.0 / q["ctx"].n_eval
    if step > float(half):
      warnings.append(coarse_eval_note(q["ctx"].n_eval, float(half)))
    if copies:
      warnings.append(q["ctx"].copies_note(copies, n_new + copies))
    base_acc = float(q["ctx"].base_scores["logit"][0])
    target = TargetValue(
      metric="eval/accuracy", value=float(gain), low=lo, high=hi, base_metric=base_acc
    )
    proxies = {p: float(row[i]) for i, p in enumerate(Z.PROXIES)}
    diagnostics = {
      "score": float(score),
      "sign": int(np.sign(gain)),
      "proxies": proxies,
      "base_copies": copies,
    }
    return self._label(q, name, n_new + copies, target, warnings, diagnostics)

  def _copies_only(self, q, name, copies: int) -> NutritionFacts:
    """A set whose every point copies B: no new data, worth nothing by construction."""
    base_acc = float(q["ctx"].base_scores["logit"][0])
    target = TargetValue(metric="eval/accuracy", value=0.0, low=0.0, high=0.0, base_metric=base_acc)
    warnings = [q["ctx"].copies_note(copies, copies)]
    diagnostics = {"score": float("-inf"), "sign": 0, "proxies": {}, "base_copies": copies}
    return self._label(q, name, copies, target, warnings, diagnostics)


def _fingerprint(a) -> tuple:
  """An array's contents, cheaply: shape, dtype and two checksums of its bytes, read in
  place (copying a large B to hash it cost more than the query; a B changed in place
  gets a new fingerprint, so a stale context is never reused)."""
  a = np.ascontiguousarray(a)
  data = a.tobytes() if a.dtype.kind == "O" else a.reshape(-1).view(np.uint8)
  return a.shape, a.dtype.str, zlib.crc32(data), zlib.adler32(data)


def _load_forests(path: str) -> tuple[trees.Forest, trees.Forest]:
  """The (rank, gain) forests of a model folder; older folders hold sklearn pickles."""
  packed = os.path.join(path, GBM)
  if os.path.exists(packed):
    try:
      with np.load(packed, allow_pickle=False) as z:
        forests = tuple(trees.Forest.from_arrays(z, p) for p in ("rank/", "gain/"))
    except (OSError, ValueError) as e:
      raise ZeroShotError(f"cannot read {packed}: {e}") from None
    except MetavalError as e:
      raise ZeroShotError(f"{packed}: {e}") from None
  elif os.path.exists(os.path.join(path, LEGACY_GBM)):
    with open(os.path.join(path, LEGACY_GBM), "rb") as f:
      forests = tuple(trees.Forest.from_sklearn(m) for m in pickle.load(f))
  else:
    raise ZeroShotError(f"model at {path!r} lacks its trees ({GBM})")
  if any(f.feature.max(initial=0) >= len(Z.FEATURE_NAMES) for f in forests):
    raise ZeroShotError(f"model at {path!r} tests features it does not have; retrain it")
  return forests


def load(path: str | None = None) -> ZeroShotPredictor:
  """The zero-shot model at ``path`` (default: the one shipped with the package)."""
  return ZeroShotPredictor(path)
