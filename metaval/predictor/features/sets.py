"""Set-level statistics of a pair, the kNN-classifier proxies, and the learner descriptor.

Set statistics (log |S|, log |B|, feature variance, label entropy, class balance,
duplicate and agreement shares) summarise a pair for the readout and for the ridge
baseline; the proxies measure how adding S changes cheap kNN classifiers on B.
"""

from __future__ import annotations

import numpy as np

from metaval.data.tasks import LANGUAGE_MODEL, Task
from metaval.predictor.features.inputs import FeatureError
from metaval.predictor.features.relational import KNN, BaseStats, row_keys, sqdist
from metaval.util.nearest import nearest

SET_FEATURES = (
  "log_size_s",
  "log_size_b",
  "log_ratio",
  "log_var_ratio",
  "label_entropy_s",
  "label_entropy_b",
  "class_balance_tv",
  "share_exact_dup",
  "share_near_dup",
  "share_nn_agrees",
  "mean_knn_agreement",
  "mean_log_nn_dist",
  "share_dup_within_set",
  "share_unique_rows",
  "log_num_classes",
  "log_feature_dim",
  "share_constant_rows",
  "log_novel_agreeing_mass",
  "share_far",
  "is_language_model",
  "share_of_union",
  "delta_loo_1nn_acc",
  "delta_loo_knn_acc",
  "delta_loo_kernel_acc",
  "delta_loo_kernel_loglik",
)
SET_DIM = len(SET_FEATURES)

FAMILIES = ("linear", "mlp", "lm")
LEARNER_FEATURES = (
  "log_params",
  "log_width",
  "depth",
  "log_steps",
  "log_lr",
  "log_features",
  "family_linear",
  "family_mlp",
  "family_lm",
)
LEARNER_DIM = len(LEARNER_FEATURES)


def _entropy(counts: np.ndarray, k: int) -> np.ndarray:
  """Normalised entropy of class counts along the last axis."""
  p = counts / np.maximum(counts.sum(-1, keepdims=True), 1.0)
  plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
  return -plogp.sum(-1) / np.log(max(k, 2))


def knn_proxies(xs, ys, base: BaseStats) -> np.ndarray:
  """Closed-form proxies of the label: how adding S changes kNN classifiers on B.

  Each of B's probe points is classified leave-one-out by its neighbours in B and
  by its neighbours in B ∪ S (copies of the query itself in S left out as well, so
  a verbatim copy of B earns nothing); the features are the changes in 1-NN
  accuracy, k-NN majority accuracy, and accuracy and mean log-likelihood of the
  true class under a Gaussian-kernel classifier (bandwidth: B's median NN
  distance). Clean points grow these with |S|, wrong labels shrink them, points far
  from B leave them unchanged: a signal that carries across supplement kinds.

  Returns:
    ``[4]``: delta 1-NN accuracy, delta kNN accuracy, delta kernel accuracy, delta
    kernel log-likelihood.
  """
  k = base.k
  yq = base.y[base.probe]  # [n_p]
  d_b = base.probe_d  # [n_p, n_B]
  d_s = sqdist(base.x[base.probe], xs)  # [n_p, n_S]
  ids: dict = {}
  s_id = np.array([ids.setdefault(key, len(ids)) for key in row_keys(xs)])
  q_id = np.array([ids.get(key, -1) for key in row_keys(base.x[base.probe])])
  d_s = np.where(q_id[:, None] == s_id[None, :], np.inf, d_s)
  d_all = np.concatenate([d_b, d_s], 1)
  y_all = np.concatenate([base.y, ys])

  def knn_acc(d, y, kk):
    order, near = nearest(d, kk)
    fin = np.isfinite(near)
    votes = np.zeros((len(d), k))
    rows = np.repeat(np.arange(len(d)), order.shape[1])
    np.add.at(votes, (rows, y[order].reshape(-1)), fin.reshape(-1).astype(np.float64))
    nn1 = y[order[:, 0]] == yq  # the nearest (``argmin``'s own choice among ties)
    return nn1.mean(), (votes.argmax(1) == yq).mean()

  def kernel(d, y):
    w = np.exp(-0.5 * np.minimum(d / base.scale**2, 1e4))  # [n_p, m]
    mass = np.zeros((len(d), k))
    for c in range(k):
      mass[:, c] = w[:, y == c].sum(1)
    p = (mass + 1e-3) / (mass.sum(1, keepdims=True) + 1e-3 * k)
    ll = np.log(p[np.arange(len(d)), yq])
    return (p.argmax(1) == yq).mean(), ll.mean()

  a1_b, ak_b = knn_acc(d_b, base.y, KNN)
  a1_u, ak_u = knn_acc(d_all, y_all, KNN)
  ka_b, ll_b = kernel(d_b, base.y)
  ka_u, ll_u = kernel(d_all, y_all)
  return np.array([a1_u - a1_b, ak_u - ak_b, ka_u - ka_b, ll_u - ll_b])


