"""Base-task registry."""

import numpy as np
import pytest

from metaval.data import TaskError, get_task, list_tasks


def test_registry_lists_builtins():
  assert {"digits", "breast_cancer", "wine", "synthetic", "code"} <= set(list_tasks())


def test_unknown_task_lists_available():
  with pytest.raises(TaskError, match="available tasks: .*digits"):
    get_task("mnist")


def test_bad_option_is_a_task_error():
  with pytest.raises(TaskError, match="bad options"):
    get_task("digits", colour=True)


@pytest.mark.parametrize("name", ["digits", "breast_cancer", "wine", "synthetic"])
def test_classification_tasks_are_standardised_and_deterministic(name):
  a = get_task(name, seed=3)
  assert a.x.dtype == np.float32 and a.y.dtype == np.int32
  np.testing.assert_allclose(a.x.mean(0), 0, atol=1e-4)
  assert set(np.unique(a.y)) == set(range(a.num_classes))
  ((xt, yt),) = a.evals.values()
  assert xt.shape[1] == a.x.shape[1] and len(xt) == len(yt)
  other = get_task(name, seed=4)
  assert not np.array_equal(a.x, other.x)


def test_synthetic_difficulty_is_controllable():
  easy = get_task("synthetic", class_sep=3.0)
  hard = get_task("synthetic", class_sep=0.3)
  assert not np.array_equal(easy.x, hard.x)


def test_code_task_groups_files_and_holds_out_files():
  t = get_task("code")
  assert t.kind == "language_model" and t.x.dtype == np.int32
  assert t.x.shape[1] == 65 and len(t.group_names) >= 8
  # each pool window belongs to exactly one file, each file to one group
  for f in np.unique(t.files):
    assert len(np.unique(t.groups[t.files == f])) == 1
  ex, ey = t.evals["heldout"]
  assert set(np.unique(ey)) == set(range(len(t.group_names)))
  # held-out windows come from files not in the pool
  pool_rows = {r.tobytes() for r in t.x[:500]}
  assert not any(r.tobytes() in pool_rows for r in ex[:200])
