"""A prior over tabular classification tasks: seeded synthetic tasks of many shapes.

``sample_task(seed)`` draws a ``TaskSpec`` (width, class count, sizes, structure,
redundancy, imbalance, noise) and builds a ``metaval.data.Task`` from it, the same
type the built-in tasks are: a training pool, a held-out evaluation set ``"test"``
drawn from the same distribution, and standardisation fitted on the pool alone.
A task is rebuilt exactly from its spec (``build_task(spec)``), so label datasets
store specs and indices, never the task's arrays.

Structures (``TaskSpec.structure``):

* ``clusters``: each class is a mixture of Gaussian clusters with random centres and
  random (anisotropic) covariances in the informative subspace.
* ``teacher``: inputs from a Gaussian (or uniform) latent, labels by the arg-max of a
  random ReLU/tanh network (``depth`` 0 is a linear teacher).

Then, for both: redundant features (random linear combinations of the informative
ones, plus a little noise), irrelevant features (pure noise), warped features
(exp, cube or integer rounding: skewed, heavy-tailed or ordinal-looking columns),
per-column random scales and offsets, a random column order, class imbalance
(class shares from a Dirichlet) and label noise (a share of labels moved to another
class, in pool and evaluation set alike).
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np

from metaval.data.tasks import Task, classification_task
from metaval.errors import MetavalError

STRUCTURES = ("clusters", "teacher")

# Default ranges of ``sample_spec`` (inclusive); each can be overridden by keyword.
DEFAULT_RANGES = dict(
  dim=(2, 64),
  num_classes=(2, 10),
  pool_size=(60, 2000),
  eval_size=(200, 500),
  label_noise=(0.0, 0.2),
)

# A class never has fewer pool / evaluation points than this (so every class can be
# learnt from and scored, even under strong imbalance).
MIN_PER_CLASS = 4


class PriorError(MetavalError):
  """A prior task spec or its ranges are not valid."""


@dataclasses.dataclass(frozen=True)
class TaskSpec:
  """Everything that makes one generated task (the task is a pure function of it).

  Attributes:
    seed: seed of the task's own random generator.
    dim: number of features in all.
    informative: features carrying the class signal (latent dimensions).
    redundant: features that are noisy linear combinations of informative ones.
    num_classes: number of classes.
    pool_size: points in the training pool.
    eval_size: points in the held-out evaluation set.
    structure: ``"clusters"`` or ``"teacher"``.
    clusters_per_class: Gaussian clusters per class (``clusters``).
    class_sep: spread of the cluster centres (``clusters``), in latent units.
    depth: hidden layers of the teacher network (0 = linear teacher).
    hidden: hidden width of the teacher network.
    activation: ``"relu"`` or ``"tanh"`` (teacher).
    latent: ``"gaussian"`` or ``"uniform"`` latent inputs (teacher).
    imbalance: Dirichlet concentration of the class shares (large = balanced).
    label_noise: share of labels moved to a different class.
    warped: features passed through a monotone or rounding warp.
    discrete: features made categorical: each cut at its quantiles into 2 to 5 levels
      (integer codes, as binary or categorical columns of real tables are).
  """

  seed: int
  dim: int
  informative: int
  redundant: int
  num_classes: int
  pool_size: int
  eval_size: int
  structure: str
  clusters_per_class: int = 1
  class_sep: float = 2.0
  depth: int = 1
  hidden: int = 16
  activation: str = "relu"
  latent: str = "gaussian"
  imbalance: float = 100.0
  label_noise: float = 0.0
  warped: int = 0
  discrete: int = 0

  def __post_init__(self):
    if self.structure not in STRUCTURES:
      raise PriorError(f"structure must be one of {STRUCTURES}, got {self.structure!r}")
    if not 1 <= self.informative <= self.dim or self.redundant < 0:
      raise PriorError(
        f"need 1 <= informative <= dim and redundant >= 0, got informative="
        f"{self.informative}, redundant={self.redundant}, dim={self.dim}"
      )
    if self.informative + self.redundant > self.dim:
      raise PriorError(f"informative + redundant ({self.informative + self.redundant}) > dim")
    if self.num_classes < 2:
      raise PriorError(f"num_classes must be >= 2, got {self.num_classes}")
    least = MIN_PER_CLASS * self.num_classes
    if self.pool_size < least or self.eval_size < least:
      raise PriorError(f"pool_size and eval_size must be >= {least} for {self.num_classes} classes")
    if not 0.0 <= self.label_noise < 1.0:
      raise PriorError(f"label_noise must be in [0, 1), got {self.label_noise}")
    if not 0 <= self.warped <= self.dim:
      raise PriorError(f"warped must be in [0, dim], got {self.warped}")
    if not 0 <= self.discrete <= self.dim:
      raise PriorError(f"discrete must be in [0, dim], got {self.discrete}")

  @property
  def name(self) -> str:
    """The task's name, ``prior:<seed>``."""
    return f"prior:{self.seed}"

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), sort_keys=True)

  @classmethod
  def from_json(cls, text: str) -> TaskSpec:
    return cls(**json.loads(text))


