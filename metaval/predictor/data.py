"""The predictor's training data: label sets in, featurised and standardised pairs out.

``load_label_sets`` reads (or first generates) the configured labels, ``build_pairs``
featurises them (``features``; cached on disk by content) into one ``PairData``,
``random_split`` cuts train / validation / test, and ``Normalizer`` holds the
training statistics every input and target is standardised with (saved with the
predictor, reused by the API).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import numpy as np

from metaval.data import task_slug
from metaval.errors import MetavalError
from metaval.predictor import features as F
from metaval.util import io


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
  parts += (json.dumps(ls.task_options, sort_keys=True),) if ls.task_options else ()
  for part in parts + (("no-proxies",) if not featurizer.proxies else ()):
    h.update(str(part).encode())
  h.update(np.asarray(ls.pair_id).tobytes())
  h.update("".join(map(str, ls.learner)).encode())
  # Content, not just ids: a regenerated label set may reuse the same pair ids.
  for i in range(len(ls)):
    h.update(np.ascontiguousarray(ls.base_indices[i]).tobytes())
    h.update(np.ascontiguousarray(ls.supp_x[i]).tobytes())
    h.update(np.ascontiguousarray(ls.supp_y[i]).tobytes())
  path = os.path.join(cache_dir, f"features-{task_slug(ls.task)}-{h.hexdigest()[:16]}.npz")
  if os.path.isfile(path):
    with np.load(path) as z:
      return F.PairFeatures(**{k: z[k] for k in z.files})
  xf = F.featurize_labels(ls, featurizer)
  io.save_npz(path, **xf.arrays())  # per-process temporary: parallel runs may featurise at once
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
