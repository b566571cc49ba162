"""Base tasks and supplement samplers."""

from metaval.data.tasks import (
  CLASSIFICATION,
  LANGUAGE_MODEL,
  Task,
  TaskError,
  get_task,
  list_tasks,
  register_task,
)

__all__ = [
  "CLASSIFICATION",
  "LANGUAGE_MODEL",
  "Task",
  "TaskError",
  "get_task",
  "list_tasks",
  "register_task",
]
