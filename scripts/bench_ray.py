"""Benchmark: labels/s of the Ray backend with 1 worker vs 2 workers, same shards, one run.

Command (about 2-3 min on 2 CPU cores):
  python scripts/bench_ray.py --shards 12
  python scripts/bench_ray.py --ray-address 127.0.0.1:6379   # join a running cluster

Both sides run the same shards of the same config (default ``labels:quick``:
digits, the linear learner) as Ray tasks, the way ``metaval generate
--config.backend=ray`` runs them: one CPU per task, XLA and BLAS on one thread
per worker (``pipeline.worker_env`` and ``pipeline.one_core_xla``). "W workers"
means at most W shards in flight. Before timing, W warm-up shards (not counted)
start and compile every worker. The sides alternate (1, 2, 2, 1, ...) so that a
change in the machine's load hits both alike.

Each task also reports its process's CPU seconds, so the JSON gives each side's
CPU share (CPU seconds / (wall seconds x W)), and labels per CPU-second, which
show whether the workers themselves scale (equal per-CPU-second rates mean a
ratio of W on W free cores). A control measures what the machine allows: in
every round, W Ray tasks spin in pure Python for ``--control-seconds`` and
report the CPU seconds they got. Its ratio (W tasks vs 1) is the ceiling of any
speed-up on this machine at that moment: 2.0 on two free cores, less on a shared
one. Writes ``runs/bench/ray.{json,md}`` and prints the table with the machine and
its load average.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import time

import numpy as np

from metaval.configlib import load
from metaval.labeling import pipeline
from metaval.util import env
from metaval.util import io as io_lib


def timed_shard(cfg: dict, task_name: str, shard: int) -> dict:
  """``pipeline``'s Ray shard (one-core XLA, then ``run_shard``) plus its own timing."""
  pipeline.one_core_xla()
  t0, c0 = time.perf_counter(), time.process_time()
  rec = pipeline.run_shard(cfg, task_name, shard)
  digest = hashlib.sha256(rec["metric_base"].tobytes() + rec["metric_full"].tobytes())
  return {
    "pid": os.getpid(),
    "rows": int(len(rec["pair_id"]) * len(rec["learner"])),
    "wall": time.perf_counter() - t0,
    "cpu": time.process_time() - c0,
    "digest": digest.hexdigest(),
  }


def spin(seconds: float) -> float:
  """Busy-waits in pure Python for ``seconds``; returns the CPU seconds it got."""
  t0, c0 = time.perf_counter(), time.process_time()
  while time.perf_counter() - t0 < seconds:
    pass
  return time.process_time() - c0


def control(spinner, workers: int, seconds: float) -> float:
  """CPU seconds ``workers`` concurrent spinning tasks got, per wall second."""
  import ray

  return sum(ray.get([spinner.remote(seconds) for _ in range(workers)])) / seconds


def run_window(remote, cfg: dict, task_name: str, shards: list[int], workers: int) -> dict:
  """Runs ``shards`` with at most ``workers`` in flight; returns wall time and task reports."""
  import ray

  todo = list(shards)
  pending, reports = [], []
  t0 = time.perf_counter()
  while todo or pending:
    while todo and len(pending) < workers:
      pending.append(remote.remote(cfg, task_name, todo.pop(0)))
    done, pending = ray.wait(pending, num_returns=1)
    reports.append(ray.get(done[0]))
  return {"seconds": time.perf_counter() - t0, "tasks": reports}


