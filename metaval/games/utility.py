"""The retraining utility: U(T) = metric of a learner trained on background ∪ coalition T.

One class serves per-point valuation (each pool point a player), groups of points
and contributors (each a row of multiplicities over the pool, which may overlap: a
copy of someone's data is the same rows again). A call trains every uncached
coalition (× seeds) through ``train_many`` as masks over the task pool, padded to a
multiple of ``batch_size`` so that one compiled program serves every call.

**Empty-set policy** (the one metaval uses everywhere): U(∅) is the metric of the
learner trained on the background alone. With no background there is nothing to
train on, and U(∅) is ``empty_value`` if given, else the metric of the best data-free
prediction (``no_data_value``): the majority class's share of the evaluation set for
accuracy, the uniform prediction ``-log(num_classes)`` for log-loss. Other metrics
need an explicit ``empty_value``. An empty coalition costs a fit only when there is a
background to train on.

**Solved learners** (``spec.solver`` in ``CONVEX_SOLVERS``): each coalition's
learner is solved to its optimum, so its utility does not depend on where the
solver starts. The utility therefore keeps every solution and starts each fit
warm: from its parent's solution when an estimator names one (``start_from``: a
permutation prefix starts from the previous prefix), else from the mean solution
of the last batch solved (random coalitions of similar size have nearby optima).
Coalitions are grouped by training-set size into buckets (``gather_size``; finer
ones, ``FINE_BUCKETS``, for random subsets of one size: ``fine_buckets``), each
model trains on its own gathered points only, and the models per batch shrink as
the bucket grows, so each bucket compiles one program of similar cost, reused by
every later call.

**Precise coalitions** (``precise``): a solved fit stops once the gradient's largest
entry is below ``spec.tol`` (scikit-learn's 1e-4 by default). Removing one of N
points moves the optimum's gradient by about ``|p_i - y_i| |x_i| / N``, often less
than that: a leave-one-out fit warm-started from the full set's solution then
stops at once, or a few iterations short of its optimum, and its difference to
the full set is solver error (on digits with 500 points, 30 % of the leave-one-out
log-loss values came out exactly zero; with 300 points, their ranks agreed with
exact refits at Spearman 0.75-0.83 over three draws). Coalitions hinted as
precise are solved to ``PRECISE_TOL`` instead, near float32's floor for this
gradient (about 1e-7), under ``PRECISE_STEPS_FACTOR`` times the iteration bound.
Large precise coalitions start L-BFGS from the grand coalition's inverse Hessian
(``metaval.learners.precondition``; ``PRECOND_SHARE``), which nearly halves
leave-one-out's time.

**Two chunks at a time**: a call's chunks are solved in waves of ``WAVE`` on
threads (one small XLA program keeps little more than one core busy); starts are
fixed per wave, so the results do not depend on the thread count.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import sparse

from metaval.data.tasks import Task
from metaval.games.game import Game, GameError, coalition_key
from metaval.learners.models import LearnerSpec
from metaval.learners.precondition import hessian_inverse
from metaval.learners.rows import FINE_BUCKETS, GATHER_BUCKETS
from metaval.learners.solve import CONVEX_SOLVERS
from metaval.learners.train import gather_size, metric_names, train_many
from metaval.pairs import keys as keys_lib
from metaval.util import threads
from metaval.util.threads import usable_cores

# Gathered point rows per solver batch (models x bucket size): small training sets
# batch many models, large ones few, so every bucket's program costs about the same.
# Smaller batches wait less for their slowest model and keep both threads of a wave
# busy: on digits (500 points, 2 cores) TMC-Shapley ran 1,150-1,270 fits/s at 4,096
# against 810-1,100 at 8,192 and 1,000-1,070 at 3,072 or 6,144; Beta Shapley, Banzhaf
# and leave-one-out within their run-to-run spread.
SOLVER_BATCH_ROWS = 4096
# Gradient tolerance of precise coalitions (leave-one-out): 100x below scikit-learn's
# default and about 10x above the float32 floor, where L-BFGS still converges reliably
# (1e-7 is not always reachable in float32 and runs to the iteration bound).
PRECISE_TOL = 1e-6
# ... under a higher iteration bound: on digits (300-500 points, from zero) L-BFGS
# reaches 1e-4 in 50-60 iterations and 1e-6 in 100-150, past the 100 that bound
# the default fits; a full set stopped short would offset every leave-one-out value.
PRECISE_STEPS_FACTOR = 4
# Chunks of one call solved at once (one thread each), and so the chunks that share
# a reference start: fixed, so results do not depend on the machine's cores.
WAVE = 2
# Precise coalitions holding at least this share of the grand coalition's points
# start L-BFGS from the grand coalition's inverse Hessian (``learners.precondition``).
# Measured on digits (500 points, 2 cores): leave-one-out 1.45 -> 0.85 s; at the
# default tolerance, warm-started and two chunks at a time, the dense product costs
# what the saved iterations save (TMC-Shapley 2.08 -> 1.96 s in one process, slower
# in a fresh one, which traces the extra programs), so other coalitions go without.
PRECOND_SHARE = 0.4
PRECOND_MAX_PARAMS = 1024  # above, the dense [P, P] product costs more than it saves


def no_data_value(task: Task, metric: str) -> float:
  """The metric of the best prediction made without training data (U(∅) by default).

  Accuracy: the share of the most common class in the evaluation set (a constant
  prediction). Log-loss: the uniform prediction, ``-log(num_classes)``.

  Raises:
    GameError: for any other metric (pass ``empty_value``).
  """
  parts = metric.split("/")
  if parts[0] not in task.evals:
    raise GameError(f"metric {metric!r}: no evaluation set {parts[0]!r} in task {task.name!r}")
  if len(parts) == 2 and parts[1] == "accuracy":
    ey = np.asarray(task.evals[parts[0]][1])
    return float(np.bincount(ey, minlength=task.num_classes).max() / max(len(ey), 1))
  if len(parts) == 2 and parts[1] in ("neg_log_loss", "neg_loss"):
    return -math.log(task.num_classes)
  raise GameError(f"no default empty-set utility for metric {metric!r}; pass empty_value")


def _membership(players, n: int, background) -> tuple[sparse.csr_matrix, np.ndarray]:
  """``([P, N] sparse multiplicities, [N] background)`` from either players format."""
  bg = np.zeros(n, np.float32) if background is None else np.asarray(background, np.float32)
  if bg.shape != (n,):
    raise GameError(f"background must be [pool_size={n}] multiplicities; got {bg.shape}")
  p = np.arange(n) if players is None else np.asarray(players)
  if p.ndim == 1:
    if p.shape != (n,) or not np.issubdtype(p.dtype, np.integer):
      raise GameError(
        f"players must be [{n}] player ids or [P, {n}] multiplicities, got {p.shape} {p.dtype}"
      )
    if p.min() < -1:
      raise GameError("player ids must be >= -1 (-1 = background point, always included)")
    bg = bg + (p == -1)
    on = np.flatnonzero(p >= 0)
    num = int(p.max()) + 1
    rows = sparse.csr_matrix((np.ones(on.size, np.float32), (p[on], on)), shape=(max(num, 0), n))
  elif p.ndim == 2 and p.shape[1] == n:
    rows = sparse.csr_matrix(np.asarray(p, np.float32))
  else:
    raise GameError(
      f"players must be [{n}] player ids or [P, {n}] multiplicities, got {p.shape} {p.dtype}"
    )
  if rows.shape[0] < 1:
    raise GameError("no players: every point is background")
  for name, a in (("players", rows.data), ("background", bg)):
    if not np.all(np.isfinite(a)) or np.any(a < 0):
      raise GameError(f"{name} must be finite, non-negative multiplicities")
  empty = np.flatnonzero(np.asarray(rows.sum(1)).ravel() <= 0)
  if empty.size:
    raise GameError(f"player {empty[0]} brings no data")
  return rows, bg


class RetrainingUtility(Game):
  """``U(T)`` = mean over seeds of ``metric(train(background + Σ_{i ∈ T} players[i]))``.

  All coalitions share the same seed keys on purpose (common random numbers):
  coalitions that differ by one player then differ only by that player's data, not
  by initialisation or data order, so seed noise cancels in marginals as far as it can.

  Args:
    task: the task whose pool the players index; ``metric`` is measured on its evals.
    spec: the learner.
    players: who plays: None (every pool point is a player), ``[N]`` int player ids
      (points or disjoint groups; ``-1`` marks background points, always trained
      on), or ``[P, N]`` non-negative multiplicities, one row per player (contributors).
    background: ``[N]`` multiplicities always trained on (the base set B), added to
      the ``-1`` points; values are then *given B*.
    metric: a ``train_many`` metric name (higher is better).
    num_seeds: models per coalition, averaged.
    seed: root seed of the shared keys.
    batch_size: models per compiled batch (calls are padded to a multiple); None
      trains each call as one batch of exactly its rows.
    empty_value: U(∅) when there is no background (see the module's empty-set policy).
    names: optional player names.
    warm_start: solved learners only: start each fit from a nearby solution (see
      the module docstring); False solves every coalition from zero.
    threads: solved learners only: threads solving a call's chunks at once (default:
      ``WAVE`` or the usable cores, whichever is fewer; at most ``WAVE`` are used); the
      results do not depend on it.
    precondition: solved learners only: large precise coalitions (``PRECOND_SHARE``
      of the grand coalition's points or more) start L-BFGS from the grand
      coalition's inverse Hessian (same optimum, fewer iterations); False: never.
    fine_buckets: solved learners only: pad coalitions to ``FINE_BUCKETS`` (at most
      1.5x apart) instead of powers of two. For estimators whose coalitions are
      random subsets of about one size (Banzhaf's halves): they land in one or two
      buckets either way, so nothing more is compiled and less padding is solved.
      Permutation prefixes span every size, and there the extra programs cost more
      than the padding saves (see ``FINE_BUCKETS``).
  """

  def __init__(
    self,
    task: Task,
    spec: LearnerSpec,
    players=None,
    background=None,
    *,
    metric: str = "test/accuracy",
    num_seeds: int = 1,
    seed: int = 0,
    batch_size: int | None = 256,
    empty_value: float | None = None,
    names=None,
    warm_start: bool = True,
    threads: int | None = None,
    precondition: bool = True,
    fine_buckets: bool = False,
  ):
    rows, bg = _membership(players, task.pool_size, background)
    super().__init__(rows.shape[0], players=names, num_seeds=num_seeds, batch_size=batch_size)
    if metric not in metric_names(task):
      raise GameError(
        f"unknown metric {metric!r} for task {task.name!r}; available: "
        f"{', '.join(metric_names(task)[:6])}, ..."
      )
    self.task, self.spec, self.metric = task, spec, metric
    self.members, self.background = rows, bg
    if not bg.any() and empty_value is None:
      empty_value = no_data_value(task, metric)
    self._empty = None if empty_value is None else float(empty_value)
    # One key per seed, shared by every coalition (common random numbers).
    self.seed_keys = keys_lib.split_keys(seed, self.num_seeds)  # [K, 2] raw key data
    self.solved = spec.solver in CONVEX_SOLVERS
    self.warm_start = bool(warm_start) and self.solved
    self.buckets = FINE_BUCKETS if fine_buckets else GATHER_BUCKETS
    if threads is not None and threads < 1:
      raise GameError(f"threads must be >= 1, got {threads}")
    self.threads = min(WAVE, usable_cores()) if threads is None else int(threads)
    self.precondition = bool(precondition) and self.solved
    self._precond: tuple | None = None  # (grand coalition's size, inverse Hessian or None)
    # Solved learners: coalition key -> its solution {"w": [K, d, C], "b": [K, C]};
    # hinted parents (child key -> parent key); the last batch's mean solution.
    self._solutions: dict[bytes, dict] = {}
    self._parents: dict[bytes, bytes] = {}
    self._reference: dict | None = None
    self._zero: dict | None = None
    # Keys of coalitions to solve to ``PRECISE_TOL`` when evaluated (``precise``).
    self._precise: set[bytes] = set()
    self._precise_spec = dataclasses.replace(
      spec, tol=min(spec.tol, PRECISE_TOL), steps=PRECISE_STEPS_FACTOR * spec.steps
    )

  def start_from(self, coalitions, parents) -> None:
    """Solved learners: start each coalition's fit from its parent's solution.

    Args:
      coalitions: ``[M, P]`` booleans about to be evaluated.
      parents: ``[M, P]`` booleans, each an evaluated coalition near its row.
    """
    if not self.warm_start:
      return
    c, p = self.check(coalitions), self.check(parents)
    if len(c) != len(p):
      raise GameError(f"start_from got {len(c)} coalitions and {len(p)} parents")
    for child, parent in zip(c, p):
      self._parents[coalition_key(child)] = coalition_key(parent)

  def solutions(self, coalitions) -> dict:
    """Solved learners: the kept solutions of evaluated coalitions.

    Args:
      coalitions: ``[M, P]`` booleans, each already evaluated.

    Returns:
      ``{"w": [M, K, d, C], "b": [M, K, C]}`` (K seeds, equal for a solved learner).

    Raises:
      GameError: the learner is not solved, or a coalition was not evaluated.
    """
    if not self.solved:
      raise GameError(f"only solved learners keep solutions; spec.solver is {self.spec.solver!r}")
    rows = [self._solutions.get(coalition_key(row)) for row in self.check(coalitions)]
    if any(r is None for r in rows):
      raise GameError("solutions() of a coalition that was not evaluated")
    return {f: np.stack([r[f] for r in rows]) for f in ("w", "b")}

  def precise(self, coalitions) -> None:
    """Solved learners: solve these coalitions to ``PRECISE_TOL`` when evaluated.

    Args:
      coalitions: ``[M, P]`` booleans about to be evaluated.
    """
    if self.solved:
      keys = (coalition_key(row) for row in self.check(coalitions))
      self._precise.update(k for k in keys if self._cache is None or k not in self._cache)

  def masks(self, coalitions) -> np.ndarray:
    """``[M, P]`` bool coalitions -> ``[M, N]`` float32 training multiplicities."""
    c = self.check(coalitions).astype(np.float32)
    return self.background[None] + np.asarray((self.members.T @ c.T).T, np.float32)

  def _evaluate(self, coalitions):
    out = np.empty((len(coalitions), self.num_seeds))
    # Empty-set policy: with no background an empty coalition is not trained.
    train = coalitions.any(1) | self.background.any()
    out[~train] = self._empty
    idx = np.flatnonzero(train)
    if idx.size and self.solved:
      out[idx] = self._solve(coalitions[idx])
    elif idx.size:
      k = self.num_seeds
      # Coalition-major, seed-minor: rows [C * K, N], keys [C * K].
      masks = np.repeat(self.masks(coalitions[idx]), k, axis=0)
      keys = np.tile(self.seed_keys, (idx.size, 1))
      rows = masks.shape[0]
      b = self.batch_size
      pad = (-rows) % b if b else 0
      if pad:
        masks = np.concatenate([masks, np.repeat(masks[-1:], pad, 0)])
        keys = np.concatenate([keys, np.repeat(keys[-1:], pad, 0)])
      res = train_many(keys, self.task, masks, self.spec, chunk=b)
      out[idx] = res.metrics[self.metric][:rows].reshape(idx.size, k)
      self.fits += rows
      self.fits_computed += rows + pad
    return out

  def _start(self, key: bytes) -> dict | None:
    """The solution a coalition's fit starts from (None: from zero)."""
    if not self.warm_start:
      return None
    parent = self._solutions.get(self._parents.pop(key, b""))
    return parent if parent is not None else self._reference

  def _solve(self, coalitions: np.ndarray) -> np.ndarray:
    """Per-seed utilities ``[C, K]``: size buckets, warm starts, solutions kept.

    Precise coalitions form buckets of their own, solved under ``PRECISE_TOL``.
    Each bucket is cut into chunks of at most ``SOLVER_BATCH_ROWS`` gathered rows,
    and the chunks are solved in waves of ``WAVE``, one thread each: XLA runs one
    small program on little more than one core, so two at once use both. A chunk
    without a hinted parent starts from the reference the previous wave left (the
    mean solution of its last chunk), so the starts, and the results, do not depend
    on how many threads run a wave.
    """
    k = self.num_seeds
    masks = self.masks(coalitions)  # [C, N]
    n = masks.shape[1]
    counts = (masks > 0).sum(1)  # points in each coalition's training set
    sizes = np.array([min(gather_size(int(s), self.buckets), n) for s in counts])
    all_keys = [coalition_key(row) for row in coalitions]
    tight = np.array([key in self._precise for key in all_keys])
    pre = np.zeros(len(coalitions), bool)
    h_inv = None
    if self.precondition and tight.any():
      grand, h_inv = self._preconditioner()
      if h_inv is not None:
        pre = tight & (counts >= PRECOND_SHARE * grand)
    jobs = []  # (coalition rows, padded rows, bucket size, spec, preconditioner)
    groups = {(int(a), bool(b), bool(c)) for a, b, c in zip(sizes, tight, pre)}
    for size, precise, use in sorted(groups):
      rows = np.flatnonzero((sizes == size) & (tight == precise) & (pre == use))
      spec = self._precise_spec if precise else self.spec
      # Coalitions per batch: the batch size, fewer for large buckets; None: all.
      b = self.batch_size or len(rows) * k
      per = max(1, min(b, SOLVER_BATCH_ROWS // int(size)) // k)
      for lo in range(0, len(rows), per):
        chunk = rows[lo : lo + per]
        pad = per - len(chunk) if self.batch_size else 0
        full = np.concatenate([chunk, np.repeat(chunk[-1:], pad)])
        jobs.append((chunk, full, size, spec, h_inv if use else None))
    out = np.empty((len(coalitions), k))
    for lo in range(0, len(jobs), WAVE):
      wave = jobs[lo : lo + WAVE]
      calls = [self._chunk_call(masks, all_keys, *job) for job in wave]
      if len(calls) > 1 and self.threads > 1:
        results = list(threads.pool("solve", WAVE).map(lambda call: call(), calls))
      else:
        results = [call() for call in calls]
      for (chunk, full, *_), res in zip(wave, results):
        out[chunk] = res.metrics[self.metric].reshape(len(full), k)[: len(chunk)]
        params = {
          f: np.asarray(a).reshape(len(full), k, *a.shape[1:]) for f, a in res.params.items()
        }
        for j, i in enumerate(chunk):
          self._solutions[all_keys[i]] = {f: a[j] for f, a in params.items()}
          self._precise.discard(all_keys[i])
        self._reference = {f: a[: len(chunk)].mean(0) for f, a in params.items()}
        self.fits += len(chunk) * k
        self.fits_computed += len(full) * k
    return out

  def _chunk_call(self, masks, all_keys, chunk, full, size, spec, precond):
    """A closure that solves one chunk from its starts (read now, on this thread)."""
    k = self.num_seeds
    if self._zero is None:  # the start of a fit with no parent and no reference yet
      in_dim = self.spec.features or self.task.x.shape[-1]
      self._zero = {
        "w": np.zeros((k, in_dim, self.task.num_classes), np.float32),
        "b": np.zeros((k, self.task.num_classes), np.float32),
      }
    starts = [self._start(all_keys[i]) or self._zero for i in chunk]
    starts += starts[-1:] * (len(full) - len(chunk))
    init = {f: np.concatenate([s[f] for s in starts]) for f in ("w", "b")}
    keys = np.tile(self.seed_keys, (len(full), 1))
    weights = np.repeat(masks[full], k, axis=0)

    def call():  # returns once the program has run (train_many fetches its metrics)
      return train_many(
        keys,
        self.task,
        weights,
        spec,
        gather=size,
        init_params=init,
        return_params=True,
        precond=precond,
      )

    return call

  def _preconditioner(self) -> tuple[int, np.ndarray | None]:
    """``(points in the grand coalition, its inverse Hessian)``, computed once.

    The grand coalition (background and every player) is solved once, from zero (a
    fit counted in ``fits_computed``), and its solution is kept: as the warm start
    of its hinted children and, until a batch is solved, as the reference every
    other coalition starts from. A preconditioned fit must start near an optimum:
    from zero, where the softmax's curvature is far larger, its first steps are far
    too long. The inverse is None where the learner has more than
    ``PRECOND_MAX_PARAMS`` parameters.
    """
    if self._precond is None:
      c = self.task.num_classes
      in_dim = self.spec.features or self.task.x.shape[-1]
      grand = self.masks(np.ones((1, self.num_players), bool))
      count = int((grand > 0).sum())
      h_inv = None
      if (in_dim + 1) * c <= PRECOND_MAX_PARAMS:
        res = train_many(
          self.seed_keys[:1], self.task, grand, self.spec,
          gather=min(gather_size(count, self.buckets), grand.shape[1]), return_params=True,
        )  # fmt: skip
        params = {f: np.asarray(a[0]) for f, a in res.params.items()}
        kept = {f: np.repeat(a[None], self.num_seeds, 0) for f, a in params.items()}
        self._solutions[coalition_key(np.ones(self.num_players, bool))] = kept
        if self._reference is None:
          self._reference = kept
        nz = np.flatnonzero(grand[0])
        h_inv = hessian_inverse(self.task.x[nz], grand[0, nz], self.spec, c, params)
        self.fits_computed += 1
      self._precond = (count, h_inv)
    return self._precond
