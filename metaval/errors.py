"""The one base class for user-facing errors.

Anything raised as a ``MetavalError`` is a problem with the user's input (a bad
config key, an unknown task, a NaN feature, an empty set). The CLI prints it as a
single line and exits with status 2; anything else is a bug and keeps its traceback.
"""


class MetavalError(ValueError):
  """A clear, user-facing error about bad input."""


def message_line(e: BaseException, limit: int = 200, with_type: bool = False) -> str:
  """An exception as one line, cut to ``limit`` characters.

  The first line of its message (its type name if the message is empty); with
  ``with_type``, ``"Type: first line"``, for errors raised from inside a library
  whose type says what went wrong.
  """
  text = str(e).strip()
  line = text.splitlines()[0] if text else ""
  if with_type or not line:
    line = f"{type(e).__name__}: {line}" if line else type(e).__name__
  return line if len(line) <= limit else line[: limit - 3] + "..."
