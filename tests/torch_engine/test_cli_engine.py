"""`minisnn train --engine torch` through the command line: the same run folder, evaluated by minisnn."""
from __future__ import annotations

import pytest

from ..command_line import run

pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("embedded_sample_only")

TINY = ("--model", "dysvit-tiny", "--set", "dim=32", "--set", "depth=1", "--set", "heads=2", "--batch-size", "32",
        "--train-limit", "64", "--epochs", "1", "--no-progress")


def test_train_with_the_torch_engine_then_evaluate_with_minisnn(tmp_path, capsys):
    out = tmp_path / "run"
    rc, text, err = run(capsys, "train", *TINY, "--engine", "torch", "--out", out)
    assert rc == 0, err
    assert "with PyTorch on cpu" in text and (out / "best.npz").is_file() and (out / "metrics.jsonl").is_file()
    rc, text, err = run(capsys, "eval", out / "best.npz", "--split", "val", "--no-progress")
    assert rc == 0, err
    assert "dysvit-tiny" in text and "accuracy" in text


@pytest.mark.parametrize("argv, says", [
    (("--nproc", "2"), "options of --engine torch"),
    (("--device", "cuda"), "options of --engine torch"),
    (("--engine", "torch", "--device", "cuda"), "no CUDA GPU"),
    (("--engine", "torch", "--nproc", "3"), "batch"),
])
def test_engine_options_are_checked_in_one_line(tmp_path, capsys, argv, says):
    rc, _, err = run(capsys, "train", *TINY, "--out", tmp_path / "r", *argv)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and says in err, err
