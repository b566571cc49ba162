"""One entry point: ``metaval <command> --config name[:variant] --config.a.b=value``.

Each command is a function ``run(config, workdir)`` in the package that owns it,
imported only when called so start-up stays fast. User errors (``MetavalError``)
print as one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from metaval.configlib import ConfigError, load_config_file, parse_overrides
from metaval.errors import MetavalError

# command -> (module, function, default config, help). A command may have named
# sub-commands ("metaval audit goodhart"): then its value is a dict of those.
Command = tuple[str, str, str, str]
COMMANDS: dict[str, Command | dict[str, Command]] = {
  "fit": (
    "metaval.learners.fit",
    "run",
    "fit:quick",
    "train a batch of learners on random subsets and report their metrics",
  ),
  "generate": (
    "metaval.labeling.pipeline",
    "run",
    "labels:quick",
    "generate (base, supplement) improvement labels as a TFDS dataset",
  ),
  "labels": (
    "metaval.labeling.quality",
    "run",
    "labels:quick",
    "label quality: repeatability and improvement per supplement kind",
  ),
  "train": (
    "metaval.predictor.train",
    "run",
    "predictor:quick",
    "train the set-encoder value predictor on generated labels",
  ),
  "evaluate": (
    "metaval.predictor.evaluate",
    "run",
    "predictor:quick",
    "score the predictor on held-out splits against baselines",
  ),
  "value": (
    "metaval.api",
    "run_value",
    "value:quick",
    "value a supplemental set with a trained predictor",
  ),
  "report": (
    "metaval.report.nutrition",
    "run",
    "value:quick",
    "write a Nutrition Facts label (JSON, HTML, PNG)",
  ),
  "baselines": (
    "metaval.valuation.pointwise",
    "run",
    "baselines:quick",
    "per-point valuation baselines (LOO, Shapley, Banzhaf, KNN, OOB)",
  ),
  "ablate": (
    "metaval.valuation.ablation",
    "run",
    "ablation:quick",
    "small-model ablations across a size ladder",
  ),
  "untrain": (
    "metaval.valuation.untrain",
    "run",
    "untrain:quick",
    "value subsets by gradient-ascent untraining",
  ),
  "attribute": (
    "metaval.valuation.attribution",
    "run",
    "attribution:quick",
    "split a gain among contributors and write a royalty ledger",
  ),
  "audit": {
    "membership": (
      "metaval.audit.membership",
      "run",
      "membership:quick",
      "memorization spot-check: members vs non-members ROC AUC",
    ),
    "goodhart": (
      "metaval.audit.goodhart",
      "run",
      "goodhart:quick",
      "gaming attacks valued by every estimator",
    ),
  },
  "experiment": (
    "metaval.experiments",
    "run",
    "",
    "regenerate one results table: metaval experiment <name>",
  ),
}


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
      for sname, (_, _, default, help_text) in entry.items():
        _add_common(inner.add_parser(sname, help=help_text), default)
    else:
      s = sub.add_parser(name, help=entry[3])
      if name == "experiment":
        s.add_argument("name", help="experiment name (see experiments/README.md)")
        s.add_argument("--mode", choices=("quick", "full"), default="quick")
      _add_common(s, entry[2])
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
  entry = COMMANDS[args.command]
  label = args.command
  if isinstance(entry, dict):
    if not getattr(args, "subcommand", None):
      parser.parse_args([args.command, "--help"])
    entry = entry[args.subcommand]
    label = f"{args.command} {args.subcommand}"
  module, function, _, _ = entry
  workdir = args.workdir or os.path.join("runs", label.replace(" ", "_"))
  try:
    if args.command == "experiment":
      from metaval.experiments import run_experiment

      run_experiment(
        args.name, args.mode, workdir=args.workdir, config=args.config, overrides=overrides
      )
      return 0
    if not args.config:
      raise ConfigError("no --config given")
    cfg = load_config_file(args.config)
    parse_overrides(cfg, overrides)
    try:
      mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
      if e.name and e.name.startswith("metaval"):
        raise MetavalError(f"command {label!r} is not available in this version") from None
      raise
    getattr(mod, function)(cfg, workdir)
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
