"""How fits of the cheap learners score on the evaluation set T.

Each scorer takes a batch of P fits (or their sufficient statistics: Gram matrices,
class sums, kernel masses, candidate neighbours) and returns ``[P, ·]`` scores on T;
B's own fit is a batch of one. ``metaval.zeroshot.features`` builds the fits of B and
of B ∪ S and takes the differences.
"""

from __future__ import annotations

import numpy as np
from ot.lp.emd_wrap import emd_c

from metaval.util.nearest import nearest

RIDGE = 1.0  # ridge penalty of the least-squares proxy (standardised inputs)
EMD_ITERATIONS = 100_000  # the network simplex's cap (POT's default)


def emd(a: np.ndarray, b: np.ndarray, cost: np.ndarray) -> float:
  """Exact transport cost by POT's network simplex, called directly: ``ot.emd2``'s
  checks and bookkeeping (marginals, zero-mass rows, dual centring) are 60% of a
  16-point problem's time, and the marginals here are built positive and summing to
  one. The cost equals ``ot.emd2``'s (tested)."""
  cost = np.ascontiguousarray(cost, np.float64)
  return float(emd_c(a, b, cost, EMD_ITERATIONS, 1)[1])


def onehot(y: np.ndarray, k: int) -> np.ndarray:
  """``[n, k]`` float64 one-hot rows of class ids ``y``."""
  out = np.zeros((len(y), k))
  out[np.arange(len(y)), y] = 1.0
  return out


class OnT:
  """The evaluation set as the scorers see it.

  Args:
    xe: ``[n_T, d]`` standardised inputs of T.
    ye: their class ids.
    k: class ids in use (B's and T's classes, plus one for labels neither uses).
    bw: the Gaussian kernel's bandwidth (B's median squared NN distance).
    ot_x: T's transport sample, inputs.
    ot_y: its class ids.
  """

  def __init__(self, xe, ye, k: int, bw: float, ot_x, ot_y):
    self.xe, self.ye, self.k, self.bw = xe, ye, k, bw
    self.xe_sq = (xe * xe).sum(1)  # squared norms: every distance to T reuses them
    self.xe1 = np.c_[xe, np.ones(len(ye))]
    self.ot_x, self.ot_y = ot_x, ot_y
    self.ot_mass = np.full(len(ot_y), 1.0 / len(ot_y))

  def ridge(self, gram, rhs):
    """``[P, 2]`` accuracy and mean clipped margin on T of ridge fits ``[P, d+1, ·]``."""
    reg = RIDGE * np.eye(gram.shape[-1])
    reg[-1, -1] = 0.0  # the bias is not penalised
    s = np.matmul(self.xe1, np.linalg.solve(gram + reg, rhs))  # [P, n_T, k]
    rows = np.arange(s.shape[1])
    true = s[:, rows, self.ye]
    s_other = s.copy()
    s_other[:, rows, self.ye] = -np.inf
    margin = np.clip(true - s_other.max(2), -1.0, 1.0)
    return np.stack([(s.argmax(2) == self.ye).mean(1), margin.mean(1)], 1)

  def knn(self, d, lab):
    """``[P, 2]`` 1-NN and 5-NN accuracy on T from candidate distances and labels
    ``[P, n_T, m]`` (candidates at ``inf`` do not vote)."""
    p, n_t, m = d.shape
    nn, near = nearest(d.reshape(p * n_t, m), 5)
    y = np.take_along_axis(lab.reshape(p * n_t, m), nn, 1)  # [P n_T, kk] nearest first
    rows = np.arange(p * n_t)[:, None] * self.k
    votes = np.bincount(
      (rows + y).reshape(-1),
      np.isfinite(near).reshape(-1).astype(float),
      minlength=p * n_t * self.k,
    )
    hit1 = (y[:, 0] == np.tile(self.ye, p)).reshape(p, n_t)
    hit5 = (votes.reshape(p * n_t, self.k).argmax(1) == np.tile(self.ye, p)).reshape(p, n_t)
    return np.stack([hit1.mean(1), hit5.mean(1)], 1)

  def kernel_w(self, d):
    """Gaussian-kernel weights of distances (bandwidth: B's median NN distance), those
    beyond 50 bandwidths at ``exp(-25)``. In place on one new array: a query's
    distances are many, and each temporary of the plain expression is a pass more."""
    w = d / self.bw
    np.minimum(w, 50.0, out=w)
    w *= -0.5
    return np.exp(w, out=w)

  def kernel_ll(self, mass):
    """``[P, 1]`` mean log-likelihood of T's labels under class masses ``[P, n_T, k]``."""
    p = (mass + 1e-3) / (mass.sum(2, keepdims=True) + 1e-3 * self.k)
    return np.log(p[:, np.arange(p.shape[1]), self.ye]).mean(1)[:, None]

  def centroid(self, sums, counts):
    """``[P, 1]`` nearest-centroid accuracy on T from class sums ``[P, k, d]`` and
    counts ``[P, k]`` (classes without points never win)."""
    cent = sums / np.maximum(counts, 1.0)[:, :, None]
    d = self.xe_sq[None, :, None] + (cent * cent).sum(2)[:, None, :]
    ab = np.matmul(self.xe, cent.transpose(0, 2, 1))
    ab *= 2.0
    d -= ab
    d = np.where(counts[:, None, :] > 0, np.maximum(d, 0.0), np.inf)
    return (d.argmin(2) == self.ye).mean(1)[:, None]

  def logit(self, theta):
    """``[P, 2]`` accuracy and mean log-likelihood on T of softmax fits ``[P, d+1, k]``."""
    z = np.matmul(self.xe1, theta)
    z -= z.max(2, keepdims=True)
    logp = z - np.log(np.exp(z).sum(2, keepdims=True))
    true = logp[:, np.arange(z.shape[1]), self.ye]
    return np.stack([(z.argmax(2) == self.ye).mean(1), true.mean(1)], 1)

  def ot(self, cost, ys, weights, labelled=True):
    """``[2]`` exact transport costs from points at ``cost`` (their scaled squared
    distances to T's sample; mass ``weights``, uniform if None) to T's sample, the
    second with a unit cost per label mismatch (0 when not ``labelled``)."""
    a = np.full(len(cost), 1.0 / len(cost)) if weights is None else weights
    plain = emd(a, self.ot_mass, cost)
    if not labelled:
      return np.array([plain, 0.0])
    return np.array([plain, emd(a, self.ot_mass, cost + (ys[:, None] != self.ot_y[None, :]))])
