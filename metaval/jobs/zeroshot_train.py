"""``metaval zeroshot-train``: label a prior of generated tasks, train and save the zero-shot model.

Labels are written one task per file under ``<workdir>/labels`` (or
``prior.labels_dir``) and skipped when present, so an interrupted run resumes.
The featurised table is written to ``<workdir>/table.npz`` (E2 reads it). The chosen model is written to
``<workdir>/model`` and, with ``ship=True``, copied over the packaged default.
"""

from __future__ import annotations

import dataclasses
import os
import time

from metaval.zeroshot import labels as labels_lib
from metaval.zeroshot import model as model_lib
from metaval.zeroshot import train as train_lib
from metaval.zeroshot.predictor import default_path, parse_learner


def make_labels(pc, labels_dir: str, seed: int) -> list:
  """Labels tasks ``first_task .. first_task + num_tasks - 1`` (resuming); returns them."""
  os.makedirs(labels_dir, exist_ok=True)
  base = [dataclasses.replace(parse_learner(n), steps=pc.steps) for n in pc.learners]
  extra = [dataclasses.replace(parse_learner(n), steps=pc.steps) for n in pc.extra_learners]
  for i in range(pc.first_task, pc.first_task + pc.num_tasks):
    path = os.path.join(labels_dir, f"task_{i:05d}.pkl")
    if os.path.exists(path):
      continue
    t0 = time.time()
    learners = base + (extra if pc.learners_every and i % pc.learners_every == 0 else [])
    tl = labels_lib.label_task(
      labels_lib.prior_task(i),
      i,
      learners,
      seed=seed,
      num_bases=pc.num_bases,
      per_kind=pc.per_kind,
      base_range=tuple(pc.base_range),
      supp_range=tuple(pc.supp_range),
      num_seeds=pc.num_seeds,
    )
    labels_lib.save(tl, path)
    print(
      f"[zeroshot] task {i}: {len(tl.kind)} pairs x {len(learners)} learners, "
      f"{time.time() - t0:.1f}s",
      flush=True,
    )
  return labels_lib.load_dir(labels_dir)


def all_labels(pc, workdir: str, seed: int) -> list:
  """The labels of the ``from_prior`` runs plus those made (or resumed) here."""
  tasks = []
  for d in filter(None, (s.strip() for s in pc.from_prior.split(","))):
    tasks += labels_lib.from_prior(d)
  labels_dir = pc.labels_dir or os.path.join(workdir, "labels")
  if pc.num_tasks:
    tasks += make_labels(pc, labels_dir, seed)
  elif os.path.isdir(labels_dir):  # num_tasks=0: use the labels already there
    tasks += labels_lib.load_dir(labels_dir)
  return tasks


def run(config, workdir: str) -> dict:
  tasks = all_labels(config.prior, workdir, config.seed)
  t0 = time.time()
  table = train_lib.table(tasks, workers=config.workers, progress=True)
  table.save(os.path.join(workdir, "table.npz"))
  print(
    f"[zeroshot] {len(table.gain)} rows from {len(tasks)} tasks featurised in "
    f"{time.time() - t0:.1f}s",
    flush=True,
  )
  net_cfg = model_lib.NetConfig(seed=config.seed, **dict(config.model))
  fitted, report = train_lib.select_and_fit(
    table,
    net_cfg,
    val_share=config.val_share,
    coverage=config.coverage,
    seed=config.seed,
    gate=config.gate,
    refit=config.refit,
  )
  out = train_lib.save(fitted, report, os.path.join(workdir, "model"))
  if config.ship:
    train_lib.ship(out, default_path())
  for k, v in report.items():
    print(f"[zeroshot] {k}: {v}")
  print(f"[zeroshot] model written to {out}" + (" and shipped" if config.ship else ""))
  return report
