"""Base tasks (built-ins and user data) and supplement samplers."""

from metaval.data import builtin, corpus, loaders  # noqa: F401  (register the tasks and prefixes)
from metaval.data.csvfile import read_csv, read_table
from metaval.data.loaders import encode_set, from_arrays, read_npz, read_set
from metaval.data.table import Table
from metaval.data.tasks import (
  CLASSIFICATION,
  LANGUAGE_MODEL,
  Task,
  TaskError,
  get_task,
  list_tasks,
  register_prefix,
  register_task,
  task_from_config,
  task_prefixes,
  task_slug,
  task_spec,
)
from metaval.data.transform import Transform

__all__ = [
  "CLASSIFICATION",
  "LANGUAGE_MODEL",
  "Task",
  "Table",
  "TaskError",
  "Transform",
  "encode_set",
  "from_arrays",
  "get_task",
  "list_tasks",
  "read_csv",
  "read_npz",
  "read_set",
  "read_table",
  "register_prefix",
  "register_task",
  "task_from_config",
  "task_prefixes",
  "task_slug",
  "task_spec",
]
