"""The package installs from a wheel and runs outside the checkout (issue 10, item 6)."""

import configparser
import os
import shutil
import subprocess
import sys
import zipfile

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCK = os.path.join(REPO, "requirements", "lock.txt")


def _lock() -> dict[str, str]:
  pins = {}
  with open(LOCK) as f:
    for line in f:
      line = line.split("#", 1)[0].strip()
      if line:
        name, sep, version = line.partition("==")
        assert sep, f"lock line is not an exact pin: {line!r}"
        pins[canonicalize_name(name)] = version
  return pins


def test_lock_pins_every_dependency_and_extra_within_setup_cfg_ranges():
  cfg = configparser.ConfigParser()
  cfg.read(os.path.join(REPO, "setup.cfg"))
  reqs = cfg["options"]["install_requires"].split()
  for extra in cfg["options.extras_require"].values():
    reqs += extra.split()
  pins = _lock()
  assert "metaval" not in pins
  for text in reqs:
    req = Requirement(text)
    name = canonicalize_name(req.name)
    assert name in pins, f"{req.name} is not in requirements/lock.txt (run scripts/lock.sh)"
    assert req.specifier.contains(pins[name], prereleases=True), (text, pins[name])


def test_setup_env_installs_from_the_lock_and_reinstalls_when_it_changes():
  with open(os.path.join(REPO, "scripts", "setup_env.sh")) as f:
    script = f.read()
  assert '-c "$lock"' in script and "requirements/lock.txt" in script
  stamp_line = next(ln for ln in script.splitlines() if ln.startswith("want="))
  assert '"$lock"' in stamp_line  # a new lock changes the stamp


def _source_copy(dest):
  """The files a wheel is built from, copied so no stale build/ of the checkout leaks in."""
  for name in ("setup.cfg", "pyproject.toml", "README.md"):
    shutil.copy(os.path.join(REPO, name), dest / name)
  shutil.copytree(
    os.path.join(REPO, "metaval"),
    dest / "metaval",
    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
  )


@pytest.mark.slow
def test_wheel_generates_labels_by_config_name_outside_the_checkout(tmp_path):
  src, dist, site, work = (tmp_path / d for d in ("src", "dist", "site", "work"))
  for d in (src, work):
    d.mkdir()
  _source_copy(src)
  pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
  subprocess.run(
    [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(src)], check=True
  )
  (wheel,) = dist.glob("metaval-*.whl")
  names = zipfile.ZipFile(wheel).namelist()
  assert "metaval/configs/labels.py" in names and "metaval/jobs/experiment.py" in names
  subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True)

  # Only the wheel's copy is importable: PYTHONPATH is the install target, the cwd an
  # empty folder (the dependencies come from this interpreter's site-packages).
  env = {**os.environ, "PYTHONPATH": str(site), "WANDB_MODE": "offline", "WANDB_SILENT": "true"}

  def python(*args):
    r = subprocess.run(
      [sys.executable, *args], cwd=work, env=env, capture_output=True, text=True, timeout=900
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout

  where = python("-c", "import metaval; print(metaval.__file__)").strip()
  assert where.startswith(str(site)), where
  out = python("-m", "metaval.cli", "generate", "--config", "labels:tiny", "--workdir", "out")
  assert "32 labels" in out, out[-2000:]

  # The labels are on disk in the workdir and load back with the wheel's own reader.
  check = (
    "import sys; from metaval.labeling import storage; "
    "ls = storage.load_task_dir(sys.argv[1]); print(len(ls), ls.improvement.shape[0])"
  )
  assert python("-c", check, "out/digits").split() == ["32", "32"]
  assert sorted(os.listdir(work)) == ["out"]  # nothing written outside the workdir
