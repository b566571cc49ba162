"""Learner families as pure functions over parameter pytrees.

Each family gives ``init(key, spec, in_dim, num_classes) -> params`` and
``apply(params, x, spec) -> logits``. Classification families map ``x [n, d]`` to
``[n, num_classes]``; the language-model family maps tokens ``[n, T]`` to
``[n, T, vocab]``. Everything here is side-effect free so the trainer can
``jit(vmap(scan(...)))`` it.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from metaval.errors import MetavalError

FAMILIES = ("linear", "mlp", "lm")
# "adam" steps full-batch or minibatch Adam; "lbfgs" solves the (convex) linear
# family to its optimum (``metaval.learners.solve``).
SOLVERS = ("adam", "lbfgs")


class SpecError(MetavalError):
  """A learner spec is not valid."""


LABEL_ONLY_KEYS = ("name", "params")  # a label file's learner entry: title, parameter count


@dataclasses.dataclass(frozen=True)
class LearnerSpec:
  """Static description of a learner and its training recipe (hashable).

  Attributes:
    family: ``"linear"``, ``"mlp"`` or ``"lm"``.
    width: hidden width (MLP) or model dimension (LM).
    depth: hidden layers (MLP) or transformer blocks (LM).
    features: linear family only: 0 trains on raw inputs; k > 0 first maps inputs
      through k fixed random ReLU features (a random-features model, still linear
      in its trained weights), giving the linear family a size ladder.
    heads: attention heads (LM).
    steps: optimisation steps (Adam), or the iteration bound of a solver.
    lr: Adam learning rate (unused by solvers).
    l2: L2 penalty on weights, added to the (weighted) mean training loss.
    batch_size: 0 for full-batch training (classification); otherwise the number
      of examples sampled per step, in proportion to their weights.
    solver: ``"adam"`` (default, every family) or ``"lbfgs"`` (linear family,
      full batch: solved to the optimum, see ``metaval.learners.solve``).
    tol: solvers only: stop when the gradient's largest entry is below this
      (scikit-learn's ``LogisticRegression`` stops by the same rule at 1e-4).
  """

  family: str = "mlp"
  width: int = 64
  depth: int = 1
  features: int = 0
  heads: int = 2
  steps: int = 200
  lr: float = 0.01
  l2: float = 1e-3
  batch_size: int = 0
  solver: str = "adam"
  tol: float = 1e-4

  def __post_init__(self):
    if self.family not in FAMILIES:
      raise SpecError(f"unknown learner family {self.family!r}; available: {', '.join(FAMILIES)}")
    for f in ("width", "depth", "heads", "steps"):
      if getattr(self, f) < 1:
        raise SpecError(f"learner {f} must be >= 1, got {getattr(self, f)}")
    if self.features < 0 or self.batch_size < 0:
      raise SpecError("learner features and batch_size must be >= 0")
    if not (self.lr > 0 and math.isfinite(self.lr)):
      raise SpecError(f"learner lr must be positive and finite, got {self.lr}")
    if self.l2 < 0:
      raise SpecError(f"learner l2 must be >= 0, got {self.l2}")
    if self.solver not in SOLVERS:
      raise SpecError(f"unknown solver {self.solver!r}; available: {', '.join(SOLVERS)}")
    if not self.tol > 0:
      raise SpecError(f"learner tol must be positive, got {self.tol}")
    if self.solver != "adam" and (self.family != "linear" or self.batch_size):
      raise SpecError(f"solver {self.solver!r} needs the linear family with batch_size 0")
    if self.family == "lm":
      if self.width % self.heads:
        raise SpecError(f"lm width {self.width} must be divisible by heads {self.heads}")
      if self.batch_size == 0:
        raise SpecError("the lm family trains on minibatches: set batch_size > 0")

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)

  @classmethod
  def from_config(cls, cfg) -> LearnerSpec:
    """Builds a spec from a mapping (e.g. an ``ml_collections.ConfigDict``)."""
    d = dict(cfg)
    unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
      raise SpecError(f"unknown learner field(s): {', '.join(sorted(unknown))}")
    return cls(**d)

  @classmethod
  def fields_of(cls, mapping) -> dict:
    """The ``LearnerSpec`` fields of a learner mapping, as queries accept it.

    A label file's learner entry also carries ``name`` and ``params`` (its title and
    parameter count): those are dropped. Any other key that is not a field is refused
    (``SpecError``): a misspelt field would otherwise silently take its default.
    """
    d = dict(mapping)
    fields = [f.name for f in dataclasses.fields(cls)]
    unknown = set(d) - set(fields) - set(LABEL_ONLY_KEYS)
    if unknown:
      raise SpecError(
        f"unknown learner field(s): {', '.join(sorted(unknown))}; fields: {', '.join(fields)}"
      )
    return {k: v for k, v in d.items() if k in fields}


def _dense_init(key, n_in, n_out):
  # He-style scaling keeps activations O(1) through ReLU layers.
  w = jax.random.normal(key, (n_in, n_out), jnp.float32) * jnp.sqrt(2.0 / n_in)
  return {"w": w, "b": jnp.zeros((n_out,), jnp.float32)}


# Random features are fixed by the spec, not by the model's key: every model in a
# batch (and both sides of a paired B / B∪S run) sees the same feature map.
_FEATURE_KEY = 1234


def random_features(x, spec: LearnerSpec):
  """Fixed ReLU random features ``[n, d] -> [n, features]`` (identity if 0)."""
  if spec.features == 0:
    return x
  d = x.shape[-1]
  k1, k2 = jax.random.split(jax.random.key(_FEATURE_KEY))
  w = jax.random.normal(k1, (d, spec.features), jnp.float32) / jnp.sqrt(d)
  b = jax.random.normal(k2, (spec.features,), jnp.float32) * 0.5
  return jax.nn.relu(x @ w + b)


def _linear_init(key, spec, in_dim, num_classes):
  d = spec.features or in_dim
  # Zero init: the convex problem has one optimum, and zero matches scikit-learn.
  del key
  return {"w": jnp.zeros((d, num_classes), jnp.float32), "b": jnp.zeros((num_classes,))}


def _linear_apply(params, x, spec):
  return random_features(x, spec) @ params["w"] + params["b"]


def _mlp_init(key, spec, in_dim, num_classes):
  keys = jax.random.split(key, spec.depth + 1)
  dims = [in_dim] + [spec.width] * spec.depth
  layers = [_dense_init(keys[i], dims[i], dims[i + 1]) for i in range(spec.depth)]
  out = _dense_init(keys[-1], spec.width, num_classes)
  out["w"] = out["w"] * 0.1  # Small logits at init: a calmer start for full-batch Adam.
  return {"hidden": layers, "out": out}


def _mlp_apply(params, x, spec):
  del spec
  h = x
  for layer in params["hidden"]:
    h = jax.nn.relu(h @ layer["w"] + layer["b"])
  return h @ params["out"]["w"] + params["out"]["b"]


def _layer_norm(x, p):
  mu = x.mean(-1, keepdims=True)
  var = ((x - mu) ** 2).mean(-1, keepdims=True)
  return (x - mu) * jax.lax.rsqrt(var + 1e-5) * p["scale"] + p["bias"]


def _ln_init(d):
  return {"scale": jnp.ones((d,)), "bias": jnp.zeros((d,))}


LM_MAX_LEN = 256


def _lm_init(key, spec, in_dim, num_classes):
  """Tiny pre-LN causal transformer; ``in_dim`` is unused (tokens), ``num_classes`` = vocab."""
  del in_dim
  d, v = spec.width, num_classes
  keys = jax.random.split(key, 2 + spec.depth)
  blocks = []
  for i in range(spec.depth):
    k = jax.random.split(keys[2 + i], 4)
    blocks.append(
      {
        "ln1": _ln_init(d),
        "qkv": _dense_init(k[0], d, 3 * d),
        "proj": _dense_init(k[1], d, d),
        "ln2": _ln_init(d),
        "fc1": _dense_init(k[2], d, 4 * d),
        "fc2": _dense_init(k[3], 4 * d, d),
      }
    )
    # Residual branches start small so the untrained stack is near identity.
    blocks[-1]["proj"]["w"] *= 0.1 / math.sqrt(spec.depth)
    blocks[-1]["fc2"]["w"] *= 0.1 / math.sqrt(spec.depth)
  return {
    "embed": jax.random.normal(keys[0], (v, d)) * 0.02,
    "pos": jax.random.normal(keys[1], (LM_MAX_LEN, d)) * 0.02,
    "blocks": blocks,
    "ln_f": _ln_init(d),
  }


def _lm_apply(params, tokens, spec):
  """Causal LM logits ``[n, T, vocab]`` for tokens ``[n, T]`` (tied embeddings)."""
  n, t = tokens.shape
  d, h = spec.width, spec.heads
  x = params["embed"][tokens] + params["pos"][:t]
  causal = jnp.tril(jnp.ones((t, t), bool))
  for blk in params["blocks"]:
    y = _layer_norm(x, blk["ln1"])
    qkv = y @ blk["qkv"]["w"] + blk["qkv"]["b"]  # [n, T, 3d]
    q, k, v = jnp.split(qkv.reshape(n, t, 3, h, d // h), 3, axis=2)
    q, k, v = q[:, :, 0], k[:, :, 0], v[:, :, 0]  # [n, T, heads, d/heads]
    att = jnp.einsum("nqhc,nkhc->nhqk", q, k) / math.sqrt(d // h)
    att = jax.nn.softmax(jnp.where(causal, att, -1e9), axis=-1)
    y = jnp.einsum("nhqk,nkhc->nqhc", att, v).reshape(n, t, d)
    x = x + y @ blk["proj"]["w"] + blk["proj"]["b"]
    y = _layer_norm(x, blk["ln2"])
    y = jax.nn.gelu(y @ blk["fc1"]["w"] + blk["fc1"]["b"])
    x = x + y @ blk["fc2"]["w"] + blk["fc2"]["b"]
  x = _layer_norm(x, params["ln_f"])
  return x @ params["embed"].T


_INIT = {"linear": _linear_init, "mlp": _mlp_init, "lm": _lm_init}
_APPLY = {"linear": _linear_apply, "mlp": _mlp_apply, "lm": _lm_apply}


def init(key: jax.Array, spec: LearnerSpec, in_dim: int, num_classes: int):
  """Initial parameters for one learner."""
  return _INIT[spec.family](key, spec, in_dim, num_classes)


def apply(params, x: jax.Array, spec: LearnerSpec) -> jax.Array:
  """Logits for one learner."""
  return _APPLY[spec.family](params, x, spec)


def num_params(spec: LearnerSpec, in_dim: int, num_classes: int) -> int:
  """Trained parameter count (shape-only, nothing is allocated)."""
  # The key made inside the traced function: an eager ``jax.random.key`` would run (and
  # in a fresh process trace and load) two compiled programs just to be counted past.
  shapes = jax.eval_shape(lambda: init(jax.random.key(0), spec, in_dim, num_classes))
  return int(sum(math.prod(s.shape) for s in jax.tree.leaves(shapes)))


def forward_flops(spec: LearnerSpec, in_dim: int, num_classes: int, seq_len: int = 1) -> int:
  """Multiply-add FLOPs (x2) of one example's forward pass, for throughput reports."""
  if spec.family == "linear":
    d = spec.features or in_dim
    return 2 * d * num_classes
  if spec.family == "mlp":
    dims = [in_dim] + [spec.width] * spec.depth + [num_classes]
    return 2 * sum(a * b for a, b in zip(dims[:-1], dims[1:]))
  d, t = spec.width, seq_len
  per_tok = spec.depth * (2 * d * 3 * d + 2 * d * d + 2 * 2 * d * 4 * d + 2 * 2 * t * d)
  return t * (per_tok + 2 * d * num_classes)


def train_flops(spec: LearnerSpec, in_dim: int, num_classes: int, seq_len: int = 1) -> int:
  """FLOPs of one example's training step: forward + backward (2x forward), less the
  input-gradient of the first layer, which is never computed (inputs are data)."""
  fwd = forward_flops(spec, in_dim, num_classes, seq_len)
  if spec.family == "lm":
    return 3 * fwd  # the first layer is an embedding lookup: no input-gradient FLOPs
  first_out = num_classes if spec.family == "linear" else spec.width
  return 3 * fwd - 2 * (spec.features or in_dim) * first_out


LADDERS = {
  "linear": (0, 128, 256, 512, 1024),  # random features (0 = raw inputs)
  "mlp": (16, 32, 64, 128, 256),  # hidden width
  "lm": (16, 32, 64, 128),  # model dimension
}


def ladder(base: LearnerSpec, sizes=None) -> list[LearnerSpec]:
  """A size ladder of specs that differ from ``base`` only in size."""
  sizes = LADDERS[base.family] if sizes is None else sizes
  field = "features" if base.family == "linear" else "width"
  return [dataclasses.replace(base, **{field: int(s)}) for s in sizes]
