"""Weights-only export of training checkpoints, and the pretrained models shipped in the package."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import minisnn
from minisnn import data as D
from minisnn.data.split import stratified_split
from minisnn.train import (Trainer, config_for, evaluate, export_weights, load_trained, pretrained,
                           pretrained_names)
from minisnn.train.export import pretrained_path
from minisnn.train.state import load_state
from tests.data.synthetic import write_cifar10

SMALL = dict(dim=32, depth=1, heads=2, mlp_ratio=2)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A two-epoch run on a synthetic CIFAR-10 written in the real file format."""
    root = tmp_path_factory.mktemp("cifar")
    write_cifar10(root, per_batch=40, test=30)
    out = tmp_path_factory.mktemp("run")
    cfg = config_for("dysvit-tiny", epochs=2, batch_size=16, val_size=50, data_dir=str(root), out=str(out),
                     model_overrides=SMALL)
    Trainer(cfg, progress=False, log=lambda *_: None).fit()
    return root, out


def test_export_keeps_the_model_and_drops_the_optimiser(trained, tmp_path):
    root, run = trained
    slim = export_weights(run / "best.npz", tmp_path / "w.npz", notes={"test_acc": 0.5, "command": "x"})
    assert slim.stat().st_size < 0.6 * (run / "best.npz").stat().st_size
    full_model, full_st = load_trained(run / "best.npz")
    slim_model, slim_st = load_trained(slim)
    assert slim_st["kind"] == "weights" and "optimizer" not in slim_st
    assert slim_st["notes"] == {"test_acc": 0.5, "command": "x"}
    assert slim_st["history"] == full_st["history"] and slim_st["epoch"] == full_st["epoch"]
    for (k, a), (_, b) in zip(full_model.state_dict().items(), slim_model.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=k)
    x = np.random.default_rng(0).integers(0, 256, (8, 3, 32, 32), dtype=np.uint8)
    tf = D.EvalTransform(normalization=slim_st["normalization"])
    with minisnn.no_grad():
        np.testing.assert_array_equal(full_model(tf(x)).data, slim_model(tf(x)).data)


def test_exported_weights_cannot_be_resumed(trained, tmp_path):
    root, run = trained
    slim = export_weights(run / "last.npz", tmp_path / "w.npz")
    cfg = config_for("dysvit-tiny", epochs=3, batch_size=16, val_size=50, data_dir=str(root), out=str(tmp_path),
                     model_overrides=SMALL)
    with pytest.raises(ValueError, match="exported weights only"):
        Trainer(cfg, progress=False, log=lambda *_: None).resume(slim)


def test_heldout_indices_are_the_validation_split(trained, tmp_path):
    root, run = trained
    slim = export_weights(run / "best.npz", tmp_path / "w.npz", data_dir=root)
    held = load_state(slim)["notes"]["heldout_indices"]
    _, labels, _, _, _ = D.load_cifar10(root / "cifar-10-batches-py")
    _, val_idx = stratified_split(labels, 50, 0)
    np.testing.assert_array_equal(held, np.sort(val_idx))
    assert held.dtype == np.int32


def test_export_rejects_other_files(tmp_path):
    bogus = tmp_path / "x.npz"
    np.savez(bogus, a=np.zeros(3))
    with pytest.raises(ValueError, match="not a readable minisnn training checkpoint"):
        export_weights(bogus, tmp_path / "y.npz")


def test_export_command_line(trained, tmp_path):
    _, run = trained
    out = tmp_path / "cli.npz"
    r = subprocess.run([sys.executable, "-m", "minisnn", "export", str(run / "best.npz"), str(out),
                        "--note", "test_acc=0.61"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stdout and load_state(out)["notes"]["test_acc"] == 0.61
    r = subprocess.run([sys.executable, "-m", "minisnn", "export", str(run / "best.npz"), str(tmp_path / "a.pt")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and ".npz" in r.stderr


# ---------------------------------------------------------------- the shipped model

def test_the_shipped_tiny_model_is_listed_and_missing_names_are_refused():
    assert "dysvit-tiny-cifar10" in pretrained_names()
    assert minisnn.pretrained("dysvit-tiny-cifar10").pretrained_info["model"] == "dysvit-tiny"
    with pytest.raises(ValueError, match="no pretrained model"):
        pretrained_path("nope")


@pytest.mark.parametrize("name", pretrained_names())
def test_every_shipped_model_is_small_and_says_how_it_was_made(name):
    assert pretrained_path(name).stat().st_size < 4 * 2**20
    info = minisnn.pretrained(name).pretrained_info
    assert name.startswith(info["model"] + "-") and 0.6 <= info["test_acc"] <= 1.0
    assert info["command"].startswith("minisnn train --model ") and info["eval_command"].startswith("minisnn eval ")


@pytest.mark.parametrize("name", pretrained_names())
def test_every_shipped_model_classifies_images_it_never_saw(name):
    """On the embedded sample's images that lie in its held-out validation split, it must beat chance by far."""
    model = minisnn.pretrained(name)
    info = model.pretrained_info
    sample = D.load_sample()
    x = np.concatenate([sample["train"][0], sample["val"][0]])
    y = np.concatenate([sample["train"][1], sample["val"][1]])
    src = np.concatenate([sample["train_source_index"], sample["val_source_index"]])
    unseen = np.isin(src, info["heldout_indices"])
    assert unseen.sum() >= 100
    acc = evaluate(model, x[unseen], y[unseen], D.EvalTransform(normalization=info["normalization"]),
                   progress=False)["acc"]
    assert acc > 0.5, acc
