"""Kept executables (``metaval.util.aot``): the same results as ``jit``, loaded, not traced."""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metaval.learners import solve
from metaval.learners.models import LearnerSpec
from metaval.util import aot


@functools.partial(jax.jit, static_argnames=("power",))
def _program(x, y, *, power):
  return {"out": jnp.tanh(x @ y) ** power, "sum": (x * power).sum(0)}


def _args(seed=0, n=5):
  rng = np.random.default_rng(seed)
  return rng.normal(size=(n, 3)).astype(np.float32), rng.normal(size=(3, 4)).astype(np.float32)


@pytest.fixture
def folder(tmp_path, monkeypatch):
  monkeypatch.setattr(aot, "cache_dir", lambda: str(tmp_path))
  return tmp_path


def _same(a, b):
  la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
  return len(la) == len(lb) and all(
    np.array_equal(np.asarray(u), np.asarray(v)) for u, v in zip(la, lb)
  )


def test_without_a_cache_folder_it_is_the_plain_call(tmp_path, monkeypatch):
  monkeypatch.setattr(aot, "cache_dir", lambda: None)
  assert _same(aot.call(_program, *_args(), power=2), _program(*_args(), power=2))
  assert not any(os.scandir(tmp_path))


def test_a_kept_executable_is_loaded_by_a_fresh_process_and_gives_jits_results(folder, monkeypatch):
  want = _program(*_args(), power=3)
  assert _same(aot.call(_program, *_args(), power=3), want)
  files = os.listdir(folder)
  assert len(files) == 1
  # Another process: nothing in memory; compiling is forbidden, so the file is loaded.
  monkeypatch.setattr(aot, "_MEMO", {})
  monkeypatch.setattr(aot, "_compile", lambda *a: pytest.fail("compiled instead of loaded"))
  assert _same(aot.call(_program, *_args(), power=3), want)
  assert _same(aot.call(_program, *_args(seed=1), power=3), _program(*_args(seed=1), power=3))


def test_static_arguments_and_shapes_key_their_own_executables(folder):
  aot.call(_program, *_args(), power=2)
  aot.call(_program, *_args(), power=3)
  aot.call(_program, *_args(n=7), power=2)
  aot.call(_program, *_args(seed=4), power=2)  # same program: no new file
  assert len(os.listdir(folder)) == 3


def test_an_edited_program_never_loads_the_old_executable(folder, monkeypatch):
  aot.call(_program, *_args(), power=2)
  monkeypatch.setattr(aot, "_MEMO", {})
  monkeypatch.setattr(aot, "_source_digest", lambda module_file: "edited")
  aot.call(_program, *_args(), power=2)
  assert len(os.listdir(folder)) == 2  # its own file, not the old one


def test_an_unreadable_file_is_compiled_again_and_replaced(folder, monkeypatch):
  aot.call(_program, *_args(), power=2)
  (path,) = [folder / f for f in os.listdir(folder)]
  path.write_bytes(b"not an executable")
  monkeypatch.setattr(aot, "_MEMO", {})
  assert _same(aot.call(_program, *_args(), power=2), _program(*_args(), power=2))
  assert path.read_bytes() != b"not an executable"


def test_a_kept_executable_that_fails_to_start_is_replaced(folder, monkeypatch):
  class Broken:
    def __call__(self, *args):
      raise jax.errors.JaxRuntimeError("NOT_FOUND: Function fusion not found")

  aot.call(_program, *_args(), power=2)
  monkeypatch.setattr(aot, "_MEMO", {})
  monkeypatch.setattr(aot, "_load", lambda path: Broken())
  assert _same(aot.call(_program, *_args(), power=2), _program(*_args(), power=2))
  assert _same(aot.call(_program, *_args(), power=2), _program(*_args(), power=2))


def test_the_solver_gives_the_same_solutions_through_kept_executables(folder, monkeypatch):
  rng = np.random.default_rng(0)
  sets = []
  for n in (40, 90, 150, 60):
    y = rng.integers(0, 3, n)
    x = (rng.normal(size=(n, 5)) + y[:, None]).astype(np.float32)
    sets.append((x, y.astype(np.int32), np.ones(n, np.float32)))
  spec = LearnerSpec("linear", steps=100, l2=1e-3, solver="lbfgs", tol=1e-4)
  kept = solve.solve_sets(sets, spec, 3, parents=[-1, -1, 0, 1], slots=2)
  assert os.listdir(folder)
  monkeypatch.setattr(aot, "_MEMO", {})
  loaded = solve.solve_sets(sets, spec, 3, parents=[-1, -1, 0, 1], slots=2)
  monkeypatch.setattr(aot, "cache_dir", lambda: None)
  plain = solve.solve_sets(sets, spec, 3, parents=[-1, -1, 0, 1], slots=2)
  assert _same(kept, plain) and _same(loaded, plain)


def test_trained_models_through_kept_executables_are_jits(folder, monkeypatch):
  """The games' and pool labels' program (``train_many``), typed PRNG keys included."""
  from metaval.data import get_task
  from metaval.learners import train_many

  task = get_task("wine")
  rng = np.random.default_rng(1)
  masks = np.zeros((3, task.pool_size), np.float32)
  for i, n in enumerate((30, 50, 70)):
    masks[i, rng.choice(task.pool_size, n, replace=False)] = 1.0
  keys = jax.random.split(jax.random.key(0), 3)
  for spec in (
    LearnerSpec("linear", steps=100, l2=1e-3, solver="lbfgs", tol=1e-4),
    LearnerSpec("mlp", width=8, steps=20),
  ):
    kept = train_many(keys, task, masks, spec, return_params=True)
    monkeypatch.setattr(aot, "_MEMO", {})
    loaded = train_many(keys, task, masks, spec, return_params=True)
    with monkeypatch.context() as m:
      m.setattr(aot, "cache_dir", lambda: None)
      plain = train_many(keys, task, masks, spec, return_params=True)
    for res in (kept, loaded):
      assert _same(res.metrics, plain.metrics) and _same(res.params, plain.params)
  assert len(os.listdir(folder)) >= 2


def test_without_jaxs_cache_switch_it_runs_jit_and_keeps_nothing(folder, monkeypatch):
  """The switch that keeps a fresh compilation out of JAX's cache is private: a JAX
  without it gets the plain jitted call, never an executable that may not start."""
  from jax._src import config as jax_config

  monkeypatch.delattr(jax_config, "enable_compilation_cache")
  assert _same(aot.call(_program, *_args(), power=5), _program(*_args(), power=5))
  assert _same(aot.call(_program, *_args(seed=2), power=5), _program(*_args(seed=2), power=5))
  assert not os.listdir(folder)


def test_executables_unused_for_a_month_are_removed_when_one_is_written(folder, monkeypatch):
  aot.call(_program, *_args(), power=2)
  (old,) = [folder / f for f in os.listdir(folder)]
  month = 31 * 86400
  os.utime(old, (old.stat().st_atime - month, old.stat().st_mtime - month))
  aot.call(_program, *_args(), power=3)  # writes another: the stale one goes
  assert not old.exists() and len(os.listdir(folder)) == 1
  # Loading an executable counts as using it.
  monkeypatch.setattr(aot, "_MEMO", {})
  (kept,) = [folder / f for f in os.listdir(folder)]
  os.utime(kept, (kept.stat().st_atime - month, kept.stat().st_mtime - month))
  aot.call(_program, *_args(), power=3)
  aot.call(_program, *_args(), power=4)
  assert kept.exists() and len(os.listdir(folder)) == 2
