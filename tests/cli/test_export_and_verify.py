"""`minisnn export --note` takes plain notes only; `minisnn verify` checks minisnn's own .npz files.

verify builds the model a training checkpoint or exported weights name (with their --set
values), gives both sides its weights, and fails when no neuron fired: identical silence
compares nothing.
"""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from minisnn import models
from minisnn.nn import init
from minisnn.train import pretrained_path
from minisnn.train.export import MAX_NOTE_CHARS, write_weights
from minisnn.train.state import load_state
from ..command_line import run

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="verify compares with PyTorch")




@pytest.mark.parametrize("note, says", [
    ('nested={"a": {"b": 1}}', "a note is a number, true/false, null or a string, not a dict"),
    ("listed=[1, 2]", "not a list"),
    ("long=" + "x" * (MAX_NOTE_CHARS + 1), f"more than {MAX_NOTE_CHARS}"),
    ("epoch=3", "'epoch' is reserved"),
    ("heldout_indices=[1]", "'heldout_indices' is reserved"),
    ("bad key=1", "a note's name is letters, digits and _"),
    ("big=1e999", "must be finite"),
])
def test_unusual_notes_are_one_line_errors(tmp_path, capsys, note, says):
    rc, _, err = run(capsys, "export", pretrained_path("dysvit-tiny-cifar10"), tmp_path / "w.npz", "--note", note)
    assert rc == 2 and err.count("\n") == 1 and says in err, err
    assert not (tmp_path / "w.npz").exists()


def test_plain_notes_are_kept(tmp_path, capsys):
    rc, _, err = run(capsys, "export", pretrained_path("dysvit-tiny-cifar10"), tmp_path / "w.npz",
                     "--note", "test_acc=0.5", "--note", "by=me", "--note", "ok=true")
    assert rc == 0, err
    notes = load_state(tmp_path / "w.npz")["notes"]
    assert notes["test_acc"] == 0.5 and notes["by"] == "me" and notes["ok"] is True
    assert "heldout_indices" in notes                                     # the shipped notes stay


@needs_torch
def test_verify_passes_on_the_shipped_weights(capsys):
    rc, out, err = run(capsys, "verify", pretrained_path("dysvit-tiny-cifar10"))
    assert rc == 0, err
    assert "minisnn training checkpoint of dysvit-tiny" in out and out.splitlines()[-1] == "PASS"
    assert "dim=128 (checkpoint)" in out and "(dysvit normalisation" in out


@needs_torch
def test_verify_fails_when_no_neuron_fired(tmp_path, capsys):
    init.manual_seed(0)
    model = models.create("dysvit-tiny", dim=32, depth=1, heads=2)     # untrained: silent on real images
    path = write_weights(tmp_path / "fresh.npz", model_name="dysvit-tiny",
                         config={"model_overrides": {"dim": 32, "depth": 1, "heads": 2}}, model=model.state_dict(),
                         classes=[str(i) for i in range(10)], normalization="dysvit")
    rc, out, err = run(capsys, "verify", path)
    assert rc == 1, err
    assert "[FAIL] no neuron fired on this batch (every firing rate is 0)" in out
    assert "trained checkpoint" in out and out.splitlines()[-1] == "FAIL"


def test_verify_takes_the_model_from_the_file(capsys):
    path = pretrained_path("dysvit-tiny-cifar10")
    rc, _, err = run(capsys, "verify", path, "--model", "spikformer-tiny")
    assert rc == 2 and err.count("\n") == 1 and "holds a dysvit-tiny model" in err
    rc, _, err = run(capsys, "verify", path, "--set", "dim=64")
    assert rc == 2 and err.count("\n") == 1 and "leave --set out" in err


def test_write_weights_drops_the_machines_folders(tmp_path):
    path = write_weights(tmp_path / "w.npz", model_name="dysvit-tiny",
                         config={"data_dir": "/home/someone/data", "out": "/home/someone/runs/x", "seed": 3},
                         model={"w": np.zeros(2, np.float32)}, classes=["a"], normalization="dysvit")
    assert load_state(path)["config"] == {"seed": 3}