def set_features(xs, ys, rel, base: BaseStats, task: Task, proxies: bool = True) -> np.ndarray:
  """``[SET_DIM]`` hand-made statistics of the pair (also the ridge baseline's input).

  ``proxies=False`` leaves the four ``knn_proxies`` features at zero.
  """
  return set_features_many(xs, ys, [len(ys)], rel, base, task, proxies)[0]


def set_features_many(xs, ys, sizes, rel, base: BaseStats, task: Task, proxies: bool = True):
  """``[P, SET_DIM]``: ``set_features`` of P sets laid end to end (rows of ``xs``,
  ``ys`` and ``rel``, of ``sizes``), each as if alone; the per-row work runs once over
  all of them."""
  sizes = np.asarray(sizes, np.int64)
  if (sizes < 1).any():
    raise FeatureError("a supplemental set is empty")
  p, nb, k = len(sizes), len(base.y), base.k
  starts = np.cumsum(sizes) - sizes
  n = sizes.astype(np.float64)
  own = np.repeat(np.arange(p), sizes)
  s_counts = np.bincount(own * k + ys, minlength=p * k).reshape(p, k).astype(np.float64)
  var_s = np.zeros(p)
  unique = np.zeros(p)
  for i, (a, m) in enumerate(zip(starts, sizes)):
    var_s[i] = float(xs[a : a + m].var(0).mean()) if m > 1 else 0.0
    unique[i] = len({r.tobytes() for r in np.round(xs[a : a + m], 4)}) / m
  mean = np.add.reduceat(rel.astype(np.float64), starts) / n[:, None]  # [P, RELATIONAL]
  novel_agree = np.add.reduceat((1.0 - rel[:, 2]) * rel[:, 4], starts)
  constant = np.add.reduceat((xs.std(1) < 1e-3).astype(np.float64), starts) / n
  far = np.add.reduceat((rel[:, 0] > np.log1p(3.0)).astype(np.float64), starts) / n
  knn = np.zeros((p, 4))
  if proxies:
    for i, (a, m) in enumerate(zip(starts, sizes)):
      knn[i] = knn_proxies(xs[a : a + m], ys[a : a + m], base)
  cols = [
    np.log1p(n),
    np.full(p, np.log1p(nb)),
    np.log(n / nb),
    np.log((var_s + 1e-3) / (base.var + 1e-3)),
    _entropy(s_counts, k),
    np.full(p, _entropy(base.counts, k)),
    0.5 * np.abs(s_counts / n[:, None] - base.counts / max(nb, 1)).sum(1),
    mean[:, 1],  # exact duplicates of B
    mean[:, 2],
    mean[:, 3],
    mean[:, 4],
    mean[:, 0],
    mean[:, 9],
    unique,
    np.full(p, np.log(k)),
    np.full(p, np.log(task.x.shape[1])),
    constant,
    np.log1p(novel_agree / nb * 100.0),
    far,
    np.full(p, float(task.kind == LANGUAGE_MODEL)),
    n / (n + nb),
  ]
  return np.concatenate([np.stack(cols, 1), knn], 1).astype(np.float32)


def learner_features(spec: dict, num_params: int) -> np.ndarray:
  """``[LEARNER_DIM]`` descriptor of a learner (log sizes, steps, lr, family)."""
  fam = spec.get("family", "mlp")
  if fam not in FAMILIES:
    raise FeatureError(f"unknown learner family {fam!r}; available: {', '.join(FAMILIES)}")
  return np.array(
    [
      np.log10(max(num_params, 1)),
      np.log2(max(spec.get("width", 1), 1)),
      float(spec.get("depth", 1)),
      np.log10(max(spec.get("steps", 1), 1)),
      np.log10(max(spec.get("lr", 1e-2), 1e-8)),
      np.log2(1 + spec.get("features", 0)),
    ]
    + [float(fam == f) for f in FAMILIES],
    np.float32,
  )
