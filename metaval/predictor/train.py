"""Training the value predictor: ``train_and_evaluate(config, workdir)``.

Labels are loaded, featurised and split by ``data`` (train / validation / test
pairs, standardised with training statistics), then fitted with AdamW on a
warm-up + cosine schedule under a Gaussian NLL (+ MSE) loss. Each epoch ends with a
validation pass: the best model so far and the latest full state are kept by orbax
(``checkpoint.TrainingCheckpoints``), so an interrupted run resumes where it
stopped. Training stops early when the validation loss has not improved for
``patience`` epochs. Intervals are calibrated on the validation split: the NLL
head's sigma is rescaled so that the nominal coverage (e.g. 90 %) holds there.
``checkpoint.save_meta`` writes everything a prediction needs besides the weights.
"""

from __future__ import annotations

import json
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx
from scipy import stats as sstats

from metaval import protocol
from metaval.predictor import features as F
from metaval.predictor.checkpoint import (
  META_FILE,
  TrainingCheckpoints,
  model_config,
  restore_model,
  save_meta,
  task_defaults,
)
from metaval.predictor.data import (
  Normalizer,
  PairData,
  PredictorError,
  build_pairs,
  choose_targets,
  load_label_sets,
  make_featurizer,
  random_split,
)
from metaval.predictor.model import ValueModel, gaussian_nll
from metaval.predictor.writers import MetricWriter
from metaval.util import io

# Names other modules import from here (the training entry point and what it reads).
__all__ = [
  "META_FILE",
  "PredictorError",
  "calibration_scale",
  "choose_targets",
  "fit",
  "load_label_sets",
  "pairwise_rank_loss",
  "predict",
  "predict_std",
  "random_split",
  "run",
  "score",
  "train_and_evaluate",
]


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
  ckpt = TrainingCheckpoints(workdir)
  meta = {"epoch": 0, "best_val": float("inf"), "bad_epochs": 0, "best_epoch": -1}
  resumed = ckpt.restore_latest(model, optimizer)
  if resumed is not None:
    meta = resumed
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
        ckpt.save_best(epoch + 1, model)
      else:
        meta["bad_epochs"] += 1
      if (epoch + 1) % tc.log_every == 0 or epoch == 0:
        writer.write(epoch + 1, rec)
      ckpt.save_latest(epoch + 1, model, optimizer, meta)
  finally:
    ckpt.close()
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
  io.write_text(os.path.join(workdir, "results.json"), json.dumps(results, indent=1))
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