def main(argv=None) -> dict:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--config", default="labels:quick")
  p.add_argument("--shards", type=int, default=12, help="timed shards per side and round")
  p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
  p.add_argument("--rounds", type=int, default=2, help="repeats of every side (alternating)")
  p.add_argument("--ray-address", default="", help='"" starts a local Ray; else join it')
  p.add_argument("--control-seconds", type=float, default=3.0, help="spin time of the control")
  p.add_argument("--out", default="runs/bench")
  args, overrides = p.parse_known_args(argv)
  import ray

  cfg = load(args.config, overrides)
  if "," in str(cfg.task.name):
    raise SystemExit("the benchmark needs a single-task config")
  cfg.backend, cfg.ray_address, cfg.ray_num_cpus = "ray", args.ray_address, max(args.workers)
  cfg_dict, task_name = cfg.to_dict(), str(cfg.task.name)
  record = {
    "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    "loadavg_start": os.getloadavg(),
  }
  started_here = not ray.is_initialized() and not args.ray_address
  pipeline.init_ray(cfg)
  worker_env = {"env_vars": pipeline.worker_env()}
  remote = ray.remote(num_cpus=1)(timed_shard).options(runtime_env=worker_env)
  spinner = ray.remote(num_cpus=1)(spin).options(runtime_env=worker_env)
  try:
    top = max(args.workers)
    t0 = time.perf_counter()
    warm = run_window(remote, cfg_dict, task_name, list(range(10_000, 10_000 + top)), top)
    t_warm = time.perf_counter() - t0
    warm_pids = {r["pid"] for r in warm["tasks"]}
    shards = list(range(args.shards))
    runs = {w: [] for w in args.workers}
    cores = {w: [] for w in args.workers}
    for r in range(args.rounds):
      for w in args.workers if r % 2 == 0 else args.workers[::-1]:
        runs[w].append(run_window(remote, cfg_dict, task_name, shards, w))
        cores[w].append(control(spinner, w, args.control_seconds))
  finally:
    if started_here:
      ray.shutdown()
  record["loadavg_end"] = os.getloadavg()
  # After Ray's start: machine() initialises JAX, and Ray forks its daemons.
  record.update(env.machine())

  digests = {w: [sorted(t["digest"] for t in run["tasks"]) for run in rs] for w, rs in runs.items()}
  first = next(iter(digests.values()))[0]
  rows, sides = [], {}
  for w, rs in runs.items():
    labels = sum(t["rows"] for run in rs for t in run["tasks"])
    seconds = sum(run["seconds"] for run in rs)
    cpu = sum(t["cpu"] for run in rs for t in run["tasks"])
    pids = {t["pid"] for run in rs for t in run["tasks"]}
    sides[w] = {
      "labels": labels,
      "seconds": seconds,
      "seconds_per_round": [run["seconds"] for run in rs],
      "labels_per_s": labels / seconds,
      "cpu_seconds": cpu,
      "cpu_share_per_worker": cpu / (seconds * w),
      "labels_per_cpu_s": labels / cpu,
      "worker_pids": sorted(pids),
      "cold_workers": sorted(pids - warm_pids),
      "labels_equal_to_first_side": all(d == first for d in digests[w]),
      "control_cores": float(np.mean(cores[w])),
      "control_cores_per_round": cores[w],
    }
  base = sides[min(args.workers)]
  for w, s in sides.items():
    s["speedup"] = s["labels_per_s"] / base["labels_per_s"]
    s["per_cpu_s_ratio"] = s["labels_per_cpu_s"] / base["labels_per_cpu_s"]
    s["control_ratio"] = s["control_cores"] / base["control_cores"]
    rows.append(
      {
        "Ray workers": w,
        "labels": s["labels"],
        "seconds": s["seconds"],
        "labels/s": s["labels_per_s"],
        "speed-up": s["speedup"],
        "CPU share per worker": s["cpu_share_per_worker"],
        "control: cores got": s["control_cores"],
        "labels per CPU-s": s["labels_per_cpu_s"],
        "same labels": s["labels_equal_to_first_side"],
      }
    )
  result = {
    "machine": record,
    "config": args.config,
    "overrides": overrides,
    "ray_address": args.ray_address or "local (started by the benchmark)",
    "shards": args.shards,
    "rounds": args.rounds,
    "warmup_seconds": t_warm,
    "sides": sides,
    "speedup": sides[max(args.workers)]["speedup"],
    "machine_ceiling": sides[max(args.workers)]["control_ratio"],
  }
  text = "\n".join(
    [
      f"Ray benchmark ({args.config} {' '.join(overrides)}, {args.shards} shards x "
      f"{args.rounds} rounds per side, Ray {ray.__version__}) on {record['cores']} x "
      f"{record['cpu']}, {record['date']}; load average (1, 5, 15 min) at start "
      f"{tuple(round(x, 2) for x in record['loadavg_start'])}, at end "
      f"{tuple(round(x, 2) for x in record['loadavg_end'])}; "
      f"{env.format_versions(record['versions'])}",
      "",
      io_lib.markdown_table(rows, floatfmt=".2f"),
      "",
      f"speed-up, {max(args.workers)} workers vs {min(args.workers)}: "
      f"{result['speedup']:.2f}x; the machine's ceiling (control: spinning tasks, "
      f"{max(args.workers)} vs {min(args.workers)}): {result['machine_ceiling']:.2f}x; "
      f"labels per CPU-second: {sides[max(args.workers)]['per_cpu_s_ratio']:.2f}x",
    ]
  )
  io_lib.write_json(os.path.join(args.out, "ray.json"), result, indent=1)
  io_lib.write_text(os.path.join(args.out, "ray.md"), text + "\n")
  print(text)
  return result


if __name__ == "__main__":
  main()
