"""Head-to-head benchmark: metaval's per-point valuation vs pyDVL and OpenDataVal.

One invocation values the same noisy training set (digits, 500 train / 500 test,
10 % flipped labels, fixed seed) with every method in every library and writes
one table (``runs/bench/baselines.{json,md}``): wall time, model fits, fits/s,
flipped-label precision@k, F1 and AUROC, and the holdout accuracy after removing
the highest-valued 30 % (lower = the values found the useful points).

metaval runs in this process (``.venv``); the peers run in subprocesses of
``.venv-bench/bin/python`` (``bash scripts/setup_bench_env.sh``) on the same data,
with a scikit-learn logistic regression, one BLAS thread per process and both
cores (pyDVL through its joblib backend; OpenDataVal has no parallel backend, so
its Monte-Carlo methods run as two joblib processes with half the budget each and
their values are averaged).

  .venv/bin/python scripts/bench_baselines.py                  # default, ~10 min
  .venv/bin/python scripts/bench_baselines.py --perms 64 --banzhaf-samples 4096
  .venv/bin/python scripts/bench_baselines.py --libs metaval --methods tmc_shapley

metaval's learner is the same convex objective as the peers' logistic regression,
solved to the same gradient tolerance (``solver="lbfgs"``, tol 1e-4, at most 100
iterations); its game engine warm-starts every permutation prefix from the previous
one and batches coalitions by training-set size (``metaval.games.utility``).
``--solver adam`` runs the older stepped learner (100 Adam steps) instead. Compiled
programs are kept in JAX's persistent cache (``--compile-cache``, default
``runs/jax_cache``), so only a machine's first run pays for compilation; the table's
meta says whether the cache was warm. Every row records the load average when it
started (the machine may be shared).

Fits are what each library trained: metaval counts requested coalitions
(``fits``; padding to the batch shape is in the wall time, not the count); peers
are counted by a wrapper around the model's ``fit`` (a byte appended to a file
per call, so joblib workers are counted too).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_PY = os.path.join(ROOT, ".venv-bench", "bin", "python")
METHODS = ("loo", "tmc_shapley", "beta_shapley", "banzhaf", "knn_shapley", "data_oob")
ONE_THREAD = {
  k: "1"
  for k in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
  )
}


# ----------------------------------------------------------------------------
# Peer side (runs inside .venv-bench; imports neither metaval nor jax).


def _stub_torchvision():
  """Inert torchvision modules so OpenDataVal imports without the CUDA-only wheel.

  OpenDataVal imports torchvision only for its image datasets, which this
  benchmark never touches; any use of a stubbed name raises.
  """
  import importlib.machinery
  import types

  class _Inert:
    def __init__(self, *a, **k):
      raise RuntimeError("torchvision is stubbed in .venv-bench (see docs/baselines.md)")

  def make(name):
    m = types.ModuleType(name)
    m.__path__ = []
    m.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)

    def getattr_(attr):
      if attr.startswith("__"):
        raise AttributeError(attr)
      return type(attr, (_Inert,), {})

    m.__getattr__ = getattr_
    return m

  names = (
    "torchvision",
    "torchvision.transforms",
    "torchvision.transforms.functional",
    "torchvision.datasets",
    "torchvision.models",
    "torchvision.models.resnet",
  )
  for n in names:
    sys.modules[n] = make(n)
    if "." in n:
      parent, child = n.rsplit(".", 1)
      setattr(sys.modules[parent], child, sys.modules[n])


def _import_opendataval():
  # transformers probes for torchvision when first imported: let it see none first.
  import transformers  # noqa: F401
  from transformers import DistilBertModel, DistilBertTokenizerFast  # noqa: F401

  _stub_torchvision()
  import opendataval.dataval as odv

  return odv


def _count_fit():
  path = os.environ.get("BENCH_FIT_COUNTER")
  if path:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, b".")
    os.close(fd)


def _counting_lr():
  from sklearn.linear_model import LogisticRegression

  class CountingLR(LogisticRegression):
    def fit(self, x, y, sample_weight=None):
      _count_fit()
      return super().fit(x, y, sample_weight=sample_weight)

  return CountingLR


def _pydvl(method, d, a):
  import joblib
  from pydvl.valuation import (
    BetaShapleyValuation,
    DataOOBValuation,
    Dataset,
    KNNShapleyValuation,
    LOOValuation,
    MaxSamples,
    MaxUpdates,
    ModelUtility,
    MSRBanzhafValuation,
    NoTruncation,
    PermutationSampler,
    RelativeTruncation,
    ShapleyValuation,
    SupervisedScorer,
  )
  from sklearn.ensemble import BaggingClassifier
  from sklearn.neighbors import KNeighborsClassifier

  lr = _counting_lr()
  train = Dataset(d["x_train"], d["y_train"])
  test = Dataset(d["x_test"], d["y_test"])
  utility = ModelUtility(lr(max_iter=100), SupervisedScorer("accuracy", test, default=0.0))
  if method == "tmc_shapley":
    sampler = PermutationSampler(truncation=RelativeTruncation(rtol=a.rtol), seed=a.seed)
    # MaxUpdates, not MaxSamples: with a parallel backend the sampler runs ahead of
    # the evaluated results, so MaxSamples stops after far fewer evaluations.
    val = ShapleyValuation(utility, sampler, MaxUpdates(a.perms))
  elif method == "beta_shapley":
    sampler = PermutationSampler(truncation=NoTruncation(), seed=a.seed)
    val = BetaShapleyValuation(utility, sampler, MaxUpdates(a.perms), alpha=16, beta=1)
  elif method == "banzhaf":
    # MSR updates do not advance MaxUpdates once per sample; count samples instead
    # (the sampler runs ahead of the results by a few batches only).
    val = MSRBanzhafValuation(utility, MaxUpdates(1), batch_size=16, seed=a.seed)
    val.is_done = MaxSamples(val.sampler, a.banzhaf_samples)
  elif method == "loo":
    val = LOOValuation(utility)
  elif method == "knn_shapley":
    val = KNNShapleyValuation(KNeighborsClassifier(n_neighbors=a.k), test, progress=False)
  elif method == "data_oob":
    bag = BaggingClassifier(
      lr(max_iter=100), n_estimators=a.oob_bags, random_state=a.seed, n_jobs=a.jobs
    )
    t0 = time.perf_counter()
    bag.fit(d["x_train"], d["y_train"])
    val = DataOOBValuation(bag)
    val.fit(train)
    return _pydvl_values(val, len(d["y_train"])), time.perf_counter() - t0
  else:
    raise ValueError(method)
  t0 = time.perf_counter()
  with joblib.parallel_config(backend="loky", n_jobs=a.jobs):
    val.fit(train)
  return _pydvl_values(val, len(d["y_train"])), time.perf_counter() - t0


def _pydvl_values(val, n):
  res = val.result
  values = np.full(n, np.nan)
  values[np.asarray(res.indices)] = np.asarray(res.values)
  return values


def _odv_one(method, d, a, seed, budget):
  import torch

  odv = _import_opendataval()
  from opendataval.metrics import Metrics
  from opendataval.model import ClassifierSkLearnWrapper

  lr = _counting_lr()
  nc = int(max(d["y_train"].max(), d["y_test"].max())) + 1
  onehot = lambda y: torch.nn.functional.one_hot(torch.as_tensor(y).long(), nc).float()  # noqa: E731
  if method == "tmc_shapley":
    ev = odv.DataShapley(sampler=odv.TMCSampler(mc_epochs=budget, random_state=seed))
  elif method == "beta_shapley":
    ev = odv.BetaShapley(
      sampler=odv.TMCSampler(mc_epochs=budget, random_state=seed), alpha=16, beta=1
    )
  elif method == "banzhaf":
    ev = odv.DataBanzhaf(num_models=budget, random_state=seed)
  elif method == "loo":
    ev = odv.LeaveOneOut(random_state=seed)
  elif method == "knn_shapley":
    ev = odv.KNNShapley(k_neighbors=a.k, random_state=seed)
  elif method == "data_oob":
    ev = odv.DataOob(num_models=budget, random_state=seed)
  else:
    raise ValueError(method)
  if method != "knn_shapley":
    ev.input_model(ClassifierSkLearnWrapper(lr, nc, max_iter=100)).input_metric(Metrics.ACCURACY)
  xtr, xte = torch.as_tensor(d["x_train"]), torch.as_tensor(d["x_test"])
  # Timed from here: worker start-up and OpenDataVal's (heavy) import are excluded.
  t0 = time.perf_counter()
  ev.input_data(xtr, onehot(d["y_train"]), xte, onehot(d["y_test"]))
  ev.train_data_values()
  values = np.asarray(ev.evaluate_data_values(), np.float64)
  return values, time.perf_counter() - t0


def _opendataval(method, d, a):
  import joblib

  budgets = {
    "tmc_shapley": a.perms,
    "beta_shapley": a.perms,
    "banzhaf": a.banzhaf_samples,
    "data_oob": a.oob_bags,
  }
  if method in budgets and a.jobs > 1:
    total = budgets[method]
    parts = [total // a.jobs + (i < total % a.jobs) for i in range(a.jobs)]
    outs = joblib.Parallel(n_jobs=a.jobs, backend="loky")(
      joblib.delayed(_odv_one)(method, d, a, a.seed + i, b) for i, b in enumerate(parts) if b
    )
    values = np.average(np.stack([o[0] for o in outs]), axis=0, weights=[b for b in parts if b])
    return values, max(o[1] for o in outs)  # the processes ran side by side
  return _odv_one(method, d, a, a.seed, budgets.get(method, 0))


def peer_main(a):
  os.environ.update(ONE_THREAD)
  from threadpoolctl import threadpool_limits

  threadpool_limits(1)
  import warnings

  warnings.filterwarnings("ignore")
  d = dict(np.load(a.data))
  counter = a.result + ".fits"
  if os.path.exists(counter):
    os.remove(counter)
  os.environ["BENCH_FIT_COUNTER"] = counter
  fn = {"pydvl": _pydvl, "opendataval": _opendataval}[a.peer]
  values, seconds = fn(a.method, d, a)
  fits = os.path.getsize(counter) if os.path.exists(counter) else 0
  out = {"values": values.tolist(), "wall_s": seconds, "fits": fits}
  with open(a.result + ".tmp", "w") as f:
    json.dump(out, f)
  os.replace(a.result + ".tmp", a.result)


def peer_smoke():
  import pydvl
  import torch

  _import_opendataval()
  from pydvl.valuation import MSRBanzhafValuation, ShapleyValuation  # noqa: F401

  assert torch.version.cuda is None, "expected the CPU build of torch"
  print(f"[bench-env] torch {torch.__version__}, pyDVL {pydvl.__version__}, OpenDataVal imports")


# ----------------------------------------------------------------------------
# Driver side (runs in .venv with metaval).


def machine_info() -> dict:
  cpu = platform.processor()
  try:
    with open("/proc/cpuinfo") as f:
      cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
  except (OSError, StopIteration):
    pass
  return {
    "date": datetime.datetime.now().isoformat(timespec="seconds"),
    "nproc": os.cpu_count(),
    "cpu": cpu,
    "load_avg_1m": os.getloadavg()[0],
    "python": platform.python_version(),
  }


def _peer_versions() -> dict:
  code = (
    "import importlib.metadata as m; import json; print(json.dumps({p: m.version(p) "
    "for p in ('pydvl', 'opendataval', 'scikit-learn', 'torch', 'numpy')}))"
  )
  try:
    out = subprocess.run([BENCH_PY, "-c", code], capture_output=True, text=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])
  except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
    return {}


def driver_main(a):
  import jax

  from metaval import games, protocol
  from metaval.learners.models import LearnerSpec
  from metaval.util import io as io_lib
  from metaval.util import jaxcache
  from metaval.valuation import noisy

  os.makedirs(a.out, exist_ok=True)
  if a.compile_cache:
    # Compiled programs persist across runs (as the peers' imports and worker
    # start-up are outside their timings); the first run on a machine compiles.
    cache_dir = os.path.abspath(a.compile_cache)
    entries_at_start = jaxcache.entries(cache_dir)
    jax.config.update("jax_compilation_cache_dir", cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  prob = noisy.noisy_problem("digits", n_train=a.n_train, noise_rate=a.noise, seed=a.seed)
  task = prob.task
  ex, ey = task.evals["test"]
  data_path = os.path.join(a.out, "data.npz")
  io_lib.save_npz(
    data_path, x_train=task.x, y_train=task.y, x_test=ex, y_test=ey, is_noisy=prob.is_noisy
  )
  # The peers' learner is scikit-learn's LogisticRegression (L-BFGS, gradient
  # tolerance 1e-4, at most 100 iterations); metaval solves the same convex objective
  # with its own solver (same tolerance and bound), or steps Adam (--solver adam).
  if a.solver == "adam":
    spec = LearnerSpec("linear", steps=100, lr=0.05, l2=1e-3)
  else:
    spec = LearnerSpec("linear", steps=100, l2=1e-3, solver=a.solver, tol=1e-4)
  info = machine_info()
  print(
    f"[bench] {info['date']} {info['cpu']} x{info['nproc']} (load {info['load_avg_1m']:.1f}); "
    f"digits {a.n_train} train / {len(ey)} test, {int(prob.is_noisy.sum())} flipped labels"
  )
  opts = {
    "loo": {},
    "tmc_shapley": {"num_permutations": a.perms, "rtol": a.rtol},
    "beta_shapley": {"num_permutations": a.perms},
    "banzhaf": {"num_samples": a.banzhaf_samples},
    "knn_shapley": {"k": a.k},
    "data_oob": {"num_bags": a.oob_bags},
  }
  results = []  # (method, library, values, wall_s, fits, note)
  methods = [m for m in METHODS if m in a.methods]
  for method in methods:
    for lib in a.libs:
      load = os.getloadavg()[0]
      if lib == "metaval":
        before = jaxcache.entries(cache_dir) if a.compile_cache else 0
        v = games.value_points(method, task, spec, seed=a.seed, **opts[method])
        notes = [f"needed {v.fits_needed}"] if v.fits_needed != v.fits else []
        new = jaxcache.entries(cache_dir) - before if a.compile_cache else 0
        if new > 0:  # programs missing from the cache were compiled inside this row's time
          notes.append(f"compiled {new} program{'s' if new > 1 else ''}")
        note = "; ".join(notes)
        results.append((method, lib, v.values, v.seconds, v.fits, note, load))
      else:
        res_path = os.path.join(a.out, f"{lib}_{method}.json")
        cmd = [
          BENCH_PY,
          os.path.abspath(__file__),
          "--peer",
          lib,
          "--method",
          method,
          "--data",
          data_path,
          "--result",
          res_path,
        ] + _shared_args(a)
        t0 = time.perf_counter()
        ok, err = _run_peer(cmd, res_path, a.timeout)
        if ok:
          with open(res_path) as f:
            r = json.load(f)
          vals = np.asarray(r["values"])
          results.append((method, lib, vals, r["wall_s"], r["fits"], "", load))
        else:
          res = (method, lib, None, time.perf_counter() - t0, 0, f"failed: {err}", load)
          results.append(res)
      m, lib_, vals, secs, fits, note, _ = results[-1]
      print(f"[bench] {m:13s} {lib_:12s} {secs:7.1f}s {fits:7d} fits {note}", flush=True)
  rows = []
  for method, lib, vals, secs, fits, note, load in results:
    row = {"method": method, "library": lib, "wall_s": secs, "fits": fits}
    row["fits_per_s"] = fits / secs if fits and secs > 0 else float("nan")
    row["load_1m"] = load
    if vals is not None and np.all(np.isfinite(vals)):
      det = protocol.noisy_label_detection(vals, prob.is_noisy)
      row.update(precision_at_k=det["precision_at_k"], f1=det["f1"], auroc=det["auroc"])
      c = protocol.removal_curve(
        prob.holdout, vals, spec, metric="holdout/accuracy", fractions=(0.0, 0.3)
      )
      row["acc_after_top30_removed"] = c["metric"][1]
    ref = next((r for r in results if r[0] == method and r[1] == "metaval"), None)
    if lib != "metaval" and ref is not None and secs > 0:
      row["metaval_speedup"] = secs / ref[3]  # wall time
      if fits and ref[4]:
        row["fits_per_s_ratio"] = (ref[4] / ref[3]) / (fits / secs)
    row["note"] = note
    rows.append(row)
  meta = {
    **info,
    "jax": jax.__version__,
    "peers": _peer_versions() if set(a.libs) - {"metaval"} else {},
    "args": {k: v for k, v in vars(a).items() if k not in ("peer", "data", "result", "method")},
    "compile_cache": "off"
    if not a.compile_cache
    else f"{'warm' if entries_at_start else 'cold (this run compiled)'}: {a.compile_cache} "
    f"({entries_at_start} entries at start, {jaxcache.entries(cache_dir) - entries_at_start} "
    "written by this run)",
    "learner": f"metaval: linear (softmax regression) {spec}; "
    "peers: sklearn LogisticRegression(max_iter=100)",
  }
  md = protocol.write_table(
    rows, os.path.join(a.out, "baselines"), title="per-point valuation: metaval vs peers", meta=meta
  )
  print(md)


def _run_peer(cmd, res_path, timeout) -> tuple[bool, list[str]]:
  """Runs one peer in its own process group; on timeout the whole group is killed.

  (joblib's worker processes inherit the output pipes, so killing only the child
  would leave the driver waiting on them.)
  """
  import signal

  proc = subprocess.Popen(
    cmd,
    env={**os.environ, **ONE_THREAD},
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
    start_new_session=True,
  )
  try:
    _, err = proc.communicate(timeout=timeout)
  except subprocess.TimeoutExpired:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    return False, [f"timed out after {timeout}s"]
  ok = proc.returncode == 0 and os.path.exists(res_path)
  return ok, ([] if ok else err.strip().splitlines()[-1:])


def _shared_args(a) -> list[str]:
  return [
    "--perms",
    str(a.perms),
    "--rtol",
    str(a.rtol),
    "--banzhaf-samples",
    str(a.banzhaf_samples),
    "--oob-bags",
    str(a.oob_bags),
    "--k",
    str(a.k),
    "--jobs",
    str(a.jobs),
    "--seed",
    str(a.seed),
  ]


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--libs", nargs="+", default=["metaval", "pydvl", "opendataval"])
  p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
  p.add_argument("--n-train", type=int, default=500)
  p.add_argument("--noise", type=float, default=0.1)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--perms", type=int, default=16, help="permutations (TMC and Beta Shapley)")
  p.add_argument("--rtol", type=float, default=0.05, help="TMC truncation tolerance")
  p.add_argument("--banzhaf-samples", type=int, default=1024)
  p.add_argument("--oob-bags", type=int, default=256)
  p.add_argument("--k", type=int, default=5, help="neighbours for KNN-Shapley")
  p.add_argument("--jobs", type=int, default=2, help="processes per peer library")
  p.add_argument(
    "--compile-cache",
    default=os.path.join(ROOT, "runs", "jax_cache"),
    help="JAX's persistent compilation cache for metaval ('' to compile in every run)",
  )
  p.add_argument(
    "--solver",
    choices=("lbfgs", "adam"),
    default="lbfgs",
    help="metaval's linear learner: solved to the optimum (as the peers) or 100 Adam steps",
  )
  p.add_argument("--timeout", type=int, default=900, help="seconds per peer run")
  p.add_argument("--out", default=os.path.join(ROOT, "runs", "bench"))
  # Internal: one peer run inside .venv-bench.
  p.add_argument("--peer", choices=("pydvl", "opendataval"), help=argparse.SUPPRESS)
  p.add_argument("--method", choices=METHODS, help=argparse.SUPPRESS)
  p.add_argument("--data", help=argparse.SUPPRESS)
  p.add_argument("--result", help=argparse.SUPPRESS)
  p.add_argument("--peer-smoke", action="store_true", help=argparse.SUPPRESS)
  a = p.parse_args(argv)
  if a.peer_smoke:
    return peer_smoke()
  if a.peer:
    return peer_main(a)
  if set(a.libs) - {"metaval"} and not os.path.exists(BENCH_PY):
    sys.exit("peers need .venv-bench: run `bash scripts/setup_bench_env.sh` first")
  return driver_main(a)


if __name__ == "__main__":
  main()
