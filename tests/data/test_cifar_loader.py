"""Reading CIFAR batches, locating the data folder, and get_datasets (synthetic data in the real format)."""
from __future__ import annotations

import hashlib
import logging
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from minisnn import data as D
from minisnn.data import cifar, locate

from .synthetic import CIFAR10_NAMES, write_cifar10, write_cifar100


@pytest.fixture
def no_data_env(monkeypatch, tmp_path):
    """No MINISNN_DATA_DIR, and an empty private cache folder."""
    monkeypatch.delenv("MINISNN_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "minisnn"


@pytest.fixture(scope="module")
def c10(tmp_path_factory):
    return write_cifar10(tmp_path_factory.mktemp("c10"), per_batch=40, test=30)


def test_read_batch_layout_matches_rows(c10):
    x, y = cifar.read_batch(c10["folder"] / "data_batch_2")
    assert x.dtype == np.uint8 and x.shape == (40, 3, 32, 32) and y.dtype == np.int64
    np.testing.assert_array_equal(x, c10["train_x"][40:80])
    with open(c10["folder"] / "data_batch_2", "rb") as f:
        row = pickle.load(f, encoding="bytes")[b"data"][7]
    # row = 1024 red values, then green, then blue; each plane row-major 32 x 32
    assert x[7, 0, 0, 5] == row[5] and x[7, 1, 2, 3] == row[1024 + 2 * 32 + 3] and x[7, 2, 31, 31] == row[3071]


def test_load_cifar10_concatenates_batches_in_order(c10):
    tx, ty, sx, sy, classes = D.load_cifar10(c10["folder"])
    np.testing.assert_array_equal(tx, c10["train_x"])
    np.testing.assert_array_equal(ty, c10["train_y"])
    np.testing.assert_array_equal(sx, c10["test_x"])
    np.testing.assert_array_equal(sy, c10["test_y"])
    assert classes == CIFAR10_NAMES


def test_load_cifar100_fine_and_coarse(tmp_path):
    w = write_cifar100(tmp_path)
    tx, ty, sx, sy, classes = D.load_cifar100(w["folder"])
    np.testing.assert_array_equal(tx, w["train"][0])
    np.testing.assert_array_equal(ty, w["train"][1])
    np.testing.assert_array_equal(sy, w["test"][1])
    assert len(classes) == 100 and classes[3] == "fine3"
    _, cy, _, _, cclasses = D.load_cifar100(w["folder"], label="coarse")
    np.testing.assert_array_equal(cy, w["train"][2])
    assert len(cclasses) == 20
    with pytest.raises(ValueError, match="'fine' or 'coarse'"):
        D.load_cifar100(w["folder"], label="medium")


def test_md5_verification(tmp_path):
    w = write_cifar10(tmp_path)
    expected = {name: hashlib.md5((w["folder"] / name).read_bytes()).hexdigest() for name in cifar.CIFAR10_MD5}
    D.verify_md5(w["folder"], expected)
    with pytest.raises(D.CorruptBatchError, match="md5 mismatch for data_batch_1, data_batch_2"):
        D.verify_md5(w["folder"])  # the official md5s cannot match synthetic files
    with pytest.raises(D.CorruptBatchError, match="md5 mismatch"):
        D.get_datasets(tmp_path, val_size=10, verify=True)


def test_hostile_pickle_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo hacked",))

    bad = tmp_path / "data_batch_1"
    bad.write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(D.CorruptBatchError, match="refusing to load"):
        cifar.read_batch(bad)
    bad.write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(D.CorruptBatchError, match=r"uint8 \[N, 3072\]"):
        cifar.read_batch(bad)


@pytest.mark.parametrize("how", ["parent", "folder"])
def test_data_dir_may_be_parent_or_folder_itself(c10, no_data_env, how):
    given = c10["folder"].parent if how == "parent" else c10["folder"]
    assert D.find_dataset_dir(given) == c10["folder"]


def test_resolution_order(c10, no_data_env, monkeypatch, tmp_path):
    other = write_cifar10(tmp_path / "env", per_batch=10, test=10)
    cache = write_cifar10(no_data_env, per_batch=10, test=10)  # inside the cache folder
    assert D.find_dataset_dir() == cache["folder"]
    monkeypatch.setenv("MINISNN_DATA_DIR", str(other["folder"].parent))
    assert D.find_dataset_dir() == other["folder"]
    assert D.find_dataset_dir(c10["folder"].parent) == c10["folder"]  # --data-dir wins


def test_cache_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert locate.default_cache_dir() == tmp_path / "minisnn"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert locate.default_cache_dir() == locate.Path.home() / ".cache" / "minisnn"


def test_missing_data_message(no_data_env, tmp_path):
    with pytest.raises(D.DataNotFoundError) as err:
        D.find_dataset_dir(tmp_path / "nowhere")
    msg = str(err.value)
    assert "nowhere" in msg and "minisnn download cifar10" in msg and "--data-dir" in msg
    assert err.value.origin == "--data-dir"
    partial = tmp_path / "partial" / "cifar-10-batches-py"
    partial.mkdir(parents=True)
    (partial / "data_batch_1").write_bytes(b"x")
    with pytest.raises(D.DataNotFoundError, match="lacks data_batch_2"):
        D.find_dataset_dir(partial.parent)
    with pytest.raises(ValueError, match="dataset must be one of"):
        D.find_dataset_dir(tmp_path, dataset="mnist")


def test_get_datasets_full(c10, no_data_env):
    ds = D.get_datasets(c10["folder"].parent, val_size=50, seed=3)
    (tx, ty), (vx, vy), (sx, sy) = ds.train, ds.val, ds.test
    assert tx.shape == (150, 3, 32, 32) and vx.shape == (50, 3, 32, 32) and tx.dtype == np.uint8
    assert ty.dtype == np.int64 and np.bincount(vy, minlength=10).tolist() == [5] * 10
    # train and val partition the training batches; the test batch is untouched
    both = np.concatenate([tx, vx]).reshape(200, -1)
    ref = c10["train_x"].reshape(200, -1)
    assert sorted(map(bytes, both)) == sorted(map(bytes, ref))
    np.testing.assert_array_equal(sx, c10["test_x"])
    assert ds.classes == CIFAR10_NAMES and ds.num_classes == 10 and "CIFAR-10" in ds.source
    again = D.get_datasets(c10["folder"], val_size=50, seed=3)
    np.testing.assert_array_equal(again.val[0], vx)
    other = D.get_datasets(c10["folder"], val_size=50, seed=4)
    assert not np.array_equal(other.val[0], vx)


def test_get_datasets_cifar100(tmp_path, no_data_env):
    write_cifar100(tmp_path)
    ds = D.get_datasets(tmp_path, val_size=10, dataset="cifar100")
    assert len(ds.train[1]) == 40 and len(ds.val[1]) == 10 and ds.num_classes == 100 and ds.test is not None


def test_falls_back_to_embedded_sample_with_announcement(no_data_env, caplog):
    with caplog.at_level(logging.WARNING, logger="minisnn.data"):
        ds = D.get_datasets()
    assert ds.test is None and "embedded" in ds.source and "no test split" in ds.source
    assert ds.train[0].shape == (2000, 3, 32, 32) and ds.val[0].shape == (500, 3, 32, 32)
    text = caplog.text
    assert "embedded CIFAR-10 sample" in text and "minisnn download cifar10" in text
    messages = []
    D.get_datasets(announce=messages.append)
    assert len(messages) == 1 and "no test split" in messages[0]


def test_no_fallback_when_a_location_was_given_or_refused(no_data_env, monkeypatch, tmp_path):
    with pytest.raises(D.DataNotFoundError, match="from --data-dir"):
        D.get_datasets(tmp_path / "typo")
    with pytest.raises(D.DataNotFoundError, match="from the cache folder"):
        D.get_datasets(allow_sample=False)
    monkeypatch.setenv("MINISNN_DATA_DIR", str(tmp_path / "typo"))
    with pytest.raises(D.DataNotFoundError, match=r"\$MINISNN_DATA_DIR"):
        D.get_datasets()


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_any_pickle_protocol_reads(tmp_path, protocol):
    x = np.random.default_rng(0).integers(0, 256, (3, 3072), dtype=np.uint8)
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps({b"data": x, b"labels": [1, 2, 3]}, protocol=protocol))
    got, labels = cifar.read_batch(path)
    np.testing.assert_array_equal(got.reshape(3, -1), x)
    assert labels.tolist() == [1, 2, 3]


REAL_CIFAR = Path(os.environ.get("MINISNN_DATA_DIR") or "~/.cache/minisnn").expanduser() / "cifar-10-batches-py"


@pytest.mark.skipif(not (REAL_CIFAR / "data_batch_1").is_file(), reason="real CIFAR-10 batches not available")
def test_the_official_batches_load_through_the_restricted_reader():
    """The official files (Python 2 pickles, memo numbered from 1) read exactly as the stock unpickler reads them."""
    tx, ty, sx, sy, classes = D.load_cifar10(REAL_CIFAR, verify=True)
    assert tx.shape == (50000, 3, 32, 32) and sx.shape == (10000, 3, 32, 32) and classes == CIFAR10_NAMES
    assert np.bincount(ty).tolist() == [5000] * 10 and np.bincount(sy).tolist() == [1000] * 10
    with open(REAL_CIFAR / "test_batch", "rb") as f:
        stock = pickle.load(f, encoding="bytes")
    np.testing.assert_array_equal(sx.reshape(10000, 3072), stock[b"data"])
    np.testing.assert_array_equal(sy, stock[b"labels"])
    assert tx.flags.writeable and sx.flags.writeable
