"""Damaged files are found, named in one line, and healed (a shard) or refused (a predictor)."""

import glob
import json
import os

import numpy as np
import pytest

from metaval import api
from metaval.configlib import load
from metaval.errors import MetavalError
from metaval.labeling import generate, load_labels, storage
from metaval.predictor import toy


def _tiny():
  # One worker process: shards are bit-reproducible, so a relabelled shard equals the original.
  return load("labels:tiny", ["--config.local_workers=1"])


def _dataset_bytes(task_dir: str) -> dict[str, bytes]:
  """Shard and array_record files of a label workdir: what must come back identical."""
  out = {}
  for p in sorted(glob.glob(os.path.join(task_dir, "**", "*"), recursive=True)):
    if os.path.isfile(p) and (p.endswith(".npz") or ".array_record" in p):
      with open(p, "rb") as fh:
        out[os.path.relpath(p, task_dir)] = fh.read()
  return out


def _one_line(e: pytest.ExceptionInfo) -> str:
  text = str(e.value)
  assert "\n" not in text, text
  return text


def _flip(path: str, start: int = 64, count: int = 32) -> None:
  with open(path, "rb") as fh:
    data = bytearray(fh.read())
  for i in range(start, min(start + count, len(data))):
    data[i] ^= 0xFF
  with open(path, "wb") as fh:
    fh.write(bytes(data))


def _truncate(path: str, keep: float) -> None:
  """Cuts a file to the first ``keep`` share of its bytes."""
  with open(path, "rb") as fh:
    data = fh.read()
  with open(path, "wb") as fh:
    fh.write(data[: int(len(data) * keep)])


def test_damaged_shard_is_named_relabelled_and_the_dataset_rebuilt_identical(tmp_path, capfd):
  workdir = str(tmp_path / "labels")
  task_dir = os.path.join(workdir, "digits")
  original = generate(_tiny(), workdir)
  before = _dataset_bytes(task_dir)
  manifest = json.load(open(os.path.join(task_dir, "tfds_complete.json")))
  assert len(manifest["shards"]) == 4 and manifest["files"]
  shard = storage.shard_path(task_dir, 2)
  with open(storage.checksum_path(shard)) as fh:
    assert fh.read().split() == [manifest["shards"]["shard-00002.npz"], "shard-00002.npz"]

  # A truncated shard: verification names it in one line ...
  _truncate(shard, keep=1 / 2)
  with pytest.raises(MetavalError, match="shard-00002.npz is damaged") as e:
    storage.verify_shard(shard)
  _one_line(e)
  # ... building the dataset from it is refused in one line (not a raw BadZipFile) ...
  with pytest.raises(MetavalError, match="shard-00002.npz is damaged"):
    storage.build_dataset(task_dir, 4)
  # ... and a rerun relabels it: the shard and the rebuilt dataset equal the originals.
  capfd.readouterr()
  os.remove(os.path.join(task_dir, "tfds_complete.json"))
  healed = generate(_tiny(), workdir)
  err = [line for line in capfd.readouterr().err.splitlines() if "damaged" in line]
  assert len(err) == 1 and shard in err[0] and "labelling the shard again" in err[0], err
  assert _dataset_bytes(task_dir) == before
  np.testing.assert_array_equal(healed.metric_full, original.metric_full)
  np.testing.assert_array_equal(healed.metric_base, original.metric_base)
  np.testing.assert_array_equal(healed.pair_id, original.pair_id)

  # A shard without its checksum file (written just before a crash) is checked by its
  # zip CRCs and adopted; a damaged one without a checksum file is still caught.
  os.remove(storage.checksum_path(shard))
  assert storage.verify_shard(shard) == manifest["shards"]["shard-00002.npz"]
  os.remove(storage.checksum_path(shard))
  _flip(shard, start=os.path.getsize(shard) // 2)
  with pytest.raises(MetavalError, match="shard-00002.npz is damaged"):
    storage.verify_shard(shard)
  storage.remove_shard(shard)

  # A damaged dataset file: loading refuses in one line; generate rebuilds it identical.
  record = next(p for p in before if ".array_record" in p)
  generate(_tiny(), workdir)
  _flip(os.path.join(task_dir, record))
  with pytest.raises(MetavalError, match="array_record.* is damaged.*metaval generate") as e:
    load_labels(workdir)
  _one_line(e)
  capfd.readouterr()
  generate(_tiny(), workdir)
  assert "rebuilding the dataset" in capfd.readouterr().err
  assert _dataset_bytes(task_dir) == before
  np.testing.assert_array_equal(load_labels(workdir).metric_full, original.metric_full)


def test_damaged_config_record_is_one_line(tmp_path):
  workdir = tmp_path / "labels"
  (workdir / "digits").mkdir(parents=True)
  (workdir / "digits" / "config.json").write_text('{"seed": 0, "kinds"')
  with pytest.raises(MetavalError, match="config.json is damaged") as e:
    generate(_tiny(), str(workdir))
  _one_line(e)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  return toy.toy_predictor(str(tmp_path_factory.mktemp("integrity") / "toy"), epochs=2)


def _copy(src: str, dst: str) -> str:
  import shutil

  shutil.copytree(src, dst)
  return dst


def test_damaged_checkpoint_is_refused_with_path_and_remedy(trained, tmp_path):
  meta = json.load(open(os.path.join(trained, "predictor.json")))
  assert meta["checkpoint"] and all(len(h) == 64 for h in meta["checkpoint"].values())
  api.load_predictor(trained)  # intact: loads
  path = _copy(trained, str(tmp_path / "flipped"))
  rel = max(meta["checkpoint"], key=lambda r: os.path.getsize(os.path.join(path, r)))
  _flip(os.path.join(path, rel))
  with pytest.raises(MetavalError, match="is damaged") as e:
    api.load_predictor(path)
  text = _one_line(e)
  assert os.path.join(path, rel) in text and "retrain" in text and "restore" in text

  # A predictor saved without checksums: a truncated file still gives one line.
  path = _copy(trained, str(tmp_path / "truncated"))
  del meta["checkpoint"]
  with open(os.path.join(path, "predictor.json"), "w") as fh:
    json.dump(meta, fh)
  target = os.path.join(path, rel)
  _truncate(target, keep=1 / 4)
  with pytest.raises(MetavalError, match="cannot restore the predictor checkpoint") as e:
    api.load_predictor(path)
  assert "retrain" in _one_line(e)


def test_damaged_predictor_json_is_one_line(trained, tmp_path):
  path = _copy(trained, str(tmp_path / "meta"))
  meta_file = os.path.join(path, "predictor.json")
  text = open(meta_file).read()
  with open(meta_file, "w") as fh:
    fh.write(text[: len(text) // 2])
  with pytest.raises(MetavalError, match="predictor.json is damaged") as e:
    api.load_predictor(path)
  assert "retrain" in _one_line(e)
  with open(meta_file, "w") as fh:
    json.dump({"targets": ["test/accuracy"]}, fh)
  with pytest.raises(MetavalError, match="predictor.json is damaged .missing model"):
    api.load_predictor(path)
