"""BatchNorm kernels: Numba == NumPy reference (both loop forms), float64 statistics, thread independence."""
from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import given, strategies as st

from minisnn import kernels
from minisnn.kernels.jit import norm as jit
from minisnn.kernels.reference import norm as ref

from ..conftest import on_one_and_all_threads
from .strategies import seeds

dtypes = st.sampled_from([np.float32, np.float64])
# L below, at and above jit.MIN_RUN, so both the column form and the run form are exercised
runs = st.sampled_from([1, 2, 3, jit.MIN_RUN - 1, jit.MIN_RUN, jit.MIN_RUN + 3, 40])


def bn_inputs(rng, shape, dtype, offset):
    c = shape[1]
    x = (rng.standard_normal(shape) * rng.uniform(0.2, 3.0) + offset).astype(dtype)
    weight = rng.uniform(0.5, 1.5, c).astype(dtype)
    bias = rng.standard_normal(c).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    return x, weight, bias, g


def close(got, want, dtype, scale=1.0, err_msg=""):
    """Equal up to rounding: relative 1e-5 (float32) / 1e-11 (float64) of the larger of the values and `scale`."""
    rtol = 1e-5 if np.dtype(dtype) == np.float32 else 1e-11
    assert got.shape == want.shape, err_msg
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * max(scale, np.abs(want).max(initial=0.0)),
                               err_msg=err_msg)


def conditioning(x, invstd):
    """1 + max|x|·max(invstd): how much the rounding of x (and of μ) is magnified in x̂ = (x − μ)·invstd."""
    return 1.0 + float(np.abs(x).max()) * float(np.max(invstd))


def sum_scale(a, b=None):
    """Size of the rounding error of per-channel sums of a (or a·b): Σ |terms| per channel."""
    terms = np.abs(a) if b is None else np.abs(a * b)
    return float(terms.astype(np.float64).sum(axis=(0, 2)).max(initial=0.0))


@given(st.integers(1, 6), st.integers(1, 5), runs, dtypes, seeds, st.sampled_from([0.0, 50.0]))
def test_train_forward_and_backward_match_reference(n, c, l, dtype, seed, offset):
    if n * l < 2:
        n = 2
    rng = np.random.default_rng(seed)
    x, weight, bias, g = bn_inputs(rng, (n, c, l), dtype, offset)
    got = jit.batch_norm_train_forward(x, weight, bias, 1e-5)
    want = ref.batch_norm_train_forward(x, weight, bias, 1e-5)
    assert got[0].dtype == dtype and all(v.dtype == np.float64 and v.shape == (c,) for v in got[1:])
    mean, invstd = want[1], want[3]
    cond = conditioning(x, invstd)
    close(got[0], want[0], dtype, scale=cond, err_msg="y")
    for name, a, b in zip(("mean", "var", "invstd"), got[1:], want[1:]):
        close(a, b, dtype, err_msg=name)
    got = jit.batch_norm_train_backward(g, x, mean, invstd, weight)
    want = ref.batch_norm_train_backward(g, x, mean, invstd, weight)
    assert got[0].dtype == dtype and got[1].dtype == got[2].dtype == np.float64
    centred = x.astype(np.float64) - mean[:, None]
    close(got[0], want[0], dtype, scale=cond * float(np.abs(weight * invstd).max() * np.abs(g).max()), err_msg="dx")
    close(got[1], want[1], dtype, scale=sum_scale(g, centred) * invstd.max(), err_msg="dweight")
    close(got[2], want[2], dtype, scale=sum_scale(g), err_msg="dbias")


