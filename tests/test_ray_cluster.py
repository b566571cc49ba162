"""Shards on a Ray cluster started with ``ray start --head`` and joined with ``ray_address``."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

from metaval.configlib import load
from metaval.errors import MetavalError
from metaval.labeling import generate, load_labels

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A private test cluster: no token authentication (newer Ray enables it for `ray start`,
# and every client would then need the token).
_NO_TOKEN = {"RAY_AUTH_MODE": "disabled"}


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _wait_for_head(address: str, proc: subprocess.Popen, log: str, timeout: float = 300) -> None:
  """Polls ``ray status --address`` until the head answers (or fails the test)."""
  ray_cli = os.path.join(os.path.dirname(sys.executable), "ray")
  deadline = time.time() + timeout
  while time.time() < deadline:
    if proc.poll() is not None:
      pytest.fail(f"ray start --head exited with {proc.returncode}: {open(log).read()[-2000:]}")
    status = subprocess.run(
      [ray_cli, "status", "--address", address],
      capture_output=True,
      text=True,
      timeout=120,
      env={**os.environ, **_NO_TOKEN},
    )
    if status.returncode == 0 and "CPU" in status.stdout:
      return
    time.sleep(1)
  pytest.fail(f"the Ray head at {address} did not come up in {timeout:.0f}s")


@pytest.fixture
def ray_head():
  """A 2-CPU Ray head in its own session and temp dir; its address.

  The head runs with ``--block`` in its own process group, so the finalizer stops
  exactly this cluster (SIGTERM to the group, then SIGKILL), never other Ray
  instances on the machine as a plain ``ray stop`` would.
  """
  pytest.importorskip("ray", reason="ray is not installed (pip install 'metaval[ray]')")
  port = _free_port()
  # Short path: Ray's unix sockets live under the temp dir (path limit 107 bytes).
  temp_dir = tempfile.mkdtemp(prefix="mvray-", dir="/tmp")
  log = os.path.join(temp_dir, "head.log")
  ray_cli = os.path.join(os.path.dirname(sys.executable), "ray")
  env = {**os.environ, **_NO_TOKEN, "PYTHONPATH": REPO, "RAY_USAGE_STATS_ENABLED": "0"}
  cmd = [
    ray_cli, "start", "--head", "--block", "--num-cpus", "2", "--port", str(port),
    "--temp-dir", temp_dir, "--include-dashboard", "false", "--disable-usage-stats",
  ]  # fmt: skip
  with open(log, "w") as fh:
    proc = subprocess.Popen(
      cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
  address = f"127.0.0.1:{port}"
  try:
    _wait_for_head(address, proc, log)
    yield address
  finally:
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
      if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
          proc.wait(wait)
        except subprocess.TimeoutExpired:
          continue
    # Workers the raylet started are in the head's process group as well.
    try:
      os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
      pass
    shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.mark.slow
def test_shards_on_a_started_cluster_equal_the_local_backend(tmp_path, ray_head):
  workdir = tmp_path / "cluster"
  env = {**os.environ, **_NO_TOKEN, "PYTHONPATH": REPO, "JAX_PLATFORMS": "cpu"}
  cmd = [
    sys.executable, "-m", "metaval", "generate", "--config", "labels:tiny",
    "--config.backend=ray", f"--config.ray_address={ray_head}", "--workdir", str(workdir),
  ]  # fmt: skip
  out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "generated 32 labels" in out.stdout
  local = generate(load("labels:tiny"), str(tmp_path / "local"))
  remote = load_labels(str(workdir))
  for field in ("metric_base", "metric_full", "pair_id", "kind", "recipe", "learner"):
    np.testing.assert_array_equal(getattr(remote, field), getattr(local, field))
  for a, b in zip(remote.supp_x, local.supp_x):
    np.testing.assert_array_equal(a, b)


def test_no_cluster_at_auto_is_one_line(tmp_path, monkeypatch):
  pytest.importorskip("ray", reason="ray is not installed (pip install 'metaval[ray]')")
  if os.path.exists("/tmp/ray/ray_current_cluster"):
    pytest.skip("a Ray cluster is running on this machine; 'auto' would join it")
  monkeypatch.delenv("RAY_ADDRESS", raising=False)
  cfg = load("labels:tiny", ["--config.backend=ray", "--config.ray_address=auto"])
  with pytest.raises(MetavalError, match="cannot join the Ray cluster at 'auto'") as e:
    generate(cfg, str(tmp_path / "none"))
  assert "\n" not in str(e.value)
