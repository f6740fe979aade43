"""The embedded CIFAR-10 sample, its storage codec, and the script that builds it."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra.numpy import arrays

from minisnn import data as D
from minisnn.data import make_sample, sample

from .synthetic import CIFAR10_NAMES, write_cifar10

# The real batches, where the test run has them (CI points MINISNN_DATA_DIR at them).
REAL_CIFAR = Path(os.environ.get("MINISNN_DATA_DIR") or "~/.cache/minisnn").expanduser() / "cifar-10-batches-py"


@given(arrays(np.uint8, st.tuples(st.integers(1, 3), st.just(3), st.integers(1, 6), st.integers(1, 6))))
def test_codec_round_trips_exactly(x):
    r = sample.encode_images(x)
    assert r.dtype == np.uint8 and r.shape == x.shape
    np.testing.assert_array_equal(sample.decode_images(r), x)


def test_embedded_sample_shapes_classes_and_balance():
    path = D.sample_path()
    assert path.is_file() and path.stat().st_size < 6_000_000
    s = D.load_sample()
    (tx, ty), (vx, vy) = s["train"], s["val"]
    assert tx.shape == (2000, 3, 32, 32) and vx.shape == (500, 3, 32, 32)
    assert tx.dtype == vx.dtype == np.uint8 and ty.dtype == vy.dtype == np.int64
    assert np.bincount(ty).tolist() == [200] * 10 and np.bincount(vy).tolist() == [50] * 10
    assert s["classes"] == CIFAR10_NAMES
    assert tx.std() > 40  # real photographs, not blank images
    train_src, val_src = s["train_source_index"], s["val_source_index"]
    assert len(np.intersect1d(train_src, val_src)) == 0 and train_src.max() < 50000 and val_src.max() < 50000


@pytest.mark.skipif(not (REAL_CIFAR / "data_batch_1").is_file(), reason="real CIFAR-10 batches not available")
def test_embedded_sample_comes_from_the_training_batches():
    s = D.load_sample()
    train_x, train_y, *_ = D.load_cifar10(REAL_CIFAR)
    for split in ("train", "val"):
        idx = s[f"{split}_source_index"]
        np.testing.assert_array_equal(train_x[idx], s[split][0])
        np.testing.assert_array_equal(train_y[idx], s[split][1])


def test_make_sample_script(tmp_path):
    w = write_cifar10(tmp_path / "src", per_batch=40, test=10)  # 20 images per class
    out = tmp_path / "sample.npz"
    assert make_sample.main(["--data-dir", str(w["folder"]), "--out", str(out), "--train-per-class", "6",
                             "--val-per-class", "3", "--seed", "4", "--no-verify"]) == 0
    s = D.load_sample(out)
    (tx, ty), (vx, vy) = s["train"], s["val"]
    assert np.bincount(ty).tolist() == [6] * 10 and np.bincount(vy).tolist() == [3] * 10
    np.testing.assert_array_equal(w["train_x"][s["train_source_index"]], tx)
    np.testing.assert_array_equal(w["train_y"][s["val_source_index"]], vy)
    assert s["classes"] == CIFAR10_NAMES and s["seed"] == 4
    # the same seed rebuilds the same sample
    again = tmp_path / "again.npz"
    make_sample.make_sample(w["folder"].parent, again, 6, 3, seed=4, verify=False)
    np.testing.assert_array_equal(D.load_sample(again)["val_source_index"], s["val_source_index"])


def test_unknown_codec_and_missing_file(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, codec=np.array("raw"), x_train=np.zeros((1, 3, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="unknown image codec 'raw'"):
        D.load_sample(bad)
    with pytest.raises(FileNotFoundError, match="embedded CIFAR-10 sample missing"):
        D.load_sample(tmp_path / "nope.npz")
