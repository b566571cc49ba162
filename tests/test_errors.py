"""One-line rendering of exceptions for user-facing errors."""

from __future__ import annotations

from metaval.errors import message_line


def test_message_line_keeps_the_first_line_and_cuts_long_ones():
  assert message_line(ValueError("bad shape\nTraceback noise")) == "bad shape"
  assert message_line(KeyError()) == "KeyError"  # no message: the type says it
  long = message_line(ValueError("x" * 500), limit=50)
  assert len(long) == 50 and long.endswith("...")


def test_message_line_with_type_names_the_library_error():
  assert message_line(ValueError("could not convert\nmore"), with_type=True) == (
    "ValueError: could not convert"
  )
  assert message_line(OSError(), with_type=True) == "OSError"
