"""Training checkpoints: exact round trip, clear errors, and atomic replacement under SIGKILL."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from minisnn.train.state import (TRAIN_KIND, WEIGHTS_KIND, is_trainer_checkpoint, load_state, load_trainer_checkpoint,
                                 save_state)


def _example_state(rng):
    return {
        "model": {"a.weight": rng.standard_normal((3, 4)).astype(np.float32), "bn.num_batches_tracked": np.array(7)},
        "optimizer": {"state": {0: {"step": 3, "exp_avg": rng.standard_normal(5)}}, "param_groups": [{"lr": 1e-3}]},
        "epoch": 2,
        "batch": 11,
        "history": [{"epoch": 1, "val_acc": 0.25, "val_loss": float("nan")}],
        "shape": (3, 4),
        "name": "x",
        "flag": True,
        "none": None,
    }


def test_round_trip_is_exact(tmp_path, rng):
    st = _example_state(rng)
    path = save_state(st, tmp_path / "last.npz")
    back = load_state(path)
    np.testing.assert_array_equal(back["model"]["a.weight"], st["model"]["a.weight"])
    assert back["model"]["a.weight"].dtype == np.float32
    assert back["model"]["bn.num_batches_tracked"].shape == ()
    assert back["optimizer"]["state"][0]["step"] == 3  # int keys come back as ints
    np.testing.assert_array_equal(back["optimizer"]["state"][0]["exp_avg"], st["optimizer"]["state"][0]["exp_avg"])
    assert back["shape"] == (3, 4) and back["name"] == "x" and back["flag"] is True and back["none"] is None
    assert np.isnan(back["history"][0]["val_loss"])
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_damaged_files_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_state(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"this is not a zip file")
    with pytest.raises(ValueError, match="not a readable minisnn training checkpoint"):
        load_state(bad)
    good = save_state({"x": np.arange(1000.0)}, tmp_path / "good.npz")
    data = good.read_bytes()
    trunc = tmp_path / "trunc.npz"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable"):
        load_state(trunc)
    other = tmp_path / "plain.npz"
    np.savez(other, a=np.zeros(3))
    with pytest.raises(ValueError, match="not a readable|not a minisnn"):
        load_state(other)


def _minimal(kind, **fields):
    """The fields every trainer checkpoint has (see state._check_common)."""
    state = {"kind": kind, "model_name": "m", "config": {}, "model": {"w": np.zeros(2, np.float32)},
             "classes": ["a", "b"], "normalization": "upstream", "epoch": 0, "history": []}
    state.update(fields)
    return {k: v for k, v in state.items() if v is not None}


def test_only_trainer_and_weights_checkpoints_are_trainer_checkpoints(tmp_path):
    cases = {
        "train": (_minimal(TRAIN_KIND), True),
        "weights": (_minimal(WEIGHTS_KIND), True),
        "no model name": (_minimal(TRAIN_KIND, model_name=None), False),
        "other kind": (_minimal("something"), False),
        "no kind": (_minimal(None), False),
    }
    for name, (state, expected) in cases.items():
        assert is_trainer_checkpoint(state) is expected, name
        path = save_state(state, tmp_path / f"{name}.npz")
        if expected:
            assert load_trainer_checkpoint(path)["model_name"] == "m"
        else:
            with pytest.raises(ValueError, match="not a checkpoint written by `minisnn train`"):
                load_trainer_checkpoint(path)


def test_unsupported_values_are_refused(tmp_path):
    with pytest.raises(TypeError, match="cannot store"):
        save_state({"f": object()}, tmp_path / "x.npz")


def test_kill_during_write_keeps_previous_checkpoint(tmp_path):
    """SIGKILL a process while it overwrites a checkpoint: the old file must still load intact."""
    path = tmp_path / "last.npz"
    save_state({"generation": 1, "w": np.arange(10.0)}, path)
    script = textwrap.dedent(f"""
        import numpy as np, sys
        from minisnn.train.state import save_state
        big = np.random.default_rng(0).standard_normal(60_000_000)  # ~480 MB: the write takes a while
        print("writing", flush=True)
        save_state({{"generation": 2, "w": big}}, {str(path)!r})
        print("done", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    deadline = time.time() + 60
    while time.time() < deadline and not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]:
        time.sleep(0.01)
    time.sleep(0.2)
    assert proc.poll() is None, "the writer finished before it could be killed; make the state bigger"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    back = load_state(path)
    assert back["generation"] == 1
    np.testing.assert_array_equal(back["w"], np.arange(10.0))
