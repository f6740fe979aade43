"""A first run on a machine compiles the Numba kernels: say so before, time it after, keep it out of img/s.

The kernel cache is simulated (`compile_cache` patched): a real cold cache costs a 30-second
compilation, which tests/user/test_compile_cache.py already exercises on one kernel.
"""
from __future__ import annotations

import json
import time

import pytest

from minisnn import kernels
from minisnn.kernels import compile_cache
from minisnn.train import Trainer, config_for
from minisnn.train.trainer import COMPILING

SMALL = dict(dim=32, depth=1, heads=2, mlp_ratio=2)
PAUSE = 1.5                                 # seconds the first step "compiles"


@pytest.fixture(autouse=True)
def _embedded_sample_only(tmp_path, monkeypatch):
    monkeypatch.delenv("MINISNN_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _trainer(tmp_path, logged, epochs=1):
    cfg = config_for("dysvit-tiny", epochs=epochs, batch_size=32, train_limit=128, out=str(tmp_path / "run"),
                     model_overrides=SMALL)
    return Trainer(cfg, progress=False, log=logged.append)


def _compiling_first_step(monkeypatch, trainer, cold=("lif.lif_forward",)):
    """Cold kernels, and a first step that takes PAUSE seconds longer and compiles 7 kernels."""
    compiled = {"n": 0}
    monkeypatch.setattr(compile_cache, "cold_kernels", lambda: list(cold))
    monkeypatch.setattr(compile_cache, "compiled_in_this_process", lambda: compiled["n"])
    step = trainer.train_step

    def first_compiles(xb, yb):
        if compiled["n"] == 0:
            compiled["n"] = 7                # Numba counts each kernel as it compiles it
            time.sleep(PAUSE)
        return step(xb, yb)

    monkeypatch.setattr(trainer, "train_step", first_compiles)


def test_the_compilation_is_announced_timed_and_left_out_of_the_speed(tmp_path, monkeypatch):
    logged = []
    trainer = _trainer(tmp_path, logged, epochs=2)
    monkeypatch.setattr(kernels, "backend", lambda: "jit")
    _compiling_first_step(monkeypatch, trainer)
    history = trainer.fit()
    first_step = next(i for i, line in enumerate(logged) if line.startswith("epoch 1:"))
    assert logged.count(COMPILING) == 1 and logged.index(COMPILING) < first_step
    assert any(line.startswith("compiled 7 kernels in ") for line in logged)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    first, second = records
    assert first["compile_seconds"] >= PAUSE and second["compile_seconds"] == 0.0
    steps = trainer.steps_per_epoch
    # the rate covers the 3 steps that did not compile: it is not dragged down by the pause
    assert first["images_per_second"] == pytest.approx(
        (steps - 1) * 32 / (first["train_seconds"] - first["compile_seconds"]))
    assert first["train_seconds"] >= PAUSE
    assert "s compiling)" in logged[first_step]
    assert history[0]["images_per_second"] == first["images_per_second"]


def test_warm_kernels_and_the_reference_backend_say_nothing(tmp_path, monkeypatch):
    logged = []
    trainer = _trainer(tmp_path, logged)
    monkeypatch.setattr(kernels, "backend", lambda: "reference")
    monkeypatch.setattr(compile_cache, "cold_kernels", lambda: pytest.fail("not consulted under reference"))
    trainer.fit()
    assert COMPILING not in logged and not any("compiled" in line for line in logged)
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text())
    assert record["compile_seconds"] == 0.0
    assert record["images_per_second"] == pytest.approx(trainer.steps_per_epoch * 32 / record["train_seconds"])


def test_a_cold_kernel_the_model_never_calls_announces_nothing(tmp_path, monkeypatch):
    """A slow first step that compiles nothing (the stale kernel is not used) is not a compilation."""
    logged = []
    trainer = _trainer(tmp_path, logged)
    monkeypatch.setattr(kernels, "backend", lambda: "jit")
    monkeypatch.setattr(compile_cache, "cold_kernels", lambda: ["winograd.winograd_input_tiles"])
    monkeypatch.setattr(compile_cache, "compiled_in_this_process", lambda: 0)
    step = trainer.train_step

    def slow(xb, yb):
        time.sleep(PAUSE)
        return step(xb, yb)

    monkeypatch.setattr(trainer, "train_step", slow)
    trainer.fit()
    assert COMPILING not in logged and not any(line.startswith("compiled") for line in logged)
