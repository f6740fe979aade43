"""Shared test set-up: Hypothesis profiles, float tolerances, kernel warm-up."""
from __future__ import annotations

import contextlib
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default",
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough",
    deadline=None,
    max_examples=200,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("MINISNN_HYPOTHESIS_PROFILE", "default"))

# Tolerances used when comparing against PyTorch: (rtol, atol) per dtype.
TOL = {np.float64: (1e-10, 1e-12), np.float32: (1e-4, 1e-5)}


def tol(dtype):
    """(rtol, atol) for comparing results computed in `dtype`."""
    return TOL[np.dtype(dtype).type]


@pytest.fixture(scope="session")
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def embedded_sample_only(tmp_path, monkeypatch):
    """No CIFAR-10 anywhere: no $MINISNN_DATA_DIR, an empty cache and home, so training uses the embedded sample."""
    monkeypatch.delenv("MINISNN_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def on_one_and_all_threads(run):
    """[run() on one Numba thread, run() on all of them] (the thread count restored after), for kernels whose
    results must not depend on it."""
    import numba  # the jit backend's dependency, imported where a test needs it
    before = numba.get_num_threads()
    try:
        results = []
        for threads in (1, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(threads)
            results.append(run())
    finally:
        numba.set_num_threads(before)
    return results


@contextlib.contextmanager
def one_torch_thread():
    """torch with one intra-op thread while inside (nothing without torch).  On a small shared machine
    PyTorch's spinning worker threads make small networks' run times vary by an order of magnitude."""
    try:
        import torch  # optional: the suite also runs without torch
    except ImportError:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
