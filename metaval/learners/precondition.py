"""A preconditioner for the linear family's L-BFGS: a superset's inverse Hessian.

A data valuation game solves many subsets of one pool. A large subset's objective
curves nearly as the whole pool's does at its optimum, so that inverse Hessian,
computed once, is a far better start for L-BFGS's inverse-Hessian estimate than the
scaled identity: on digits (500 points, 64 features, 10 classes) coalitions of half
the pool or more reach the same tolerance in about half the iterations. Small
subsets curve differently (few points, most directions held by the penalty alone)
and do worse with it, so callers use it for large subsets only
(``metaval.games.utility``).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from metaval.learners import models
from metaval.learners.models import LearnerSpec


def hessian_inverse(x, w, spec: LearnerSpec, num_classes: int, params, ridge: float = 1e-4):
  """The inverse Hessian of one model's objective at ``params``: a preconditioner.

  In closed form (float64): ``sum_i w_i (diag(p_i) - p_i p_i^T) (x) x~_i x~_i^T /
  sum_i w_i`` plus ``l2`` on W, with ``x~ = [x, 1]``, in the flat parameter layout
  of ``_flat``; ``ridge`` lifts the softmax's flat direction (all biases moved
  together) and keeps the matrix invertible.

  Args:
    x: ``[n, d]`` points; w: ``[n]`` positive weights (the Hessian reads no labels).
    spec: the linear-family spec (its random features, if any, are applied).
    num_classes: C.
    params: ``{"w": [d, C], "b": [C]}`` where the Hessian is taken (e.g. the optimum).
    ridge: added to the diagonal.

  Returns:
    ``[P, P]`` float32, ``P = C * d + C``.
  """
  phi = np.asarray(models.random_features(jnp.asarray(x, jnp.float32), spec), np.float64)
  n, d = phi.shape
  c = num_classes
  wt = np.asarray(w, np.float64) / max(float(np.sum(w)), 1e-30)
  z = phi @ np.asarray(params["w"], np.float64) + np.asarray(params["b"], np.float64)
  p = np.exp(z - z.max(1, keepdims=True))
  p /= p.sum(1, keepdims=True)
  a = (p[:, :, None] * (np.eye(c)[None] - p[:, None, :])) * wt[:, None, None]  # [n, C, C]
  xt = np.c_[phi, np.ones(n)]  # [n, d + 1]
  h = np.zeros((c * c, (d + 1) ** 2))
  # Rows in blocks: the [rows, (d + 1)^2] outer products stay under ~64 MB.
  step = max(1, (8 << 20) // (d + 1) ** 2)
  for lo in range(0, n, step):
    xb = xt[lo : lo + step]
    xx = (xb[:, :, None] * xb[:, None, :]).reshape(len(xb), -1)  # [rows, (d + 1)^2]
    h += a[lo : lo + step].reshape(len(xb), -1).T @ xx
  h = h.reshape(c, c, d + 1, d + 1).transpose(0, 2, 1, 3)
  # [C, d + 1] -> flat: W row-major (class, feature) first, then the biases.
  flat = np.r_[(np.arange(c)[:, None] * (d + 1) + np.arange(d)).ravel(), np.arange(c) * (d + 1) + d]
  h = h.reshape(c * (d + 1), c * (d + 1))[np.ix_(flat, flat)]
  h[np.arange(c * d), np.arange(c * d)] += spec.l2
  h = 0.5 * (h + h.T) + ridge * np.eye(len(h))
  return np.linalg.inv(h).astype(np.float32)
