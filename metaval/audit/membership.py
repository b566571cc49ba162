"""Memorization spot-check: does a model return a contributor's text with confidence?

On the ``code`` task a contributor is one source file. Tiny character LMs are
trained in *complementary pairs*: the two models of a pair share one PRNG key
(on purpose: same init, same data-order stream, so they differ only in their
data) and the same base set B, and each includes the other's complement of the
candidate contributors (a random half each). So every candidate file is a
member of exactly one model of every pair and a non-member of the other, and a
pair of models gives one paired with/without comparison per contributor.

Each model is prompted with the first ``prefix_len`` characters of a
contributor's windows and scored on the true continuation:

* ``mean_loglik``: mean log-probability of the continuation's characters;
* ``min_k``: Min-K% probability, the mean of the lowest k% of those
  log-probabilities (Shi et al., 2024);
* ``exact_match``: length of the greedy continuation that matches the truth.
  Computed by teacher forcing: greedy decoding stays on the true text exactly
  as long as the argmax equals the next true character, so the match length is
  the number of leading positions where it does;
* ``*_calibrated``: the score minus the same score under *reference* models
  that did not see the contributor (the other pairs' non-member models),
  a likelihood-ratio test in the spirit of LiRA (Carlini et al., 2022).

ROC AUC separates members from non-members over (model, contributor) samples,
with a bootstrap CI that resamples contributors (the samples of one contributor
are correlated). The paired view reports, per pair and contributor, how often
the member model scores higher than its same-key non-member twin.

References:
  Shi et al., "Detecting pretraining data from large language models", ICLR 2024.
  Carlini et al., "Membership inference attacks from first principles", S&P 2022.
  Duan et al., "Do membership inference attacks work on large language
  models?", COLM 2024 (finds such signals close to chance on real LMs).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from metaval.data.tasks import LANGUAGE_MODEL, Task
from metaval.errors import MetavalError
from metaval.learners import models
from metaval.learners.models import LearnerSpec
from metaval.util import io as uio

SCORES = ("mean_loglik", "min_k", "exact_match")


class MembershipError(MetavalError):
  """Membership-audit inputs are not valid."""


def select_contributors(task: Task, num: int, min_windows: int, max_windows: int, rng):
  """Picks ``num`` source files with at least ``min_windows`` pool windows.

  Args:
    task: a language-model task with ``files``.
    num: contributors wanted.
    min_windows: eligibility threshold (windows of the file in the pool).
    max_windows: windows of each file the contributor submits (0 = all).
    rng: numpy Generator.

  Returns:
    ``(file_ids [num], rows [num] list of pool-index arrays, excluded [N] bool)``;
    ``excluded`` marks every window of the chosen files, submitted or not, so that
    no part of a candidate file leaks into the base set.
  """
  if task.kind != LANGUAGE_MODEL:
    raise MembershipError(f"the membership audit needs a language-model task, got {task.name!r}")
  counts = np.bincount(task.files, minlength=len(task.file_names))
  eligible = np.flatnonzero(counts >= min_windows)
  if len(eligible) < num:
    raise MembershipError(
      f"only {len(eligible)} files have >= {min_windows} windows; asked for {num} contributors"
    )
  chosen = np.sort(rng.choice(eligible, num, replace=False))
  rows = []
  for f in chosen:
    idx = np.flatnonzero(task.files == f)
    rows.append(idx[:max_windows] if max_windows else idx)
  excluded = np.isin(task.files, chosen)
  return chosen, rows, excluded


def complementary_plan(num_contributors: int, num_pairs: int, rng) -> np.ndarray:
  """``[2P, K]`` membership plan: row 2j includes a random half, row 2j+1 the rest."""
  if num_contributors < 2 or num_pairs < 2:
    raise MembershipError("need at least 2 contributors and 2 pairs (references need a 2nd pair)")
  plan = np.zeros((2 * num_pairs, num_contributors), bool)
  half = num_contributors // 2
  for j in range(num_pairs):
    pick = rng.permutation(num_contributors)[:half]
    plan[2 * j, pick] = True
    plan[2 * j + 1] = ~plan[2 * j]
  return plan


def token_logprobs(params, windows, spec: LearnerSpec, prefix_len: int):
  """Per-character log-probability and greedy hit of each continuation (one model).

  Args:
    params: one model's parameters.
    windows: ``[W, T + 1]`` token windows.
    spec: the LM spec.
    prefix_len: characters given as the prompt.

  Returns:
    ``(logp [W, L], hit [W, L])`` over the continuation ``windows[:, prefix_len:]``
    (``L = T + 1 - prefix_len``): log p(true char | all before it) and whether the
    argmax equals it.
  """
  logits = models.apply(params, windows[:, :-1], spec)  # [W, T, V]
  logp_all = jax.nn.log_softmax(logits, -1)
  target = windows[:, 1:]  # [W, T]
  logp = jnp.take_along_axis(logp_all, target[..., None], -1)[..., 0]
  hit = jnp.argmax(logits, -1) == target
  # Position t predicts character t + 1; the continuation starts at prefix_len.
  return logp[:, prefix_len - 1 :], hit[:, prefix_len - 1 :]


def scores_from_logprobs(logp, hit, min_k_frac: float) -> dict:
  """The three raw scores per window from ``[..., L]`` log-probs and hits."""
  length = logp.shape[-1]
  k = max(1, int(round(min_k_frac * length)))
  lowest = jnp.sort(logp, -1)[..., :k]
  # Leading run of hits: cumprod stays 1 until the first miss.
  match = jnp.cumprod(hit.astype(jnp.float32), -1).sum(-1)
  return {"mean_loglik": logp.mean(-1), "min_k": lowest.mean(-1), "exact_match": match}


@functools.partial(jax.jit, static_argnames=("spec", "prefix_len", "min_k_frac"))
def score_models(params, windows, *, spec, prefix_len, min_k_frac):
  """Scores of every window under every model: dict name -> ``[M, W]``."""

  def one(p):
    logp, hit = token_logprobs(p, windows, spec, prefix_len)
    return scores_from_logprobs(logp, hit, min_k_frac)

  # params stacked over models [M, ...]; windows shared.
  return jax.vmap(one)(params)


def roc_auc(scores, labels) -> float:
  """ROC AUC (ties count one half)."""
  from sklearn.metrics import roc_auc_score

  return float(roc_auc_score(np.asarray(labels, bool), np.asarray(scores, np.float64)))


def _pair_counts(scores, labels, clusters, ids):
  """Wins and pair counts of members of cluster a against non-members of cluster b.

  Returns:
    ``(wins [K, K], pairs [K, K])``; ties count one half.
  """
  k = len(ids)
  wins, pairs = np.zeros((k, k)), np.zeros((k, k))
  pos = [np.sort(scores[(clusters == c) & labels]) for c in ids]
  neg = [np.sort(scores[(clusters == c) & ~labels]) for c in ids]
  for a in range(k):
    for b in range(k):
      if not len(pos[a]) or not len(neg[b]):
        continue
      below = np.searchsorted(neg[b], pos[a], side="left")
      tied = np.searchsorted(neg[b], pos[a], side="right") - below
      wins[a, b] = below.sum() + 0.5 * tied.sum()
      pairs[a, b] = len(pos[a]) * len(neg[b])
  return wins, pairs


def auc_with_ci(scores, labels, clusters, *, num_boot: int, rng, level: float = 0.95):
  """ROC AUC and a cluster-bootstrap percentile CI (contributors resampled).

  The AUC is a mean over (member, non-member) comparisons, so a resample with
  cluster counts ``n`` weighs the comparisons between clusters a != b by
  ``n_a * n_b`` and those inside cluster a by ``n_a``. Naively concatenating
  duplicated clusters would also compare a cluster with its own copy, roughly
  doubling the share of within-contributor comparisons and biasing the interval
  (upwards whenever scores separate members only within a contributor).

  Args:
    scores: ``[S]`` higher = more likely a member.
    labels: ``[S]`` True for members.
    clusters: ``[S]`` cluster id (contributor) of each sample.
    num_boot: bootstrap replicates.
    rng: numpy Generator.
    level: CI coverage.

  Returns:
    ``(auc, lo, hi)``.
  """
  scores = np.asarray(scores, np.float64)
  labels = np.asarray(labels, bool)
  clusters = np.asarray(clusters)
  auc = roc_auc(scores, labels)
  ids = np.unique(clusters)
  wins, pairs = _pair_counts(scores, labels, clusters, ids)
  k = len(ids)
  boots = []
  for _ in range(num_boot):
    n = np.bincount(rng.integers(0, k, k), minlength=k).astype(np.float64)
    w = np.outer(n, n)
    np.fill_diagonal(w, n)
    total = (w * pairs).sum()
    if total > 0:
      boots.append((w * wins).sum() / total)
  if not boots:
    return auc, float("nan"), float("nan")
  a = (1 - level) / 2
  return auc, float(np.quantile(boots, a)), float(np.quantile(boots, 1 - a))


def samples(window_scores: dict, plan: np.ndarray, owner: np.ndarray):
  """Every (score, level) sample set that :func:`analyse` scores, raw and calibrated.

  Args:
    window_scores: name -> ``[M, W]`` score of each prompt window under each model.
    plan: ``[M, K]`` True where model m trained on contributor k (rows 2j, 2j+1
      are a complementary same-key pair).
    owner: ``[W]`` contributor of each window.

  Yields:
    ``(name, level, scores, member, clusters)``: ``level`` is ``contributor`` (arrays
    ``[M, K]``: mean score of each contributor's windows per model) or ``prompt``
    (arrays ``[M, W]``); ``member`` is True where the model trained on the sample;
    ``clusters`` names the contributor of each sample (the bootstrap's unit).
  """
  m, k = plan.shape
  pair = np.arange(m) // 2
  for name, s in window_scores.items():
    s = np.asarray(s, np.float64)  # [M, W]
    per_c = np.stack([s[:, owner == c].mean(1) for c in range(k)], 1)  # [M, K]
    # Reference: mean score of contributor c under the *other* pairs' models
    # that did not train on c (never the same key as the model being tested).
    ref = np.zeros((m, k))
    ref_w = np.zeros((m, len(owner)))
    for i in range(m):
      for c in range(k):
        others = (pair != pair[i]) & ~plan[:, c]
        ref[i, c] = per_c[others, c].mean()
        ref_w[i, owner == c] = s[others][:, owner == c].mean(0)
    clusters = np.tile(np.arange(k), (m, 1))
    yield name, "contributor", per_c, plan, clusters
    yield f"{name}_calibrated", "contributor", per_c - ref, plan, clusters
    # Prompt level: every (model, window) is a sample, clusters = contributors.
    member = plan[:, owner]  # [M, W]
    clusters = np.broadcast_to(owner, member.shape)
    yield name, "prompt", s, member, clusters
    yield f"{name}_calibrated", "prompt", s - ref_w, member, clusters


def analyse(window_scores: dict, plan: np.ndarray, owner: np.ndarray, *, num_boot: int, rng):
  """Member vs non-member separation for every score, raw and calibrated.

  Args:
    window_scores: name -> ``[M, W]`` score of each prompt window under each model.
    plan: ``[M, K]`` True where model m trained on contributor k (rows 2j, 2j+1
      are a complementary same-key pair).
    owner: ``[W]`` contributor of each window.
    num_boot: bootstrap replicates for the CIs.
    rng: numpy Generator.

  Returns:
    A list of row dicts: ``score``, ``level`` (contributor or prompt),
    ``auc``, ``lo``, ``hi``, ``paired_win`` (share of pairs x contributors where
    the member twin scores higher; ties count one half), ``mean_gap``.
  """
  m = plan.shape[0]
  rows = []
  for vname, level, v, member, clusters in samples(window_scores, plan, owner):
    auc, lo, hi = auc_with_ci(
      v.reshape(-1), member.reshape(-1), clusters.reshape(-1), num_boot=num_boot, rng=rng
    )
    paired_win = mean_gap = float("nan")
    if level == "contributor":
      in_twin = v[plan.reshape(m, -1)].reshape(-1)
      # Same-key twin of each member sample.
      twin_idx = np.arange(m) ^ 1
      out_twin = np.stack([v[twin_idx[i], plan[i]] for i in range(m)]).reshape(-1)
      gap = in_twin - out_twin
      paired_win = float(np.mean(gap > 0) + 0.5 * np.mean(gap == 0))
      mean_gap = float(gap.mean())
    rows.append(
      {
        "score": vname,
        "level": level,
        "auc": auc,
        "lo": lo,
        "hi": hi,
        "paired_win": paired_win,
        "mean_gap": mean_gap,
        "n": int(v.size),
      }
    )
  return rows


def format_table(rows) -> str:
  """The AUC rows of :func:`analyse` as a markdown table (empty cells where not defined)."""
  cells = [
    {
      "score": r["score"],
      "level": r["level"],
      "ROC AUC": f"{r['auc']:.3f}",
      "95% CI": f"[{r['lo']:.3f}, {r['hi']:.3f}]",
      "paired win": "" if np.isnan(r["paired_win"]) else f"{r['paired_win']:.3f}",
      "mean gap": "" if np.isnan(r["mean_gap"]) else f"{r['mean_gap']:+.4f}",
      "n": str(r["n"]),
    }
    for r in rows
  ]
  return uio.markdown_table(cells, list(cells[0]) if cells else None)
