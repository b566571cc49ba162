"""The Goodhart gate of model selection: junk must not be valued above genuine data.

A candidate value model can rank the validation tasks well on average and still
pay for junk in a corner of the task space (small, noisy bases, where repeating
B's points looks like "more data"). Model selection therefore also asks every
candidate the Goodhart suite's question on the validation tasks (generated tasks
held out whole, never trained on), anchored on their retraining labels:

* **clear pairs**: within one validation task and learner, a ``clean`` supplement
  (genuine pool points outside B) and a junk supplement whose labels put the clean
  one above the junk one by more than ``CLEAR``. Junk kinds: ``label_noise``,
  ``random_bits``, ``constant`` (the "motionless couch"), ``duplicates`` and
  ``near_duplicates``. A pair is *violated* when the candidate's gain estimate for
  the junk is not below its estimate for the clean set.
* **pure junk**: ``random_bits`` and ``constant`` supplements whose label is <= 0;
  their interval must not lie wholly above zero.

Pairs where the labels themselves do not separate genuine data from junk (both
worth about nothing, e.g. on a task the base already saturates) ask nothing: there
a faithful model may order them either way. A candidate passes when, for every
junk kind, at most ``MAX_VIOLATION`` of its clear pairs are violated and at most
``MAX_VIOLATION`` of the pure junk has its interval above zero. Selection keeps the
best validation Spearman among the candidates that pass; if none does, the one
that violates the fewest clear pairs over all junk kinds (the report says so).
"""

from __future__ import annotations

import numpy as np

JUNK = ("label_noise", "random_bits", "constant", "duplicates", "near_duplicates")
PURE_JUNK = ("random_bits", "constant")
CLEAN = "clean"
CLEAR = 0.02  # labels separate a pair when clean - junk exceeds this (accuracy)
MAX_VIOLATION = 0.05  # largest share of violated clear pairs (or pure junk above 0)


def clear_pairs(kind: np.ndarray, gain: np.ndarray, group: np.ndarray, junk: str):
  """``(clean_rows, junk_rows)``: the clear pairs of one junk kind.

  Args:
    kind: ``[R]`` supplement kind of each row.
    gain: ``[R]`` retraining label of each row.
    group: ``[R]`` ranking group (task and learner); pairs never cross groups.
    junk: the junk kind.

  Returns:
    Two int arrays of equal length: row indices of the clean and the junk member.
  """
  ci, ji = [], []
  clean, bad = np.flatnonzero(kind == CLEAN), np.flatnonzero(kind == junk)
  for g in np.intersect1d(group[clean], group[bad]):
    c, j = clean[group[clean] == g], bad[group[bad] == g]
    sep = gain[c][:, None] - gain[j][None, :] > CLEAR
    a, b = np.nonzero(sep)
    ci.append(c[a])
    ji.append(j[b])
  if not ci:
    return np.zeros(0, np.int64), np.zeros(0, np.int64)
  return np.concatenate(ci), np.concatenate(ji)


def check(pred_gain: np.ndarray, half_width, kind, gain, group) -> dict:
  """The gate's verdict on one candidate's gain estimates for the validation rows.

  Args:
    pred_gain: ``[R]`` the candidate's gain estimate of each validation row.
    half_width: the candidate's interval half-width (accuracy): one, or one per row.
    kind: ``[R]`` the validation rows' supplement kinds.
    gain: ``[R]`` their retraining labels.
    group: ``[R]`` their ranking groups (task and learner).

  Returns:
    ``{"passed", "worst_violation", "violation", "junk": {kind: {"clear_pairs",
    "violation", "margin_q05"[, "pure_junk_rows", "interval_above_zero"]}}}``:
    ``worst_violation`` is the largest share over the junk kinds (and pure junk's
    intervals), ``violation`` the share of all clear pairs violated, ``margin_q05``
    the 5% quantile of the estimated clean - junk margin over a kind's clear pairs.
  """
  kind, gain, group = np.asarray(kind), np.asarray(gain), np.asarray(group)
  half_width = np.broadcast_to(np.asarray(half_width, np.float64), np.shape(pred_gain))
  out, violated, pairs = {}, 0, 0
  for junk in JUNK:
    ci, ji = clear_pairs(kind, gain, group, junk)
    margin = pred_gain[ci] - pred_gain[ji]
    violated, pairs = violated + int(np.sum(margin <= 0.0)), pairs + len(ci)
    rec = {
      "clear_pairs": int(len(ci)),
      "violation": round(float(np.mean(margin <= 0.0)), 4) if len(ci) else 0.0,
      "margin_q05": round(float(np.quantile(margin, 0.05)), 4) if len(ci) else None,
    }
    if junk in PURE_JUNK:
      rows = (kind == junk) & (gain <= 0.0)
      rec["pure_junk_rows"] = int(rows.sum())
      above = pred_gain[rows] - half_width[rows] > 0.0
      rec["interval_above_zero"] = round(float(above.mean()), 4) if rows.any() else 0.0
    out[junk] = rec
  worst = max(max(r["violation"], r.get("interval_above_zero", 0.0)) for r in out.values())
  return {
    "passed": bool(worst <= MAX_VIOLATION),
    "worst_violation": worst,
    "violation": round(violated / max(pairs, 1), 4),
    "junk": out,
  }