def _int_range(rng, lo_hi, log: bool = False) -> int:
  lo, hi = (int(v) for v in lo_hi)
  if lo > hi:
    raise PriorError(f"range ({lo}, {hi}) is empty")
  if log:
    return int(min(hi, max(lo, math.floor(math.exp(rng.uniform(math.log(lo), math.log(hi + 1)))))))
  return int(rng.integers(lo, hi + 1))


def sample_spec(seed: int, **ranges) -> TaskSpec:
  """Draws a task spec from the prior.

  Args:
    seed: the spec's seed (also the built task's seed).
    **ranges: ``(lo, hi)`` overrides of ``DEFAULT_RANGES`` (``dim``, ``num_classes``,
      ``pool_size``, ``eval_size``, ``label_noise``), ``structure`` to fix it, or
      ``discrete``: the range of the share of features made categorical (none unless
      given; drawn after everything else, so the other draws stay those of the seed).

  Returns:
    The ``TaskSpec``.
  """
  options = {*DEFAULT_RANGES, "structure", "discrete"}
  unknown = set(ranges) - options
  if unknown:
    raise PriorError(f"unknown prior range(s) {sorted(unknown)}; use {sorted(options)}")
  r = {**DEFAULT_RANGES, **{k: v for k, v in ranges.items() if k not in ("structure", "discrete")}}
  rng = np.random.default_rng([int(seed), 0x5EC])
  # Widths, sizes and class counts log-uniform: every octave is as common.
  dim = _int_range(rng, r["dim"], log=True)
  num_classes = _int_range(rng, r["num_classes"])
  least = MIN_PER_CLASS * num_classes
  pool_size = max(least, _int_range(rng, r["pool_size"], log=True))
  eval_size = max(least, _int_range(rng, r["eval_size"]))
  informative = int(rng.integers(1, min(dim, 12) + 1)) if dim > 1 else 1
  informative = max(informative, min(dim, 2))
  redundant = int(rng.integers(0, dim - informative + 1)) if rng.random() < 0.5 else 0
  structure = str(ranges.get("structure") or rng.choice(STRUCTURES))
  lo_n, hi_n = r["label_noise"]
  label_noise = float(rng.uniform(lo_n, hi_n)) if rng.random() < 0.5 else float(lo_n)
  spec = TaskSpec(
    seed=int(seed),
    dim=dim,
    informative=informative,
    redundant=redundant,
    num_classes=num_classes,
    pool_size=pool_size,
    eval_size=eval_size,
    structure=structure,
    clusters_per_class=int(rng.integers(1, 4)),
    class_sep=float(rng.uniform(0.5, 3.0)),
    depth=int(rng.integers(0, 3)),
    hidden=int(rng.choice([8, 16, 32, 64])),
    activation=str(rng.choice(["relu", "tanh"])),
    latent=str(rng.choice(["gaussian", "uniform"])),
    # Concentration 0.5 (very lopsided) to 100 (balanced), log-uniform.
    imbalance=float(math.exp(rng.uniform(math.log(0.5), math.log(100.0)))),
    label_noise=round(label_noise, 4),
    warped=int(rng.integers(0, dim + 1)) if rng.random() < 0.3 else 0,
  )
  if ranges.get("discrete") is None:
    return spec
  lo, hi = (float(v) for v in ranges["discrete"])
  if not 0.0 <= lo <= hi <= 1.0:
    raise PriorError(f"discrete must be a range of shares within [0, 1], got {(lo, hi)}")
  share = rng.uniform(lo, hi)
  return dataclasses.replace(spec, discrete=min(dim, max(int(round(share * dim)), int(lo > 0))))


# ----------------------------------------------------------------------------
# Building a task from its spec.


