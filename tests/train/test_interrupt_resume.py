"""Ctrl-C, then `resume()`: the finished run equals the uninterrupted one bit for bit.

A KeyboardInterrupt can arrive anywhere: before a step, inside the batch iterator, after the
forward pass (BN running statistics already moved), after the optimiser step, during the
validation pass.  Whatever it cut short is undone, the state saved is the state after the
last whole step, and the epoch's running sums travel in the checkpoint.  Compared: every
weight and buffer, the optimiser's moments and step counts, the schedule position, and every
metrics.jsonl record except its timings.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from minisnn import data as D
from minisnn import functional as F
from minisnn.train import Trainer, config_for
from minisnn.train import trainer as trainer_module
from minisnn.train.state import load_state

pytestmark = pytest.mark.usefixtures("embedded_sample_only")

SMALL = dict(dim=32, depth=1, heads=2, mlp_ratio=2)
TIMINGS = ("train_seconds", "compile_seconds", "images_per_second", "wall_minutes")
STEPS = 4                                         # per epoch: 128 images / 32




def _config(out):
    # mixup on (the card's recipe) and a clip: every random and guarded part of a step takes part
    return config_for("dysvit-tiny", epochs=2, batch_size=32, train_limit=128, val_size=500, lr=2e-3,
                      warmup_epochs=0.5, out=str(out), model_overrides=SMALL)


def _quiet(*_):
    pass


def _trained_state(path) -> dict:
    st = load_state(path)
    return {"model": st["model"], "optimizer": st["optimizer"], "schedule": st["schedule"],
            "epoch": st["epoch"], "batch": st["batch"], "skipped_total": st["skipped_total"]}


def _assert_identical(a, b, where="state"):
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), where
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            _assert_identical(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_identical(x, y, f"{where}/{i}")
    else:
        assert a == b or (a != a and b != b), (where, a, b)


def _metrics(folder):
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMINGS} for line in lines]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("full")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MINISNN_DATA_DIR", raising=False)
        mp.setenv("XDG_CACHE_HOME", str(folder / "cache"))
        Trainer(_config(folder), progress=False, log=_quiet).fit()
    return _trained_state(folder / "last.npz"), _metrics(folder)


def _interrupt_then_resume(folder, arm):
    """Run until `arm(trainer)`'s patch raises KeyboardInterrupt, then resume in a fresh Trainer."""
    part = Trainer(_config(folder), progress=False, log=_quiet)
    with pytest.MonkeyPatch.context() as mp:
        arm(part, mp)
        with pytest.raises(KeyboardInterrupt):
            part.fit()
    resumed = Trainer(_config(folder), progress=False, log=_quiet)
    resumed.resume()
    resumed.fit()
    return _trained_state(folder / "last.npz"), _metrics(folder)


def _on_call(k, before=None, after=None):
    """A wrapper for a function that raises KeyboardInterrupt on its k-th call (counting from 1),
    before calling it or after it returned."""
    calls = {"n": 0}

    def wrap(original):
        def wrapped(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == k and before:
                raise KeyboardInterrupt
            result = original(*args, **kwargs)
            if calls["n"] == k and after:
                raise KeyboardInterrupt
            return result
        return wrapped
    return wrap


def _train_step_before(k):
    def arm(trainer, mp):
        mp.setattr(trainer, "train_step", _on_call(k, before=True)(trainer.train_step))
    return arm


def _train_step_after(k):
    """After the whole step: weights, moments and BN statistics have all moved."""
    def arm(trainer, mp):
        mp.setattr(trainer, "train_step", _on_call(k, after=True)(trainer.train_step))
    return arm


def _after_forward(k):
    """Mid-step: the forward pass updated the BN running statistics, nothing else happened yet."""
    def arm(trainer, mp):
        mp.setattr(trainer_module.F, "cross_entropy", _on_call(k, before=True)(F.cross_entropy))
    return arm


def _after_optimizer_step(k):
    """Mid-step: the optimiser wrote the new weights, the step's bookkeeping did not run."""
    def arm(trainer, mp):
        mp.setattr(trainer.optimizer, "step", _on_call(k, after=True)(trainer.optimizer.step))
    return arm


def _in_the_iterator(k):
    def arm(trainer, mp):
        original = D.BatchIterator.make_batch
        calls = {"n": 0}

        def make_batch(self, b):
            calls["n"] += 1
            if calls["n"] == k:
                raise KeyboardInterrupt
            return original(self, b)
        mp.setattr(D.BatchIterator, "make_batch", make_batch)
        mp.setattr(D.BatchIterator, "__init__", _no_prefetch(D.BatchIterator.__init__))
    return arm


def _no_prefetch(init):
    def wrapped(self, *args, **kwargs):
        kwargs["prefetch"] = 0                   # build batches in this thread, so the interrupt is ours
        init(self, *args, **kwargs)
    return wrapped


def _in_validation(k):
    def arm(trainer, mp):
        mp.setattr(trainer_module, "evaluate", _on_call(k, before=True)(trainer_module.evaluate))
    return arm


CASES = {
    "before the first step": _train_step_before(1),
    "before a step of epoch 1": _train_step_before(3),
    "after a whole step of epoch 1": _train_step_after(2),
    "after the forward, epoch 2": _after_forward(STEPS + 2),
    "after the optimiser step, epoch 2": _after_optimizer_step(STEPS + 3),
    "after the last step of epoch 1": _train_step_after(STEPS),
    "in the batch iterator, epoch 2": _in_the_iterator(STEPS + 2),
    "during the first validation": _in_validation(1),
}


@pytest.mark.parametrize("where", list(CASES))
def test_resume_after_ctrl_c_equals_the_uninterrupted_run(uninterrupted, tmp_path, where):
    state, metrics = _interrupt_then_resume(tmp_path / "run", CASES[where])
    full_state, full_metrics = uninterrupted
    _assert_identical(full_state, state)
    assert metrics == full_metrics


def test_the_saved_state_is_the_state_after_the_last_whole_step(tmp_path):
    """Interrupted after the forward of step 3: the checkpoint says batch 2 and holds the BN statistics
    and epoch sums of two steps, exactly what a run stopped cleanly after two steps holds."""
    part = Trainer(_config(tmp_path / "a"), progress=False, log=_quiet)
    with pytest.MonkeyPatch.context() as mp:
        _after_forward(3)(part, mp)
        with pytest.raises(KeyboardInterrupt):
            part.fit()
    saved = load_state(tmp_path / "a" / "last.npz")
    assert saved["epoch"] == 0 and saved["batch"] == 2
    assert saved["epoch_sums"]["n"] == 2 and saved["epoch_sums"]["loss"] > 0

    clean = Trainer(_config(tmp_path / "b"), progress=False, log=_quiet)
    batches = D.BatchIterator(clean.train_x, clean.train_y, 32, seed=0, epoch=0, transform=clean.train_tf,
                              mixup=clean.mixup, drop_last=True)
    for _, (xb, yb) in zip(range(2), batches):
        clean._guarded_step(xb, yb)
    _assert_identical(dict(clean.model.state_dict()), saved["model"], "model")
    untimed = ("seconds", "compile_seconds")
    assert {k: v for k, v in clean.sums.items() if k not in untimed} == \
           {k: v for k, v in saved["epoch_sums"].items() if k not in untimed}
