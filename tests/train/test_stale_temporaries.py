"""A checkpoint write killed halfway leaves `<name>.tmp-<pid>`; the next run in that folder removes it."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from minisnn.train import Trainer, config_for
from minisnn.train.state import remove_stale_temporaries

SMALL = dict(dim=32, depth=1, heads=2, mlp_ratio=2)


@pytest.fixture(autouse=True)
def _embedded_sample_only(tmp_path, monkeypatch):
    monkeypatch.delenv("MINISNN_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temporaries_of_dead_processes_are_removed_and_live_ones_kept(tmp_path):
    dead, alive = _dead_pid(), os.getpid()
    stale = tmp_path / f"last.npz.tmp-{dead}"
    stale.write_bytes(b"x" * 1000)
    metrics = tmp_path / f"metrics.jsonl.tmp-{dead}"
    metrics.write_text("{}")
    writing = tmp_path / f"best.npz.tmp-{alive}"          # a write in progress (this process)
    writing.write_bytes(b"y")
    other = tmp_path / "notes.tmp-abc"
    other.write_text("not ours")
    assert sorted(remove_stale_temporaries(tmp_path)) == sorted([stale, metrics])
    assert not stale.exists() and not metrics.exists() and writing.exists() and other.exists()


def test_the_next_run_in_the_folder_cleans_up_and_says_so(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    stale = out / f"last.npz.tmp-{_dead_pid()}"
    stale.write_bytes(b"\0" * 5_600_000)
    logged = []
    Trainer(config_for("dysvit-tiny", epochs=1, batch_size=32, train_limit=64, out=str(out), model_overrides=SMALL),
            progress=False, log=logged.append)
    assert not stale.exists()
    assert any(str(stale) in line and "interrupted checkpoint write" in line for line in logged)