@given(st.integers(1, 6), st.integers(1, 5), runs, dtypes, seeds)
def test_eval_forward_and_backward_match_reference(n, c, l, dtype, seed):
    rng = np.random.default_rng(seed)
    x, weight, bias, g = bn_inputs(rng, (n, c, l), dtype, 1.0)
    mean = rng.standard_normal(c)
    invstd = 1.0 / np.sqrt(rng.uniform(0.5, 2.0, c) + 1e-5)
    scale = (weight * invstd).astype(dtype)
    shift = (bias - mean * scale).astype(dtype)
    y = jit.batch_norm_eval_forward(x, scale, shift)
    assert y.dtype == dtype
    close(y, ref.batch_norm_eval_forward(x, scale, shift), dtype, scale=conditioning(x, invstd), err_msg="y")
    got = jit.batch_norm_eval_backward(g, x, mean, invstd, weight)
    want = ref.batch_norm_eval_backward(g, x, mean, invstd, weight)
    close(got[0], want[0], dtype, err_msg="dx")
    close(got[1], want[1], dtype, scale=sum_scale(g, x - mean[:, None]) * invstd.max(), err_msg="dweight")
    close(got[2], want[2], dtype, scale=sum_scale(g), err_msg="dbias")


@pytest.mark.parametrize("shape", [(4096, 64, 1), (64, 16, 256)])
def test_statistics_are_float64_accurate_for_float32_input(shape):
    """Large float32 batches far from zero: μ and σ² agree with an exact float64 two-pass computation,
    including a channel whose first value (the shift of the one-pass sums) is a far outlier."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 0.1 + 50.0).astype(np.float32)
    x[0, 1, 0] = 5000.0
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=(0, 2))
    var = ((x64 - mean[:, None]) ** 2).mean(axis=(0, 2))
    c = shape[1]
    _, got_mean, got_var, _ = jit.batch_norm_train_forward(x, np.ones(c, np.float32), np.zeros(c, np.float32), 1e-5)
    np.testing.assert_allclose(got_mean, mean, rtol=1e-12)
    np.testing.assert_allclose(got_var, var, rtol=1e-9)


@pytest.fixture
def parallel_loops(monkeypatch):
    """The module's block loops recompiled with parallel=True (as if PARALLEL were switched on)."""
    for name, f in vars(jit).items():
        if name.startswith(("_run_", "_column_")) and hasattr(f, "py_func"):
            monkeypatch.setattr(jit, name, numba.njit(parallel=True, fastmath=jit._FAST)(f.py_func))


def _train_step(x, weight, bias, g):
    y, mean, var, invstd = jit.batch_norm_train_forward(x, weight, bias, 1e-5)
    return (y, mean, var, *jit.batch_norm_train_backward(g, x, mean, invstd, weight),
            *jit.batch_norm_eval_backward(g, x, mean, invstd, weight))


@pytest.mark.parametrize("shape", [(300, 7, 1), (9, 3, 40)])
def test_parallel_loops_give_identical_results_on_any_thread_count(shape, request):
    """Parallel loops give the same bits on 1 and all threads (fixed block partition) and agree with the
    serial loops up to rounding (the two compilations may vectorise and contract differently)."""
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs at least 2 numba threads")
    rng = np.random.default_rng(1)
    x, weight, bias, g = bn_inputs(rng, shape, np.float32, 3.0)
    serial = _train_step(x, weight, bias, g)
    request.getfixturevalue("parallel_loops")
    runs = on_one_and_all_threads(lambda: _train_step(x, weight, bias, g))
    for one, two, ser in zip(*runs, serial):
        np.testing.assert_array_equal(one, two)
        close(one, ser, one.dtype if one.dtype == np.float32 else np.float32)


def test_nan_input_gives_nan_channel_only():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    x[1, 1, 2] = np.nan
    one, zero = np.ones(3, np.float32), np.zeros(3, np.float32)
    for mod in (jit, ref):
        y, mean, var, _ = mod.batch_norm_train_forward(x, one, zero, 1e-5)
        assert np.isnan(y[:, 1]).all() and np.isnan(mean[1]) and np.isnan(var[1])
        assert np.isfinite(y[:, [0, 2]]).all()


def test_dispatch_follows_backend_switch():
    before = kernels.backend()
    try:
        kernels.set_backend("reference")
        assert kernels.batch_norm_train_forward is ref.batch_norm_train_forward
        kernels.set_backend("jit")
        assert kernels.batch_norm_train_backward is jit.batch_norm_train_backward
    finally:
        kernels.set_backend(before)
