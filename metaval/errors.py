"""The one base class for user-facing errors.

Anything raised as a ``MetavalError`` is a problem with the user's input (a bad
config key, an unknown task, a NaN feature, an empty set). The CLI prints it as a
single line and exits with status 2; anything else is a bug and keeps its traceback.
"""


class MetavalError(ValueError):
  """A clear, user-facing error about bad input."""


def message_line(e: BaseException, limit: int = 200) -> str:
  """The first line of an exception's message (its type name if empty), cut to ``limit``."""
  text = str(e).strip()
  line = text.splitlines()[0] if text else type(e).__name__
  return line if len(line) <= limit else line[: limit - 3] + "..."
