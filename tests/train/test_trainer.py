"""The trainer on the embedded CIFAR-10 sample: learning, determinism, exact resume, NaN guard, CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest

from minisnn.train import Trainer, config_for, load_trained
from minisnn.train.state import load_state

# A very small Dy-SViT keeps these runs to seconds while exercising hypernetworks, BN and attention.
SMALL = dict(dim=32, depth=1, heads=2, mlp_ratio=2)


@pytest.fixture(autouse=True)
def _embedded_sample_only(tmp_path, monkeypatch):
    """No data dir, no env var, an empty cache: the trainer must fall back to the embedded sample."""
    monkeypatch.delenv("MINISNN_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def _config(tmp_path, name="run", **kw):
    base = dict(epochs=2, batch_size=32, train_limit=256, val_size=500, lr=2e-3, warmup_epochs=0.5,
                out=str(tmp_path / name), model_overrides=SMALL)
    base.update(kw)
    return config_for("dysvit-cifar10", **base)


def _quiet(*_):
    pass


def test_loss_goes_down_on_the_embedded_sample(tmp_path):
    cfg = _config(tmp_path, epochs=4, train_limit=512, mixup_alpha=0.0)
    tr = Trainer(cfg, progress=False, log=_quiet)
    assert "sample" in tr.data.source
    hist = tr.fit()
    assert hist[-1]["train_loss"] < hist[0]["train_loss"] - 0.05
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(l)["epoch"] for l in lines] == [1, 2, 3, 4]
    assert (tmp_path / "run" / "curves.png").stat().st_size > 0
    model, st = load_trained(tmp_path / "run" / "best.npz")
    assert st["model_name"] == "dysvit-cifar10"


def test_two_runs_with_the_same_seed_are_identical(tmp_path):
    a = Trainer(_config(tmp_path, "a"), progress=False, log=_quiet)
    b = Trainer(_config(tmp_path, "b"), progress=False, log=_quiet)
    ha, hb = a.fit(), b.fit()
    assert [h["train_loss"] for h in ha] == [h["train_loss"] for h in hb]
    for (k, va), (_, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        np.testing.assert_array_equal(va, vb, err_msg=k)


def test_resume_equals_uninterrupted_training(tmp_path):
    full = Trainer(_config(tmp_path, "full", epochs=3), progress=False, log=_quiet)
    full.fit()

    # interrupted run: stop in the middle of epoch 2 (Ctrl-C), then resume in a fresh Trainer
    part = Trainer(_config(tmp_path, "part", epochs=3), progress=False, log=_quiet)
    calls = {"n": 0}
    original = part.train_step

    def interrupting_step(xb, yb):
        calls["n"] += 1
        if calls["n"] == part.steps_per_epoch + 3:
            raise KeyboardInterrupt
        return original(xb, yb)

    part.train_step = interrupting_step
    with pytest.raises(KeyboardInterrupt):
        part.fit()
    st = load_state(tmp_path / "part" / "last.npz")
    assert st["epoch"] == 1 and st["batch"] == 2

    resumed = Trainer(_config(tmp_path, "part", epochs=3), progress=False, log=_quiet)
    resumed.resume()
    resumed.fit()
    for (k, va), (_, vb) in zip(full.model.state_dict().items(), resumed.model.state_dict().items()):
        np.testing.assert_array_equal(va, vb, err_msg=k)
    assert [h["val_acc"] for h in full.history] == [h["val_acc"] for h in resumed.history]


def test_non_finite_steps_are_skipped_and_counted(tmp_path):
    tr = Trainer(_config(tmp_path, epochs=1), progress=False, log=_quiet)
    before = {k: v.copy() for k, v in tr.model.state_dict().items()}
    xb = np.random.default_rng(0).standard_normal((8, 3, 32, 32)).astype(np.float32)
    yb = np.arange(8) % 10
    # Poison one weight so the loss is NaN: the step must be skipped, weights and BN statistics untouched.
    w = tr.model.head.weight
    w.data[0, 0] = np.nan
    loss, _, skipped = tr.train_step(xb, yb)
    assert skipped and not np.isfinite(loss)
    for k, v in tr.model.state_dict().items():
        if k == "head.weight":
            continue
        np.testing.assert_array_equal(v, before[k], err_msg=k)
    w.data[0, 0] = before["head.weight"][0, 0]
    # and inside a real epoch the skip is counted in the log
    calls = {"n": 0}
    original = tr.train_step

    def sometimes_nan(x, y):
        calls["n"] += 1
        if calls["n"] not in (2, 5):
            return original(x, y)
        keep = w.data[0, 0]
        w.data[0, 0] = np.nan
        try:
            return original(x, y)
        finally:
            w.data[0, 0] = keep

    tr.train_step = sometimes_nan
    hist = tr.fit()
    assert hist[0]["skipped_steps"] == 2
    assert tr.skipped_total == 2
