"""Training the value predictor: ``train_and_evaluate(config, workdir)``.

Labels (``LabelSet``) are featurised once (``features.py``), split into train /
validation / test pairs, standardised with training statistics, and fitted with
AdamW on a warm-up + cosine schedule under a Gaussian NLL (+ MSE) loss. Each epoch
ends with a validation pass: the best model so far is kept by one orbax
``CheckpointManager`` (``checkpoints/best``), the latest full state (model,
optimiser, epoch, early-stopping counters) by another (``checkpoints/latest``), so
an interrupted run resumes where it stopped. Training stops early when the
validation loss has not improved for ``patience`` epochs. Intervals are calibrated
on the validation split: the NLL head's sigma is rescaled so that the nominal
coverage (e.g. 90 %) holds there.

Everything a prediction needs besides the weights (targets, standardisation,
calibration, each task's default base and learner) goes to ``predictor.json``.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import nnx
from scipy import stats as sstats

from metaval import protocol
from metaval.errors import MetavalError
from metaval.predictor import features as F
from metaval.predictor.model import ModelConfig, ValueModel, gaussian_nll
from metaval.predictor.writers import MetricWriter

META_FILE = "predictor.json"


class PredictorError(MetavalError):
  """Training data or a trained predictor is missing or unusable."""


# ----------------------------------------------------------------------------
# Labels.


def load_label_sets(config) -> list:
  """The ``LabelSet``s named by ``config.labels`` (generated first if missing).

  ``config.labels.source`` is ``"pipeline"`` (``metaval.labeling.generate`` with
  the label config ``config.labels.config`` into ``config.labels.workdir``; it
  resumes, so existing labels cost nothing) or ``"toy"`` (``testing.toy_labels``).
  """
  lc = config.labels
  if lc.source == "toy":
    from metaval.predictor.testing import toy_labels

    return [
      toy_labels(t, num_pairs=lc.toy_pairs, num_seeds=lc.toy_seeds, seed=lc.seed + i)
      for i, t in enumerate(lc.toy_tasks)
    ]
  if lc.source != "pipeline":
    raise PredictorError(f"unknown labels.source {lc.source!r}; use 'pipeline' or 'toy'")
  try:
    from metaval import labeling
    from metaval.configlib import load as load_config

    generate = labeling.generate
  except (ImportError, AttributeError) as e:
    raise PredictorError(
      f"the label pipeline is not available ({e}); use labels.source='toy'"
    ) from None
  out = []
  for spec, wd in zip(lc.configs, lc.workdirs):
    label_cfg = load_config(spec, list(lc.overrides))
    res = generate(label_cfg, wd)
    if isinstance(res, dict):  # multi-task label configs: task name -> LabelSet
      res = [res[k] for k in sorted(res)]
    res = res if isinstance(res, (list, tuple)) else [res]
    out += [r for r in res if r is not None and len(r)]
  if not out:
    raise PredictorError(f"no labels found for {list(lc.configs)}")
  return out


def choose_targets(label_sets, requested=()) -> list[str]:
  """Requested target metrics, or every metric common to all label sets."""
  common = [m for m in label_sets[0].metric_names if all(m in s.metric_names for s in label_sets)]
  if requested:
    missing = [m for m in requested if m not in common]
    if missing:
      raise PredictorError(f"target metric(s) {missing} not in the labels; available: {common}")
    return list(requested)
  if not common:
    raise PredictorError("the label sets share no metric; set config.targets")
  return common


@dataclasses.dataclass
class PairData:
  """Featurised pairs with their labels and metadata (P rows)."""

  x: F.PairFeatures
  y: np.ndarray  # [P, T] mean improvement
  se: np.ndarray  # [P, T] standard error over seeds
  per_seed: np.ndarray  # [P, K, T] (K = min seeds over label sets)
  base_metric: np.ndarray  # [P, T] mean metric of B
  kind: np.ndarray  # [P]
  task: np.ndarray  # [P]
  learner: np.ndarray  # [P] learner JSON
  learner_params: np.ndarray  # [P]

  def __len__(self):
    return len(self.y)

  def take(self, idx) -> PairData:
    idx = np.asarray(idx)
    return PairData(
      x=self.x.take(idx),
      **{f.name: getattr(self, f.name)[idx] for f in dataclasses.fields(self) if f.name != "x"},
    )


def _cached_features(ls, featurizer: F.Featurizer, cache_dir: str | None) -> F.PairFeatures:
  """Featurises a label set, reusing ``<cache_dir>/features-<hash>.npz`` when present."""
  if not cache_dir:
    return F.featurize_labels(ls, featurizer)
  h = hashlib.sha1()
  parts = (ls.task, ls.task_seed, F.FEATURE_VERSION, featurizer.max_s, featurizer.max_b)
  for part in parts + (("no-proxies",) if not featurizer.proxies else ()):
    h.update(str(part).encode())
  h.update(np.asarray(ls.pair_id).tobytes())
  h.update("".join(map(str, ls.learner)).encode())
  # Content, not just ids: a regenerated label set may reuse the same pair ids.
  for i in range(len(ls)):
    h.update(np.ascontiguousarray(ls.base_indices[i]).tobytes())
    h.update(np.ascontiguousarray(ls.supp_x[i]).tobytes())
    h.update(np.ascontiguousarray(ls.supp_y[i]).tobytes())
  path = os.path.join(cache_dir, f"features-{ls.task}-{h.hexdigest()[:16]}.npz")
  if os.path.isfile(path):
    with np.load(path) as z:
      return F.PairFeatures(**{k: z[k] for k in z.files})
  xf = F.featurize_labels(ls, featurizer)
  os.makedirs(cache_dir, exist_ok=True)
  tmp = f"{path}.{os.getpid()}.tmp.npz"  # per process: parallel runs may featurise at once
  np.savez(tmp, **xf.arrays())
  os.replace(tmp, path)
  return xf


def make_featurizer(config) -> F.Featurizer:
  """The ``Featurizer`` a predictor config describes."""
  fc = config.features
  return F.Featurizer(fc.max_s, fc.max_b, proxies=fc.get("proxies", True))


def build_pairs(label_sets, targets, featurizer: F.Featurizer, cache_dir=None) -> PairData:
  """Featurises all label sets into one ``PairData`` (targets in ``targets`` order)."""
  parts = []
  k = min(s.num_seeds for s in label_sets)
  for ls in label_sets:
    ti = [ls.metric_index(m) for m in targets]
    xf = _cached_features(ls, featurizer, cache_dir)
    per_seed = ls.improvement_per_seed[:, :k][:, :, ti]
    parts.append(
      PairData(
        x=xf,
        y=ls.improvement[:, ti],
        se=ls.improvement_se[:, ti],
        per_seed=per_seed,
        base_metric=ls.metric_base.mean(1)[:, ti],
        kind=np.asarray(ls.kind).astype(str),
        task=np.full(len(ls), ls.task),
        learner=np.asarray(ls.learner).astype(str),
        learner_params=np.asarray(ls.learner_params, np.int64),
      )
    )
  if len(parts) == 1:
    return parts[0]
  return PairData(
    x=F.PairFeatures.concatenate([p.x for p in parts]),
    **{
      f.name: np.concatenate([getattr(p, f.name) for p in parts])
      for f in dataclasses.fields(PairData)
      if f.name != "x"
    },
  )


def random_split(n: int, val_frac: float, test_frac: float, seed: int):
  """Index arrays ``(train, val, test)`` of a seeded random split."""
  perm = np.random.default_rng(seed).permutation(n)
  n_test = int(round(test_frac * n))
  n_val = max(1, int(round(val_frac * n)))
  return perm[n_test + n_val :], perm[n_test : n_test + n_val], perm[:n_test]


# ----------------------------------------------------------------------------
# Standardisation.


@dataclasses.dataclass
class Normalizer:
  """Training-set statistics: inputs and targets are standardised with them."""

  sets_mu: np.ndarray
  sets_sd: np.ndarray
  learner_mu: np.ndarray
  learner_sd: np.ndarray
  y_mu: np.ndarray
  y_sd: np.ndarray

  @classmethod
  def fit(cls, data: PairData) -> Normalizer:
    def ms(a):
      sd = a.std(0)
      return a.mean(0), np.where(sd < 1e-6, 1.0, sd)

    s_mu, s_sd = ms(data.x.sets)
    l_mu, l_sd = ms(data.x.learner)
    y_mu, y_sd = ms(data.y)
    return cls(s_mu, s_sd, l_mu, l_sd, y_mu, y_sd)

  def inputs(self, x: F.PairFeatures) -> dict:
    return {
      "s": x.s,
      "s_mask": x.s_mask,
      "b": x.b,
      "b_mask": x.b_mask,
      "sets": ((x.sets - self.sets_mu) / self.sets_sd).astype(np.float32),
      "learner": ((x.learner - self.learner_mu) / self.learner_sd).astype(np.float32),
    }

  def to_dict(self):
    return {f.name: getattr(self, f.name).tolist() for f in dataclasses.fields(self)}

  @classmethod
  def from_dict(cls, d):
    return cls(**{k: np.asarray(v, np.float32) for k, v in d.items()})


# ----------------------------------------------------------------------------
# Model, steps, prediction.


def model_config(config, num_targets: int) -> ModelConfig:
  m = config.model
  return ModelConfig(
    encoder=m.encoder,
    width=m.width,
    layers=m.layers,
    heads=m.heads,
    num_inducing=m.num_inducing,
    cross_attention=m.cross_attention,
    num_targets=num_targets,
    use_learner=m.use_learner,
  )


def pairwise_rank_loss(mean, y, temperature=0.1):
  """RankNet-style logistic loss over every ordered pair of a batch, per target.

  For pairs with ``y_i > y_j`` it charges ``softplus(-(mean_i - mean_j) / temperature)``;
  ties (``|y_i - y_j|`` under 1e-6 standardised units) are left out. Spearman
  depends only on such orderings, which the Gaussian NLL and MSE weigh by squared
  size, so small-effect pairs (most of the labels) get little say without it.

  Args:
    mean: ``[n, T]`` predictions (standardised units).
    y: ``[n, T]`` targets.
    temperature: scale of prediction differences inside the logistic.

  Returns:
    The mean loss over ordered pairs and targets (a scalar).

  References:
    Burges et al., "Learning to Rank using Gradient Descent", ICML 2005.
  """
  dy = y[:, None, :] - y[None, :, :]  # [n, n, T]
  dm = mean[:, None, :] - mean[None, :, :]
  ordered = (dy > 1e-6).astype(mean.dtype)
  loss = jax.nn.softplus(-dm / temperature) * ordered
  return loss.sum() / jnp.maximum(ordered.sum(), 1.0)


@nnx.jit(static_argnames=("mse_weight", "rank_weight"))
def _train_step(model, optimizer, batch, y, w, mse_weight, rank_weight=0.0):
  def loss_fn(model):
    mean, log_sigma = model(**batch)
    nll = gaussian_nll(mean, log_sigma, y, w[:, None])
    mse = (jnp.square(mean - y) * w[:, None]).mean()
    loss = nll + mse_weight * mse
    if rank_weight:
      loss = loss + rank_weight * pairwise_rank_loss(mean, y)
    return loss, (nll, mse)

  (loss, (nll, mse)), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
  optimizer.update(model, grads)
  return loss, nll, mse


@nnx.jit
def _forward(model, batch):
  return model(**batch)


def predict_std(model, norm: Normalizer, x: F.PairFeatures, batch_size: int = 64):
  """``(mean, sigma)`` in standardised units, ``[P, T]`` each, in fixed-size batches."""
  n = len(x)
  inputs = norm.inputs(x)
  means, sigmas = [], []
  for i in range(0, n, batch_size):
    sl = {k: v[i : i + batch_size] for k, v in inputs.items()}
    m = len(sl["s"])
    if m < batch_size:  # pad to one compiled shape
      sl = {k: np.concatenate([v, np.repeat(v[-1:], batch_size - m, 0)]) for k, v in sl.items()}
    mean, log_sigma = _forward(model, sl)
    means.append(np.asarray(mean)[:m])
    sigmas.append(np.exp(np.asarray(log_sigma))[:m])
  return np.concatenate(means), np.concatenate(sigmas)


def _abstract_model(cfg: ModelConfig):
  return nnx.eval_shape(lambda: ValueModel(cfg, rngs=nnx.Rngs(0)))


def _managers(workdir: str):
  ck = os.path.join(os.path.abspath(workdir), "checkpoints")
  latest = ocp.CheckpointManager(
    os.path.join(ck, "latest"), options=ocp.CheckpointManagerOptions(max_to_keep=1)
  )
  best = ocp.CheckpointManager(
    os.path.join(ck, "best"), options=ocp.CheckpointManagerOptions(max_to_keep=1)
  )
  return latest, best


def restore_model(workdir: str, cfg: ModelConfig) -> ValueModel:
  """The best checkpoint of ``workdir`` restored into a fresh ``ValueModel``."""
  path = os.path.join(os.path.abspath(workdir), "checkpoints", "best")
  if not os.path.isdir(path):
    raise PredictorError(f"no trained predictor checkpoint under {path!r}")
  mngr = ocp.CheckpointManager(path)
  step = mngr.latest_step()
  if step is None:
    raise PredictorError(f"no trained predictor checkpoint under {path!r}")
  abstract = _abstract_model(cfg)
  graphdef, abstract_state = nnx.split(abstract)
  restored = mngr.restore(
    step, args=ocp.args.Composite(model=ocp.args.StandardRestore(abstract_state))
  )
  mngr.close()
  return nnx.merge(graphdef, restored["model"])


def _atomic_json(path: str, obj) -> None:
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(obj, f, indent=1)
  os.replace(tmp, path)


def calibration_scale(y, mean, sigma, coverage: float) -> np.ndarray:
  """Per-target factor c so that ``|y - mean| <= z * c * sigma`` on ``coverage`` of rows."""
  z = sstats.norm.ppf(0.5 + coverage / 2)
  r = np.abs(y - mean) / np.maximum(sigma, 1e-8)  # [P, T]
  return np.maximum(np.quantile(r, coverage, axis=0) / z, 1e-3)


# ----------------------------------------------------------------------------
# The fit.


def fit(config, workdir: str, train: PairData, val: PairData, *, writer=None, name="train"):
  """Fits a value model on ``train`` with early stopping on ``val``; resumes.

  Returns:
    ``(model, normalizer, calibration, history)`` with the best model restored.
  """
  tc = config.train
  norm = Normalizer.fit(train)
  cfg = model_config(config, train.y.shape[1])
  model = ValueModel(cfg, rngs=nnx.Rngs(tc.seed))
  n = len(train)
  bs = min(tc.batch_size, n)
  steps_per_epoch = max(1, n // bs)
  total = steps_per_epoch * tc.epochs
  schedule = optax.warmup_cosine_decay_schedule(
    0.0, tc.lr, min(steps_per_epoch * tc.warmup_epochs, total // 2), total, tc.lr * 0.05
  )
  tx = optax.chain(
    optax.clip_by_global_norm(1.0), optax.adamw(schedule, weight_decay=tc.weight_decay)
  )
  optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
  latest, best = _managers(workdir)
  meta = {"epoch": 0, "best_val": float("inf"), "bad_epochs": 0, "best_epoch": -1}
  if latest.latest_step() is not None:
    step = latest.latest_step()
    restored = latest.restore(
      step,
      args=ocp.args.Composite(
        model=ocp.args.StandardRestore(nnx.state(model)),
        opt=ocp.args.StandardRestore(nnx.state(optimizer)),
        meta=ocp.args.JsonRestore(),
      ),
    )
    nnx.update(model, restored["model"])
    nnx.update(optimizer, restored["opt"])
    meta = dict(restored["meta"])
    print(f"[{name}] resumed from epoch {meta['epoch']} (best val {meta['best_val']:.4f})")
  x_tr = norm.inputs(train.x)
  y_tr = ((train.y - norm.y_mu) / norm.y_sd).astype(np.float32)
  y_val = (val.y - norm.y_mu) / norm.y_sd
  history = []
  t0 = time.perf_counter()
  own_writer = writer is None
  writer = writer or MetricWriter(workdir, config.get("wandb"), config, name=name)
  try:
    for epoch in range(meta["epoch"], tc.epochs):
      if meta["bad_epochs"] >= tc.patience:
        break
      # A fresh, explicit permutation key per epoch (never reused across epochs).
      perm = np.random.default_rng([tc.seed, epoch]).permutation(n)
      losses = []
      for i in range(steps_per_epoch):
        idx = perm[i * bs : (i + 1) * bs]
        batch = {k: v[idx] for k, v in x_tr.items()}
        loss, nll, mse = _train_step(
          model,
          optimizer,
          batch,
          y_tr[idx],
          np.ones(len(idx), np.float32),
          tc.mse_weight,
          float(tc.get("rank_weight", 0.0)),
        )
        losses.append((float(loss), float(nll), float(mse)))
      mean, sigma = predict_std(model, norm, val.x)
      val_nll = float(
        np.mean(np.log(sigma) + 0.5 * ((y_val - mean) / sigma) ** 2)
        + tc.mse_weight * np.mean((y_val - mean) ** 2)
      )
      sp = protocol.agreement(mean[:, 0], val.y[:, 0])["spearman"]
      tl = np.mean(losses, 0)
      rec = {
        "epoch": epoch + 1,
        "train_loss": float(tl[0]),
        "train_mse": float(tl[2]),
        "val_loss": val_nll,
        "val_mse": float(np.mean((y_val - mean) ** 2)),
        "val_spearman": float(sp),
        "seconds": time.perf_counter() - t0,
      }
      history.append(rec)
      # Model selection on validation MSE by default: the NLL also rewards shrinking
      # sigma on easy pairs and starts rising while the ranking still improves.
      val_sel = rec["val_mse"] if tc.select == "mse" else val_nll
      improved = val_sel < meta["best_val"] - 1e-4
      meta.update(epoch=epoch + 1)
      if improved:
        meta.update(best_val=val_sel, bad_epochs=0, best_epoch=epoch + 1)
        best.save(
          epoch + 1,
          args=ocp.args.Composite(model=ocp.args.StandardSave(nnx.state(model))),
          force=True,
        )
      else:
        meta["bad_epochs"] += 1
      if (epoch + 1) % tc.log_every == 0 or epoch == 0:
        writer.write(epoch + 1, rec)
      latest.save(
        epoch + 1,
        args=ocp.args.Composite(
          model=ocp.args.StandardSave(nnx.state(model)),
          opt=ocp.args.StandardSave(nnx.state(optimizer)),
          meta=ocp.args.JsonSave(meta),
        ),
        force=True,
      )
  finally:
    latest.wait_until_finished()
    best.wait_until_finished()
    latest.close()
    best.close()
    if own_writer:
      writer.close()
  model = restore_model(workdir, cfg)
  mean, sigma = predict_std(model, norm, val.x)
  calib = calibration_scale(y_val, mean, sigma, config.interval)
  print(
    f"[{name}] best epoch {meta['best_epoch']} of {meta['epoch']} "
    f"(val {tc.select} {meta['best_val']:.4f}); {time.perf_counter() - t0:.1f}s"
  )
  return model, norm, calib, history


def predict(model, norm: Normalizer, calib, x: F.PairFeatures, coverage: float):
  """Unstandardised ``(mean, half_width)`` ``[P, T]`` with calibrated intervals."""
  mean, sigma = predict_std(model, norm, x)
  z = sstats.norm.ppf(0.5 + coverage / 2)
  return mean * norm.y_sd + norm.y_mu, z * calib * sigma * norm.y_sd


def task_defaults(label_sets, targets) -> dict:
  """Per task: a default base (the most common B), learner and mean base metric."""
  out = {}
  for ls in label_sets:
    entry = out.setdefault(ls.task, {"seed": ls.task_seed, "learners": collections.Counter()})
    entry["learners"].update(str(x) for x in ls.learner)
    if "base_indices" not in entry:
      counts = collections.Counter(tuple(np.asarray(b).tolist()) for b in ls.base_indices)
      entry["base_indices"] = list(counts.most_common(1)[0][0])
    ti = [ls.metric_index(m) for m in targets]
    entry.setdefault("base_metric", []).append(ls.metric_base.mean((0, 1))[ti])
    entry.setdefault("params", {}).update(
      {str(lj): int(p) for lj, p in zip(ls.learner, ls.learner_params)}
    )
    # Every learner seen in training, by name: ``api`` accepts ``learner="name"``.
    for lj in set(map(str, ls.learner)):
      spec = json.loads(lj)
      if spec.get("name"):
        entry.setdefault("named_learners", {})[str(spec["name"])] = spec
  for entry in out.values():
    lj = entry.pop("learners").most_common(1)[0][0]
    entry["learner"] = json.loads(lj)
    entry["learner_params"] = entry["params"][lj]
    entry["max_learner_params"] = max(entry.pop("params").values())
    entry["base_metric"] = np.mean(entry["base_metric"], 0).tolist()
  return out


def save_meta(workdir, config, targets, norm, calib, defaults, extra=None):
  meta = {
    "version": 1,
    "targets": list(targets),
    "model": model_config(config, len(targets)).to_dict(),
    "features": {
      "max_s": config.features.max_s,
      "max_b": config.features.max_b,
      "proxies": bool(config.features.get("proxies", True)),
    },
    "normalizer": norm.to_dict(),
    "calibration": np.asarray(calib).tolist(),
    "coverage": float(config.interval),
    "tasks": defaults,
    "extra": extra or {},
  }
  _atomic_json(os.path.join(workdir, META_FILE), meta)
  return meta


def score(data: PairData, mean, half, targets) -> dict:
  """``protocol.agreement`` per target plus interval coverage."""
  out = {}
  for t, name in enumerate(targets):
    a = protocol.agreement(mean[:, t], data.y[:, t])
    a["coverage"] = float(np.mean(np.abs(data.y[:, t] - mean[:, t]) <= half[:, t]))
    out[name] = a
  return out


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains a predictor on the configured labels and scores it on held-out pairs.

  Args:
    config: ``predictor`` config.
    workdir: checkpoints, ``metrics.jsonl``, ``predictor.json``, ``results.json``.

  Returns:
    ``{"test": {target: agreement}, "history": [...], ...}``.
  """
  os.makedirs(workdir, exist_ok=True)
  t0 = time.perf_counter()
  label_sets = load_label_sets(config)
  targets = choose_targets(label_sets, tuple(config.targets))
  featurizer = make_featurizer(config)
  data = build_pairs(label_sets, targets, featurizer, config.features.get("cache_dir") or None)
  t_feat = time.perf_counter() - t0
  tr, va, te = random_split(len(data), config.train.val_frac, config.train.test_frac, config.seed)
  print(
    f"[train] {len(data)} pairs ({', '.join(sorted(set(data.task)))}), "
    f"targets {targets}; split {len(tr)}/{len(va)}/{len(te)}; features {t_feat:.1f}s"
  )
  model, norm, calib, history = fit(config, workdir, data.take(tr), data.take(va))
  test = data.take(te)
  mean, half = predict(model, norm, calib, test.x, config.interval)
  results = {
    "test": score(test, mean, half, targets) if len(te) >= 3 else {},
    "history": history,
    "num_pairs": len(data),
    "seconds": time.perf_counter() - t0,
  }
  defaults = task_defaults(label_sets, targets)
  extra = {"split": "random", "num_seeds": int(data.per_seed.shape[1])}
  save_meta(workdir, config, targets, norm, calib, defaults, extra)
  _atomic_json(os.path.join(workdir, "results.json"), results)
  for name, a in results["test"].items():
    print(
      f"[train] test {name:24s} spearman {a['spearman']:+.3f}  pearson {a['pearson']:+.3f}  "
      f"mae {a['mae']:.4f}  sign {a['sign_acc']:.2f}  top10% {a['topk_precision']:.2f}  "
      f"coverage {a['coverage']:.2f}  (n={int(a['n'])})"
    )
  print(f"[train] predictor written to {workdir} in {results['seconds']:.1f}s")
  return results


def run(config, workdir: str) -> dict:
  """CLI entry point of ``metaval train``."""
  return train_and_evaluate(config, workdir)
