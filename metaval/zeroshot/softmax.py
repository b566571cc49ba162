"""Softmax regression for the zero-shot features' cheap-retrain proxies (NumPy).

``fit`` takes a few full-batch gradient steps of weighted softmax regression;
``fit_many`` continues one fit on B ∪ S for many supplements at once (the stepped
proxy), ``fit_one`` for one; ``newton_blocks`` and ``newton_step`` move a fit by one
damped Newton step with per-class Hessian blocks (the Newton proxy). Parameters are
``[d + 1, k]`` (inputs with a trailing 1 for the bias).
"""

from __future__ import annotations

import numpy as np

STEPS = 25  # gradient steps of the stepped proxy (and of B's own fit)
LR = 0.5
DECAY = 1e-3  # weight decay of the gradient steps
NEWTON_L2 = 1e-2  # ridge on the mean loss of the Newton step: damps it


def softmax(z: np.ndarray) -> np.ndarray:
  """Row-wise softmax of logits ``[n, k]``."""
  z = np.exp(z - z.max(1, keepdims=True))
  return z / z.sum(1, keepdims=True)


def _residual(z: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
  """Class-major logits ``z`` -> their softmax over the class ``axis`` minus the one-hot
  targets ``y``, in place (the gradient of the cross-entropy in the logits)."""
  z -= z.max(axis, keepdims=True)
  np.exp(z, out=z)
  z /= z.sum(axis, keepdims=True)
  z -= y
  return z


def fit_many(xb1, yb1h, extra, init, wb=1.0, steps=STEPS, lr=LR):
  """``fit`` on B ∪ S_i for every ``(xs1_i, ys1h_i)`` in ``extra`` at once,
  B's rows ``xb1`` weighted ``wb`` each (a subsample of a larger B stands for all of it).

  Equal (to rounding) to ``fit(np.r_[xb1, xs1_i], np.r_[yb1h, ys1h_i],
  np.r_[wb * ones, ones], init=init)`` per supplement. Several supplements share B's
  products: every step is a few batched products over all of them instead of a dozen
  small NumPy calls per supplement. One supplement takes ``fit_one``. Logits
  are laid out class-major (``[P, k, n]``): the softmax then reduces over a short
  leading axis of long contiguous rows, about 3x faster than over a trailing axis of a
  few classes.

  Returns:
    ``[P, d + 1, k]`` the parameters per supplement.
  """
  if len(extra) == 1:
    return fit_one(xb1, yb1h, *extra[0], init, wb, steps, lr)[None]
  p, (d1, k) = len(extra), init.shape
  m = max(len(x) for x, _ in extra)
  xs, ys, ws = np.zeros((p, m, d1)), np.zeros((p, k, m)), np.zeros((p, 1, m))
  for i, (x, y) in enumerate(extra):
    xs[i, : len(x)], ys[i, :, : len(x)], ws[i, :, : len(x)] = x, y.T, 1.0
  scale = 1.0 / (wb * len(xb1) + ws.sum((1, 2)))[:, None, None]  # the weights' normaliser
  theta = np.broadcast_to(init.T, (p, k, d1)).copy()  # class-major parameters
  xbt, ybt, xst = np.ascontiguousarray(xb1.T), np.ascontiguousarray(yb1h.T), xs.transpose(0, 2, 1)

  flat = theta.reshape(p * k, d1)  # B's products: one GEMM over every supplement's classes
  for _ in range(steps):
    zb = (flat @ xbt).reshape(p, k, len(xb1))
    g = (_residual(zb, ybt, 1).reshape(p * k, -1) @ xb1).reshape(p, k, d1)
    if wb != 1.0:
      g *= wb
    g += np.matmul(_residual(np.matmul(theta, xst), ys, 1) * ws, xs)
    theta -= lr * (g * scale + DECAY * theta)
  return theta.transpose(0, 2, 1)


def fit_one(xb1, yb1h, xs1, ys1h, init, wb=1.0, steps=STEPS, lr=LR):
  """``fit_many`` for one supplement: ``fit`` on B's and S's rows in one block (half the
  NumPy calls of the shared-B batch; at a query's shapes their count, not the
  arithmetic, sets the time).

  Returns:
    ``[d + 1, k]`` the parameters.
  """
  w = np.concatenate([np.full(len(xb1), float(wb)), np.ones(len(xs1))])
  return fit(np.concatenate([xb1, xs1]), np.concatenate([yb1h, ys1h]), w, steps, lr, init)


def fit(x1, y1h, w, steps=STEPS, lr=LR, init=None):
  """A few full-batch gradient steps of weighted softmax regression from ``init``.

  Class-major and in place: a step is one product for the logits, a softmax over the
  short leading axis, one product for the gradient and the update.
  """
  xt, yt = np.ascontiguousarray(x1.T), np.ascontiguousarray(y1h.T)
  scale, decay = lr / w.sum(), 1.0 - lr * DECAY
  theta = np.zeros((y1h.shape[1], x1.shape[1])) if init is None else np.array(init.T)
  z, g = np.empty((len(theta), len(x1))), np.empty_like(theta)
  for _ in range(steps):
    np.matmul(theta, xt, out=z)
    _residual(z, yt, 0)
    z *= w
    np.matmul(z, x1, out=g)
    g *= scale
    theta *= decay
    theta -= g
  return theta.T


def newton_blocks(x1: np.ndarray, theta: np.ndarray, l2: float = NEWTON_L2) -> np.ndarray:
  """``[k, d + 1, d + 1]`` inverses of the mean loss's Hessian blocks at ``theta``, one
  class each (``x1ᵀ diag(p_c (1 - p_c)) x1 / n + l2 I``; cross-class blocks dropped)."""
  p = softmax(x1 @ theta)
  curv = p * (1.0 - p)
  eye = l2 * np.eye(x1.shape[1])
  return np.linalg.inv(
    np.stack([(x1.T * curv[:, c]) @ x1 / len(x1) + eye for c in range(p.shape[1])])
  )


def newton_step(theta, h_inv, grad_sum, n, l2: float = NEWTON_L2) -> np.ndarray:
  """``theta`` moved by one Newton step on a mean loss over ``n`` points whose gradients
  at ``theta`` sum to ``grad_sum``, with the blocks ``h_inv`` of ``newton_blocks``.
  ``grad_sum`` ``[..., d + 1, k]`` and ``n`` (broadcast against it) may carry leading
  batch axes: one step per batch entry."""
  g = grad_sum / n + l2 * theta
  step = np.matmul(h_inv, np.swapaxes(g, -1, -2)[..., None])[..., 0]  # [..., k, d + 1]
  return theta - np.swapaxes(step, -1, -2)
