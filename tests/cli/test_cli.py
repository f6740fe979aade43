"""The `minisnn` command as a user meets it: listings, one-line errors, a train → eval round trip.

Every call goes through `minisnn.cli.main(argv)` in this process; the thread option, which
re-executes Python, is tested with `os.execve` replaced by a recorder.
"""
from __future__ import annotations

import json

import pytest

from minisnn import models
from minisnn.train import pretrained_names
from ..data.synthetic import write_cifar10
from ..command_line import run

pytestmark = pytest.mark.usefixtures("embedded_sample_only")






def test_models_lists_every_registered_model_and_the_shipped_weights(capsys):
    rc, out, err = run(capsys, "models")
    assert rc == 0, err
    listed = [line.split()[0] for line in out.splitlines() if not line.startswith("pretrained:")]
    assert listed == models.names()
    pretrained = [line for line in out.splitlines() if line.startswith("pretrained:")]
    assert [line.split()[1] for line in pretrained] == pretrained_names()
    assert all(".npz" in line for line in pretrained) and "dysvit-tiny-cifar10" in pretrained_names()


def test_no_command_prints_help_and_fails(capsys):
    rc, out, _ = run(capsys)
    assert rc == 2 and "train" in out and "eval" in out


@pytest.mark.parametrize("argv, says", [
    (("train", "--epochs", "0"), "positive integer"),
    (("train", "--epochs", "three"), "positive integer"),
    (("train", "--batch-size", "-4"), "positive integer"),
    (("train", "--lr", "fast"), "expected a number"),
    (("train", "--model", "resnet50"), "unknown model 'resnet50'"),
    (("train", "--set", "T"), "KEY=VALUE"),
    (("train", "--normalization", "imagenet"), "invalid choice"),
    (("train", "--no-such-flag"), "unrecognized arguments"),
    (("eval",), "checkpoint"),
    (("download", "mnist"), "invalid choice"),
    (("frobnicate",), "invalid choice"),
])
def test_bad_arguments_give_one_line_errors(capsys, argv, says):
    rc, out, err = run(capsys, *argv)
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("minisnn"), err
    assert says in err
    assert "Traceback" not in err and out == ""


def test_missing_and_foreign_checkpoints_give_one_line_errors(capsys, tmp_path):
    rc, _, err = run(capsys, "eval", str(tmp_path / "nope.npz"))
    assert rc == 2 and err.count("\n") == 1 and "nope.npz" in err
    foreign = tmp_path / "notes.txt"
    foreign.write_text("not a checkpoint")
    rc, _, err = run(capsys, "eval", str(foreign))
    assert rc == 2 and err.count("\n") == 1 and "notes.txt" in err


def test_a_missing_data_dir_says_where_it_looked(capsys, tmp_path):
    rc, _, err = run(capsys, "train", "--model", "dysvit-tiny", "--data-dir", str(tmp_path / "absent"),
                     "--out", str(tmp_path / "run"), "--no-progress")
    assert rc == 2 and err.count("\n") == 1 and "absent" in err
    assert not (tmp_path / "run" / "last.npz").exists()


def test_train_then_eval_on_a_dataset_folder(capsys, tmp_path):
    """The README's flow on a small dataset in the official format: train writes its files, eval reads them."""
    write_cifar10(tmp_path / "data", per_batch=40, test=30)
    out = tmp_path / "run"
    rc, stdout, err = run(capsys, "train", "--model", "dysvit-tiny", "--set", "dim=32", "--set", "depth=1",
                          "--set", "heads=2", "--epochs", "2", "--batch-size", "32", "--val-size", "40",
                          "--data-dir", str(tmp_path / "data"), "--out", str(out), "--no-progress")
    assert rc == 0, err
    assert "best validation accuracy" in stdout
    for name in ("last.npz", "best.npz", "metrics.jsonl", "curves.png"):
        assert (out / name).stat().st_size > 0, name
    epochs = [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2]

    rc, stdout, err = run(capsys, "eval", str(out / "best.npz"), "--data-dir", str(tmp_path / "data"),
                          "--no-progress")
    assert rc == 0, err
    assert "on test (30 images" in stdout and "accuracy" in stdout
    rc, stdout, err = run(capsys, "eval", str(out / "best.npz"), "--data-dir", str(tmp_path / "data"),
                          "--no-progress", "--flip")
    assert rc == 0, err
    assert "on test (30 images, each also mirrored)" in stdout

    # Asking for more epochs and --resume continues from last.npz rather than starting over.
    rc, _, err = run(capsys, "train", "--model", "dysvit-tiny", "--set", "dim=32", "--set", "depth=1",
                     "--set", "heads=2", "--epochs", "3", "--batch-size", "32", "--val-size", "40",
                     "--data-dir", str(tmp_path / "data"), "--out", str(out), "--no-progress", "--resume")
    assert rc == 0, err
    epochs = [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]


class _Exec(Exception):
    pass


def test_threads_option_restarts_python_once_with_the_thread_variables(monkeypatch):
    """BLAS reads its thread count at start-up, so `--threads N` re-executes Python once with it set."""
    import numba

    import minisnn.cli as cli

    calls = []

    def fake_execve(path, argv, env):
        calls.append((argv, env))
        raise _Exec

    monkeypatch.setattr(cli.os, "execve", fake_execve)
    monkeypatch.delenv("MINISNN_THREADS_SET", raising=False)
    with pytest.raises(_Exec):
        cli.main(["train", "--threads", "1", "--epochs", "1"])
    (argv, env), = calls
    assert argv[1:] == ["-m", "minisnn", "train", "--threads", "1", "--epochs", "1"]
    assert all(env[k] == "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"))

    # In the restarted process the variables are there: no second restart, Numba gets the count.
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    before = numba.get_num_threads()
    try:
        monkeypatch.setitem(cli._COMMANDS, "train", lambda args: numba.get_num_threads())
        assert cli.main(["train", "--threads", "1"]) == 1
    finally:
        numba.set_num_threads(before)
    assert len(calls) == 1
