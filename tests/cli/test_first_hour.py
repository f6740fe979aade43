"""A newcomer's first hour, end to end, on the embedded sample: train, Ctrl-C, resume, eval, export, verify.

Every step goes through `minisnn.cli.main` as typed on the command line; the Ctrl-C is a
KeyboardInterrupt raised at a chosen step of epoch 2, and the command the interrupted run
prints is then run exactly as printed, with no other flag.
"""
from __future__ import annotations

import importlib.util
import json
import shlex

import pytest

from minisnn.train import Trainer
from minisnn.train.state import load_state
from ..command_line import run

STEPS_PER_EPOCH = 256 // 32


@pytest.fixture(autouse=True)
def _no_dataset(tmp_path, monkeypatch):
    monkeypatch.delenv("MINISNN_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)




def test_the_first_hour(tmp_path, capsys, monkeypatch):
    step = Trainer.train_step
    calls = {"n": 0}

    def ctrl_c_in_epoch_2(self, xb, yb):
        calls["n"] += 1
        if calls["n"] == STEPS_PER_EPOCH + 3:
            raise KeyboardInterrupt
        return step(self, xb, yb)

    # 1. train, interrupted during epoch 2
    monkeypatch.setattr(Trainer, "train_step", ctrl_c_in_epoch_2)
    rc, out, err = run(capsys, "train", "--model", "dysvit-tiny", "--train-limit", "256", "--batch-size", "32",
                       "--epochs", "2", "--no-progress", "--out", "runs/first")
    assert rc == 130, err
    assert "embedded CIFAR-10 sample" in out + err and "epoch 1:" in out
    resume = out.split("continue with: ")[1].strip()
    assert resume == "minisnn train --out runs/first --resume"
    assert load_state("runs/first/last.npz")["batch"] == 2

    # 2. the printed command, as printed
    monkeypatch.setattr(Trainer, "train_step", step)
    rc, out, err = run(capsys, *shlex.split(resume)[1:])
    assert rc == 0, err
    assert "resumed from runs/first/last.npz at epoch 2, batch 2" in out
    assert "done: dysvit-tiny trained for 2 epoch(s) on 256 images" in out
    records = [json.loads(line) for line in open("runs/first/metrics.jsonl")]
    assert [r["epoch"] for r in records] == [1, 2] and all(r["train_loss"] > 0 for r in records)
    evaluate = next(line for line in out.splitlines() if line.startswith("evaluate: "))[len("evaluate: "):]
    assert evaluate == "minisnn eval runs/first/best.npz --split val"

    # 3. eval, as the summary says (the sample has no test split)
    rc, out, err = run(capsys, *shlex.split(evaluate)[1:], "--no-progress")
    assert rc == 0, err
    assert "embedded CIFAR-10 sample" in out and "on val (500 images)" in out and "accuracy" in out

    # 4. export
    rc, out, err = run(capsys, "export", "runs/first/best.npz", "first.npz", "--note", "purpose=first hour")
    assert rc == 0, err
    exported = load_state("first.npz")
    assert exported["kind"] == "weights" and exported["notes"]["purpose"] == "first hour"
    assert "data_dir" not in exported["config"] and "out" not in exported["config"]

    # 5. verify the exported weights against PyTorch
    rc, out, err = run(capsys, "verify", "first.npz")
    if importlib.util.find_spec("torch") is None:
        assert rc == 2 and "PyTorch, which is not installed" in err
        return
    assert "checkpoint: first.npz: minisnn training checkpoint of dysvit-tiny" in out
    assert "spikes identical in every neuron layer: 0 of" in out and "no neuron fired" not in out
    assert rc == 0 and out.splitlines()[-1] == "PASS", out
