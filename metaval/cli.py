"""One entry point: ``metaval <command> --config name[:variant] --config.a.b=value``.

Argument parsing and dispatch only: each command is a job ``run(config, workdir)`` in
:mod:`metaval.jobs`, imported only when called so start-up stays fast. ``--config``
names a packaged config (``labels:quick``) or a file (``path/to/x.py:variant``).
User errors (``MetavalError``) print as one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys

from metaval.configlib import ConfigError, load_config_file, parse_overrides
from metaval.errors import MetavalError
from metaval.jobs import COMMANDS, EXPERIMENT_HELP


def _add_common(s, default):
  s.add_argument(
    "--config",
    default=default or None,
    help="packaged config name or file path, optionally with ':variant' "
    f"(default: {default or 'per name'})",
  )
  s.add_argument(
    "--workdir", default=None, help="where outputs and checkpoints go (default: runs/<command>)"
  )


def _parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(
    prog="metaval",
    description="Predict the value of supplemental data without retraining.",
    epilog="Override any config field with --config.<key>=<value>.",
  )
  sub = p.add_subparsers(dest="command", metavar="command")
  for name, entry in COMMANDS.items():
    if isinstance(entry, dict):
      s = sub.add_parser(name, help=f"{name} commands: {', '.join(entry)}")
      inner = s.add_subparsers(dest="subcommand", metavar="subcommand")
      for sname, job in entry.items():
        _add_common(inner.add_parser(sname, help=job.help), job.default_config)
    else:
      _add_common(sub.add_parser(name, help=entry.help), entry.default_config)
  s = sub.add_parser("experiment", help=EXPERIMENT_HELP)
  s.add_argument("name", help="experiment name or prefix (e1 ... e7)")
  s.add_argument("--mode", choices=("quick", "full"), default="quick")
  s.add_argument(
    "--figures-only",
    action="store_true",
    help="redraw the figures from the saved results (default folder: the published one)",
  )
  s.add_argument(
    "--results",
    default=None,
    help="results folder holding README.md and results/<name>/ (default: experiments)",
  )
  _add_common(s, "")
  return p


def main(argv: list[str] | None = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  # --config.* overrides are not argparse options: split them off first, keeping
  # "--config.a.b value" pairs together.
  overrides, rest, i = [], [], 0
  while i < len(argv):
    a = argv[i]
    if a.startswith("--config.") and "=" not in a and i + 1 < len(argv):
      overrides.append(f"{a}={argv[i + 1]}")
      i += 2
      continue
    (overrides if a.startswith("--config.") else rest).append(a)
    i += 1
  parser = _parser()
  args = parser.parse_args(rest)
  if not args.command:
    parser.print_help()
    return 2
  entry = COMMANDS.get(args.command)
  label = args.command
  if isinstance(entry, dict):
    if not getattr(args, "subcommand", None):
      parser.parse_args([args.command, "--help"])
    entry = entry[args.subcommand]
    label = f"{args.command} {args.subcommand}"
  workdir = args.workdir or os.path.join("runs", label.replace(" ", "_"))
  try:
    if args.command == "experiment":
      from metaval.jobs.experiment import run_experiment

      run_experiment(
        args.name,
        args.mode,
        workdir=args.workdir,
        results=args.results,
        config=args.config,
        overrides=overrides,
        figures_only=args.figures_only,
      )
      return 0
    if not args.config:
      raise ConfigError("no --config given")
    cfg = load_config_file(args.config)
    parse_overrides(cfg, overrides)
    try:
      run = entry.load()
    except ModuleNotFoundError as e:
      if e.name and e.name.startswith("metaval"):
        raise MetavalError(f"command {label!r} is not available in this version") from None
      raise
    run(cfg, workdir)
  except ConfigError as e:
    print(f"metaval {label}: config error: {e}", file=sys.stderr)
    return 2
  except MetavalError as e:
    print(f"metaval {label}: error: {e}", file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print(f"metaval {label}: interrupted; finished work is kept, rerun to resume", file=sys.stderr)
    return 130
  return 0


if __name__ == "__main__":
  sys.exit(main())
