"""A run's folder and its configuration: resume with no flags, refuse to overwrite, find the data.

* `--resume` restores the run's own configuration (model, epochs, recipe, --set values);
  flags that contradict it are one-line errors, `--epochs` changes its length (announced).
* a second run into a folder that holds one is refused unless --resume or --overwrite.
* `minisnn eval` looks for data in --data-dir, $MINISNN_DATA_DIR, the cache, and only then in
  the folder the checkpoint recorded; it says which one it used.  Exported weights record no path.
"""
from __future__ import annotations

import json
import shlex

import pytest

from minisnn.train.state import load_state
from ..data.synthetic import write_cifar10
from ..command_line import run

pytestmark = pytest.mark.usefixtures("embedded_sample_only")

TINY = ("--model", "dysvit-tiny", "--set", "dim=32", "--set", "depth=1", "--set", "heads=2", "--batch-size", "32",
        "--train-limit", "64", "--no-progress")






def _one_line_error(rc, err):
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err, err


def _epochs(folder):
    return [json.loads(line)["epoch"] for line in (folder / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture
def one_epoch_run(tmp_path, capsys):
    out = tmp_path / "run"
    rc, _, err = run(capsys, "train", *TINY, "--epochs", "1", "--lr", "2e-3", "--out", out)
    assert rc == 0, err
    return out


# ------------------------------------------------------------------ resume
def test_resume_with_no_flags_keeps_the_runs_configuration(one_epoch_run, capsys):
    out = one_epoch_run
    saved = load_state(out / "last.npz")["config"]
    rc, stdout, err = run(capsys, "train", "--out", out, "--resume", "--no-progress")
    assert rc == 0, err
    assert _epochs(out) == [1]                        # a 1-epoch run stays a 1-epoch run
    after = load_state(out / "last.npz")["config"]
    assert after == saved and after["model_overrides"] == {"dim": 32, "depth": 1, "heads": 2}


def test_epochs_extends_the_run_and_says_so(one_epoch_run, capsys):
    out = one_epoch_run
    rc, stdout, err = run(capsys, "train", "--out", out, "--resume", "--epochs", "2", "--no-progress")
    assert rc == 0, err
    assert "extending the run from 1 to 2 epochs" in stdout
    assert _epochs(out) == [1, 2]
    config = load_state(out / "last.npz")["config"]
    assert config["epochs"] == 2 and config["lr"] == 2e-3 and config["model_overrides"]["dim"] == 32


@pytest.mark.parametrize("argv, says", [
    (("--lr", "0.5"), "--lr 0.5 contradicts the run being resumed (--lr 0.002 in"),
    (("--model", "spikformer-tiny"), "--model spikformer-tiny contradicts the run being resumed"),
    (("--set", "dim=64"), "--set dim=64 contradicts the run being resumed (dim=32 in"),
    (("--no-flip",), "--no-flip contradicts the run being resumed"),
    (("--epochs", "1", "--overwrite"), "choose one"),
])
def test_flags_that_contradict_the_run_are_one_line_errors(one_epoch_run, capsys, argv, says):
    rc, _, err = run(capsys, "train", "--out", one_epoch_run, "--resume", "--no-progress", *argv)
    _one_line_error(rc, err)
    assert says in err


def test_resume_without_a_run_and_shortening_a_run_are_refused(one_epoch_run, tmp_path, capsys):
    rc, _, err = run(capsys, "train", "--out", tmp_path / "empty", "--resume")
    _one_line_error(rc, err)
    assert "nothing to resume" in err and "empty" in err
    rc, _, err = run(capsys, "train", "--out", one_epoch_run, "--resume", "--epochs", "2", "--no-progress")
    assert rc == 0
    rc, _, err = run(capsys, "train", "--out", one_epoch_run, "--resume", "--epochs", "1", "--no-progress")
    _one_line_error(rc, err)
    assert "already trained 2 epoch(s)" in err


def test_the_ctrl_c_message_is_a_command_that_resumes_as_it_stands(tmp_path, capsys, monkeypatch):
    from minisnn.train import Trainer

    out = tmp_path / "my run"
    step = Trainer.train_step
    calls = {"n": 0}

    def interrupted(self, xb, yb):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return step(self, xb, yb)

    monkeypatch.setattr(Trainer, "train_step", interrupted)
    rc, stdout, _ = run(capsys, "train", *TINY, "--epochs", "2", "--out", out)
    assert rc == 130
    command = stdout.split("continue with: ")[1].strip()
    assert command == f"minisnn train --out {shlex.quote(str(out))} --resume"
    monkeypatch.setattr(Trainer, "train_step", step)
    rc, stdout, err = run(capsys, *shlex.split(command)[1:])
    assert rc == 0, err
    assert "resumed from" in stdout and _epochs(out) == [1, 2]


# ------------------------------------------------------------------ overwrite
def test_a_second_run_into_a_runs_folder_is_refused(one_epoch_run, capsys):
    before = (one_epoch_run / "last.npz").read_bytes()
    rc, _, err = run(capsys, "train", *TINY, "--epochs", "1", "--out", one_epoch_run)
    _one_line_error(rc, err)
    assert "already holds a run" in err and "--resume" in err and "--overwrite" in err and "another --out" in err
    assert (one_epoch_run / "last.npz").read_bytes() == before


def test_overwrite_replaces_the_run(one_epoch_run, capsys):
    rc, _, err = run(capsys, "train", *TINY, "--epochs", "1", "--seed", "3", "--out", one_epoch_run, "--overwrite")
    assert rc == 0, err
    assert load_state(one_epoch_run / "last.npz")["config"]["seed"] == 3 and _epochs(one_epoch_run) == [1]


def test_a_folder_without_a_run_is_fine(tmp_path, capsys):
    out = tmp_path / "existing"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    rc, _, err = run(capsys, "train", *TINY, "--epochs", "1", "--out", out)
    assert rc == 0, err
    assert (out / "notes.txt").read_text() == "my notes" and (out / "last.npz").exists()


# ------------------------------------------------------------------ where eval finds its data
@pytest.fixture
def trained_on_a(tmp_path, capsys):
    """A run trained with --data-dir A (30 test images); B has 20 test images, C 10."""
    for name, test in (("A", 30), ("B", 20), ("C", 10)):
        write_cifar10(tmp_path / name, per_batch=20, test=test, seed=len(name))
    out = tmp_path / "run"
    rc, _, err = run(capsys, "train", *TINY, "--epochs", "1", "--val-size", "20", "--data-dir", tmp_path / "A",
                     "--out", out)
    assert rc == 0, err
    return tmp_path, out / "best.npz"


def _evaluated(capsys, *argv):
    rc, stdout, err = run(capsys, "eval", *argv, "--no-progress")
    assert rc == 0, err
    data_line, result = stdout.splitlines()[-2:]
    return data_line, result


def test_eval_follows_the_readme_order_before_the_recorded_folder(trained_on_a, capsys, monkeypatch):
    root, checkpoint = trained_on_a
    monkeypatch.setenv("MINISNN_DATA_DIR", str(root / "B"))
    data, result = _evaluated(capsys, checkpoint, "--data-dir", root / "C")
    assert "(10 images)" in result and str(root / "C") in data and "given by --data-dir" in data
    data, result = _evaluated(capsys, checkpoint)
    assert "(20 images)" in result and str(root / "B") in data and "$MINISNN_DATA_DIR" in data
    monkeypatch.delenv("MINISNN_DATA_DIR")
    data, result = _evaluated(capsys, checkpoint)
    assert "(30 images)" in result and str(root / "A") in data and "the folder recorded in the checkpoint" in data


def test_exported_weights_record_no_folder_of_the_machine(trained_on_a, tmp_path, capsys):
    root, checkpoint = trained_on_a
    assert load_state(checkpoint)["config"]["data_dir"] == str(root / "A")
    rc, _, err = run(capsys, "export", checkpoint, tmp_path / "w.npz")
    assert rc == 0, err
    config = load_state(tmp_path / "w.npz")["config"]
    assert "data_dir" not in config and "out" not in config
    assert str(root) not in json.dumps(load_state(tmp_path / "w.npz")["notes"])


def test_the_shipped_weights_record_no_folder_of_the_machine_that_trained_them():
    from minisnn.train import pretrained_path

    state = load_state(pretrained_path("dysvit-tiny-cifar10"))
    assert "data_dir" not in state["config"] and "out" not in state["config"]
    assert not any(isinstance(v, str) and v.startswith("/") for v in state["config"].values())
