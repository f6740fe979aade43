"""Non-finite updates: skipped like non-finite gradients, never saved, and honestly reported.

An update can overflow although the loss and the gradients are finite (a huge learning rate
times the weight decay grows the weights by a factor 1 − η·λ at every step).  Such a step is
undone exactly (parameters, AdamW moments and step counts, BN statistics) and counted as
skipped; `save_state` refuses weights that are not finite; an epoch whose steps were all
skipped reports no training loss (null in metrics.jsonl), not 0.0.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from minisnn.train import Trainer, config_for
from minisnn.train.guard import StepSnapshot
from minisnn.train.state import TrainCheckpointError, load_state, save_state

pytestmark = pytest.mark.usefixtures("embedded_sample_only")

SMALL = dict(dim=32, depth=1, heads=2, mlp_ratio=2)




def _config(tmp_path, **kw):
    base = dict(epochs=1, batch_size=32, train_limit=256, val_size=500, out=str(tmp_path / "run"),
                model_overrides=SMALL)
    base.update(kw)
    return config_for("dysvit-tiny", **base)


def _everything(trainer) -> dict:
    return {"model": {k: np.array(v, copy=True) for k, v in trainer.model.state_dict().items()},
            "optimizer": trainer.optimizer.state_dict()}


def _assert_equal_states(a, b):
    for k in a["model"]:
        np.testing.assert_array_equal(a["model"][k], b["model"][k], err_msg=k)
    assert a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys()
    for i, s in a["optimizer"]["state"].items():
        for k, v in s.items():
            np.testing.assert_array_equal(v, b["optimizer"]["state"][i][k], err_msg=f"{i}/{k}")


def _batch(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((16, 3, 32, 32)).astype(np.float32), np.arange(16) % 10


def test_an_update_that_overflows_is_undone_and_counted(tmp_path, monkeypatch):
    tr = Trainer(_config(tmp_path), progress=False, log=lambda *_: None)
    tr.train_step(*_batch(0))                         # moments and step counts exist from here on
    before = _everything(tr)
    update = type(tr.optimizer)._update
    victim = tr.model.head.weight

    def overflowing(self, data, grad, state, group):
        update(self, data, grad, state, group)
        if data is victim.data:
            data[0, 0] = np.inf                       # one element of one parameter overflows

    monkeypatch.setattr(type(tr.optimizer), "_update", overflowing)
    loss, _, skipped = tr.train_step(*_batch(1))
    assert skipped and np.isfinite(loss)
    _assert_equal_states(before, _everything(tr))


def test_a_huge_learning_rate_never_writes_an_infinite_weight(tmp_path):
    tr = Trainer(_config(tmp_path, lr=1e6, min_lr=0.0, warmup_epochs=0.0, epochs=2), progress=False,
                 log=lambda *_: None)
    history = tr.fit()
    assert sum(h["skipped_steps"] for h in history) > 0
    for name in ("last.npz", "best.npz"):
        weights = load_state(tmp_path / "run" / name)["model"]
        bad = [k for k, v in weights.items() if v.dtype.kind == "f" and not np.isfinite(v).all()]
        assert bad == [], name


def test_save_state_refuses_non_finite_weights(tmp_path):
    weights = {"a.weight": np.ones((2, 2), np.float32), "b.bias": np.array([1.0, np.inf], np.float32)}
    path = tmp_path / "last.npz"
    with pytest.raises(TrainCheckpointError) as info:
        save_state({"model": weights}, path)
    text = str(info.value)
    assert text.startswith(str(path)) and "non-finite" in text and "b.bias (1 values)" in text and "\n" not in text
    assert not path.exists() and not list(tmp_path.iterdir())


def test_an_epoch_of_skipped_steps_reports_no_training_loss(tmp_path):
    logged = []
    tr = Trainer(_config(tmp_path), progress=False, log=logged.append)
    tr.train_step = lambda xb, yb: (float("nan"), 0.0, True)
    history = tr.fit()
    assert np.isnan(history[0]["train_loss"]) and history[0]["skipped_steps"] == tr.steps_per_epoch
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert record["train_loss"] is None and record["train_acc"] is None
    assert any(f"all {tr.steps_per_epoch} steps skipped" in line for line in logged)


def test_the_snapshot_restores_every_array_in_place(tmp_path):
    tr = Trainer(_config(tmp_path), progress=False, log=lambda *_: None)
    tr.train_step(*_batch(0))
    snap = StepSnapshot(tr.model, tr.optimizer)
    snap.take()
    before = _everything(tr)
    arrays = [p.data for p in snap.params]
    tr.train_step(*_batch(1))
    tr.train_step(*_batch(2))
    snap.restore()
    _assert_equal_states(before, _everything(tr))
    assert all(p.data is a for p, a in zip(snap.params, arrays))      # no new arrays: the same memory