def _class_counts(rng, shares: np.ndarray, n: int) -> np.ndarray:
  """``n`` split over classes by ``shares``, every class at least ``MIN_PER_CLASS``."""
  c = len(shares)
  counts = np.full(c, MIN_PER_CLASS) + rng.multinomial(n - MIN_PER_CLASS * c, shares)
  return counts.astype(np.int64)


def _teacher(rng, spec: TaskSpec):
  """A random network ``[n, informative] -> [n, C]`` logits (numpy, float64)."""
  dims = [spec.informative] + [spec.hidden] * spec.depth + [spec.num_classes]
  layers = [
    (rng.standard_normal((a, b)) / math.sqrt(a), 0.5 * rng.standard_normal(b))
    for a, b in zip(dims[:-1], dims[1:], strict=True)
  ]
  act = np.tanh if spec.activation == "tanh" else (lambda v: np.maximum(v, 0.0))

  def f(z):
    h = z
    for i, (w, b) in enumerate(layers):
      h = h @ w + b
      if i < len(layers) - 1:
        h = act(h) * math.sqrt(2.0)
    return h

  return f


def _latent(rng, spec: TaskSpec, n: int) -> np.ndarray:
  if spec.latent == "uniform":
    return rng.uniform(-math.sqrt(3), math.sqrt(3), (n, spec.informative))
  return rng.standard_normal((n, spec.informative))


