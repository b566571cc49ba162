"""The Goodhart suite: gaming attacks that must not pay, valued by every estimator.

``metaval audit goodhart --config goodhart:quick`` builds a small data
market per replicate: a buyer's base set B = B0 ∪ A, where A is an earlier
contributor's (clean) set that the buyer already accepted. Against that B it offers
a *genuine* clean supplement of size n and a list of attacks of the same size, each
designed as a gamer would to maximise what an estimator pays for worthless data:

* ``random_bits``: inputs of random extreme bits, random labels (pure junk).
* ``couch``: near-constant inputs (one pool point plus 1 % jitter, so no two rows
  are identical and an exact-duplicate filter keeps them all), random labels.
* ``label_flip``: clean inputs outside B with every label flipped (pure junk).
* ``label_noise``: clean inputs outside B with 30 % of labels flipped.
* ``duplicates_of_base``: exact copies of B's points (pure junk: no new content).
* ``copy_of_contributor``: a verbatim copy of contributor A's set, resubmitted
  (pure junk: A is already in B).
* ``near_duplicates``: B's points plus small Gaussian noise (the sampler's kind).
* ``adversarial_near_duplicates``: copies of the B points that are nearest to the
  evaluation distribution (the most "valuable" points by a nearest-neighbour
  argument), each moved by exactly ``adv_margin`` times B's median nearest-neighbour
  distance: just above the predictor's near-duplicate threshold (0.25) and far above
  any exact-hash check, so neither flags them.
* ``padded_random_bits`` / ``padded_near_duplicates``: a clean core of
  ``core_frac * n`` points padded to size n with random bits or with adversarial
  near-duplicates, to inflate size-driven estimates. The row ``genuine_core`` (the
  core alone) tells whether padding pays: it does if the padded set is valued
  above its own core.

Estimators, each on its own scale (the first four in units of ``metric``):

* ``retraining``: the ground-truth label metric(B ∪ S) - metric(B), K paired seeds
  (``metaval.pairs.label``, the label pipeline's function).
* ``predictor``: ``metaval.api.load_predictor(path).value(S, base=B, learner=...)``;
  the predictor is loaded from ``predictor.path`` or trained into
  ``<workdir>/predictor`` on the quick labels. None of the attacks, bases or
  genuine sets here is a pair it was trained on.
* ``ablation``: the retraining label of a smaller learner (the learner at rung
  ``ablation.size`` of its size ladder, as ``metaval ablate`` builds them).
* ``untraining``: gradient-ascent drop (``metaval.valuation.untrain``).
* ``knn_shapley``, ``data_oob``, ``tmc_shapley``: sums over S of per-point values
  (``metaval.estimators.pointwise``, one meaning per name, as in E3): KNN-Shapley
  and Data-OOB values of B ∪ S's points; TMC-Shapley values in the game whose
  players are S's points and whose utility is the learner trained on B ∪
  (coalition), B always present.

Every estimator is a ``metaval.estimators`` estimator (``suite.make_estimator``).
Modules: ``attacks`` (market and attack registry), ``suite`` (estimators, cache,
judge), ``report`` (tables and the ``run`` job).

Every (row, estimator) cell is the mean over R replicates (fresh B0, A, genuine set
and attacks each) with a 95 % t-interval. An attack *passes* an estimator when its
mean is below the genuine set's mean and, for pure junk, when the interval's lower
end is at or below zero. Failures are reported in the summary, never dropped.
"""

from metaval.audit.goodhart.attacks import (
  ATTACKS,
  GENUINE,
  GENUINE_CORE,
  NEAR_DUP_THRESHOLD,
  Attack,
  GoodhartError,
  Market,
  build_pairs,
  make_market,
  nearest_base_distance,
  nn_scale,
  register_attack,
)
from metaval.audit.goodhart.report import run, value_table, write_outputs
from metaval.audit.goodhart.suite import (
  ACCEPTANCE_ESTIMATORS,
  ESTIMATORS,
  GoodhartResult,
  ensure_predictor,
  goodhart_suite,
  interval,
  judge,
  make_estimator,
  predictor_path,
)

__all__ = [
  "ACCEPTANCE_ESTIMATORS",
  "ATTACKS",
  "ESTIMATORS",
  "GENUINE",
  "GENUINE_CORE",
  "NEAR_DUP_THRESHOLD",
  "Attack",
  "GoodhartError",
  "GoodhartResult",
  "Market",
  "build_pairs",
  "ensure_predictor",
  "goodhart_suite",
  "interval",
  "judge",
  "make_estimator",
  "make_market",
  "nearest_base_distance",
  "nn_scale",
  "predictor_path",
  "register_attack",
  "run",
  "value_table",
  "write_outputs",
]