def _draw_teacher(rng, spec: TaskSpec, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Latents labelled by a random network, drawn per class to the wanted counts."""
  f = _teacher(rng, spec)
  c = spec.num_classes
  # Per-class logit offsets that make the teacher's classes about equally common on
  # the latent distribution, so any class shares (imbalance) can be met by drawing.
  probe = f(_latent(rng, spec, 2048))
  bias = np.zeros(c)
  for _ in range(30):
    freq = np.bincount(np.argmax(probe + bias, 1), minlength=c) / len(probe)
    bias -= 0.5 * np.log(np.maximum(freq, 1e-3) * c)
  freq = np.bincount(np.argmax(probe + bias, 1), minlength=c) / len(probe)
  xs, ys = [[] for _ in range(c)], np.zeros(c, np.int64)
  need = counts.copy()
  for _ in range(4):
    short = need - ys
    if (short <= 0).all():
      break
    # Enough latents for the rarest class still short (capped: a class the teacher
    # almost never predicts is completed below).
    n = int(min(30_000, max(2048, 1.5 * (short / np.maximum(freq, 1e-3)).max())))
    z = _latent(rng, spec, n)
    lab = np.argmax(f(z) + bias, 1)
    for k in range(c):
      take = z[lab == k][: max(0, need[k] - ys[k])]
      xs[k].append(take)
      ys[k] += len(take)
  if (ys < need).any():
    # A class the teacher (almost) never predicts: its points come from the nearest
    # latents by that class's margin, so the class still exists, at its boundary.
    z = _latent(rng, spec, 8192)
    logits = f(z) + bias
    for k in np.flatnonzero(ys < need):
      margin = logits[:, k] - np.delete(logits, k, 1).max(1)
      xs[k].append(z[np.argsort(-margin)[: need[k] - ys[k]]])
  z = np.concatenate([np.concatenate(v) for v in xs])
  y = np.repeat(np.arange(c), counts)
  return z, y


def _draw_clusters(rng, spec: TaskSpec, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Per class, a mixture of Gaussian clusters with random centres and covariances."""
  c, d, k = spec.num_classes, spec.informative, spec.clusters_per_class
  centres = spec.class_sep * rng.standard_normal((c, k, d)) / math.sqrt(max(1.0, d / 2))
  mix = rng.standard_normal((c, k, d, d)) / math.sqrt(d)  # random covariance factors
  scale = np.exp(rng.uniform(np.log(0.5), np.log(1.5), (c, k, 1, 1)))
  xs = []
  for cls in range(c):
    which = rng.integers(0, k, counts[cls])
    eps = rng.standard_normal((counts[cls], d))
    a = (mix[cls] * scale[cls])[which]  # [n, d, d]
    xs.append(centres[cls, which] + np.einsum("nij,nj->ni", a, eps))
  return np.concatenate(xs), np.repeat(np.arange(c), counts)


def _features(rng, spec: TaskSpec, z: np.ndarray) -> tuple[np.ndarray, dict]:
  """Latents ``[n, informative]`` -> features ``[n, dim]`` (a fixed map per task)."""
  n = len(z)
  irrelevant = spec.dim - spec.informative - spec.redundant
  mixing = rng.standard_normal((spec.informative, spec.redundant))
  cols = [z]
  if spec.redundant:
    cols.append(
      z @ mixing / math.sqrt(spec.informative) + 0.1 * rng.standard_normal((n, spec.redundant))
    )
  if irrelevant:
    cols.append(rng.standard_normal((n, irrelevant)))
  x = np.concatenate(cols, 1)
  return x, {"mixing": mixing}


def _finish(rng, spec: TaskSpec, x: np.ndarray) -> np.ndarray:
  """Warps, per-column scales and offsets, and a column order (fixed per task)."""
  d = spec.dim
  warp_cols = rng.choice(d, spec.warped, replace=False)
  warp_kind = rng.integers(0, 3, spec.warped)
  x = x.copy()
  for col, w in zip(warp_cols, warp_kind, strict=True):
    if w == 0:
      x[:, col] = np.exp(np.clip(x[:, col], -6, 6))  # skewed, log-normal-like
    elif w == 1:
      x[:, col] = x[:, col] ** 3  # heavy tails
    else:
      x[:, col] = np.round(2.0 * x[:, col])  # ordinal-looking integers
  scale = np.exp(rng.uniform(np.log(0.1), np.log(100.0), d))
  offset = rng.uniform(-10, 10, d)
  return (x * scale + offset)[:, rng.permutation(d)]


def _categorical(rng, count: int, x: np.ndarray) -> np.ndarray:
  """``count`` columns of ``x`` cut at their quantiles into 2 to 5 levels (codes 0..L-1)."""
  x = x.copy()
  for col in rng.choice(x.shape[1], count, replace=False):
    levels = int(rng.integers(2, 6))
    cuts = np.quantile(x[:, col], np.sort(rng.uniform(0.1, 0.9, levels - 1)))
    x[:, col] = np.searchsorted(cuts, x[:, col]).astype(np.float64)
  return x


def _noisy(rng, y: np.ndarray, rate: float, num_classes: int) -> np.ndarray:
  y = y.copy()
  flip = rng.random(len(y)) < rate
  y[flip] = (y[flip] + rng.integers(1, num_classes, int(flip.sum()))) % num_classes
  return y


def build_arrays(spec: TaskSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """The task's raw ``(x_pool, y_pool, x_eval, y_eval)`` (float64, int64), before scaling."""
  rng = np.random.default_rng([spec.seed, 0x7A5C])
  shares = rng.dirichlet(np.full(spec.num_classes, spec.imbalance))
  n_pool = _class_counts(rng, shares, spec.pool_size)
  n_eval = _class_counts(rng, shares, spec.eval_size)
  draw = _draw_clusters if spec.structure == "clusters" else _draw_teacher
  # Pool and evaluation points are drawn together (one distribution), then split.
  z, y = draw(rng, spec, n_pool + n_eval)
  x, _ = _features(rng, spec, z)
  x = _finish(rng, spec, x)
  if spec.discrete:
    x = _categorical(np.random.default_rng([spec.seed, 0xD15C]), spec.discrete, x)
  is_eval = np.zeros(len(y), bool)
  for cls in range(spec.num_classes):
    rows = np.flatnonzero(y == cls)
    is_eval[rng.choice(rows, n_eval[cls], replace=False)] = True
  y = _noisy(rng, y, spec.label_noise, spec.num_classes)
  pool, ev = rng.permutation(np.flatnonzero(~is_eval)), rng.permutation(np.flatnonzero(is_eval))
  return x[pool], y[pool], x[ev], y[ev]


def build_task(spec: TaskSpec) -> Task:
  """The ``Task`` a spec describes (deterministic): pool, ``"test"`` eval set, transform."""
  x, y, xe, ye = build_arrays(spec)
  names = tuple(f"class_{c}" for c in range(spec.num_classes))
  if len(np.unique(y)) < spec.num_classes:
    raise PriorError(f"task {spec.name}: a class has no pool point after label noise")
  return classification_task(
    spec.name, x, y, seed=spec.seed, x_test=xe, y_test=ye, group_names=names
  )


def sample_task(seed: int, **ranges) -> Task:
  """A task from the prior: ``build_task(sample_spec(seed, **ranges))``.

  Args:
    seed: the task's seed.
    **ranges: see ``sample_spec``.

  Returns:
    The ``Task`` (``task.name == f"prior:{seed}"``).
  """
  return build_task(sample_spec(seed, **ranges))
