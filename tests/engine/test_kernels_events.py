"""Event-driven products: Numba == NumPy reference; Linear's event path == its dense path == PyTorch."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minisnn import Tensor, gradcheck
from minisnn import functional as F
from minisnn.kernels.jit import events as jit
from minisnn.kernels.reference import events as ref
from minisnn.ops import linear as linear_op

from ..conftest import on_one_and_all_threads, tol
from .strategies import seeds
from .test_layers_linear import check_linear_against_torch

torch = pytest.importorskip("torch")


def sparse(rng, shape, density, dtype, binary):
    """An array of `shape` with about `density` of its values nonzero: 1 (spikes) or normal values."""
    keep = rng.random(shape) < density
    values = np.ones(shape) if binary else rng.standard_normal(shape)
    return np.where(keep, values, 0.0).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(seed=seeds, rows=st.integers(0, 70), k_in=st.integers(1, 40), n_out=st.integers(1, 20),
       density=st.sampled_from([0.0, 0.05, 0.3, 1.0]), binary=st.booleans())
def test_jit_matches_reference(dtype, seed, rows, k_in, n_out, density, binary):
    """Every kernel on inputs from all-zero to all-nonzero, empty and full rows, spikes or real values;
    the event lists are equal exactly, the products to rounding."""
    rng = np.random.default_rng(seed)
    x2 = sparse(rng, (rows, k_in), density, dtype, binary)
    wt = rng.standard_normal((k_in, n_out)).astype(dtype)
    g = rng.standard_normal((rows, n_out)).astype(dtype)

    indptr = ref.event_row_pointers(x2, x2.size)
    np.testing.assert_array_equal(jit.event_row_pointers(x2, x2.size), indptr)
    assert indptr.dtype == np.int64 and indptr[-1] == np.count_nonzero(x2)
    nnz = int(indptr[-1])
    for backend in (ref, jit):                        # None exactly when the events pass max_events
        np.testing.assert_array_equal(backend.event_row_pointers(x2, nnz), indptr)
        if nnz:
            assert backend.event_row_pointers(x2, nnz - 1) is None
    indices, values = ref.gather_events(x2, indptr)
    got_indices, got_values = jit.gather_events(x2, indptr)
    np.testing.assert_array_equal(got_indices, indices)
    np.testing.assert_array_equal(got_values, values)
    assert got_indices.dtype == np.int32 and got_values.dtype == dtype

    rtol, atol = tol(dtype)
    y = jit.event_matmul(indptr, indices, values, wt)
    assert y.dtype == dtype and y.shape == (rows, n_out)
    np.testing.assert_allclose(y, ref.event_matmul(indptr, indices, values, wt), rtol=rtol, atol=atol)
    np.testing.assert_allclose(y, x2 @ wt, rtol=rtol, atol=atol)
    bias = rng.standard_normal(n_out).astype(dtype)
    y_bias = jit.event_matmul(indptr, indices, values, wt, bias)
    np.testing.assert_allclose(y_bias, ref.event_matmul(indptr, indices, values, wt, bias), rtol=rtol, atol=atol)
    np.testing.assert_allclose(y_bias, x2 @ wt + bias, rtol=rtol, atol=atol)
    dwt = jit.event_weight_grad(indptr, indices, values, g, k_in)
    assert dwt.dtype == dtype and dwt.shape == (k_in, n_out)
    np.testing.assert_allclose(dwt, ref.event_weight_grad(indptr, indices, values, g, k_in), rtol=rtol, atol=atol)
    np.testing.assert_allclose(dwt, x2.T @ g, rtol=rtol, atol=atol)


def test_silent_rows_and_blocks_are_skipped_but_the_events_after_them_kept():
    """gather_events skips rows and blocks of rows without events: a silent first block, then a silent row
    between two rows with events, and events in the last row."""
    x2 = np.zeros((3 * jit.ROWS_PER_BLOCK, 8), dtype=np.float32)
    x2[jit.ROWS_PER_BLOCK + 5, [1, 6]] = 1.0
    x2[jit.ROWS_PER_BLOCK + 7, 3] = -1.0
    x2[-1, 0] = 2.5
    indptr = jit.event_row_pointers(x2, x2.size)
    indices, values = jit.gather_events(x2, indptr)
    np.testing.assert_array_equal(indices, [1, 6, 3, 0])
    np.testing.assert_array_equal(values, [1.0, 1.0, -1.0, 2.5])


def test_weight_grad_does_not_depend_on_the_thread_count():
    """The row parts are fixed, so 1 or 2 threads add the same numbers in the same order."""
    pytest.importorskip("numba")
    rng = np.random.default_rng(0)
    x2 = sparse(rng, (300, 64), 0.2, np.float32, True)
    g = rng.standard_normal((300, 48)).astype(np.float32)
    indptr = jit.event_row_pointers(x2, x2.size)
    indices, values = jit.gather_events(x2, indptr)
    results = on_one_and_all_threads(lambda: jit.event_weight_grad(indptr, indices, values, g, 64))
    np.testing.assert_array_equal(results[0], results[1])


def test_sparse_input_takes_the_event_path_and_dense_input_does_not():
    rng = np.random.default_rng(0)
    assert linear_op.input_events(sparse(rng, (50, 30), 0.1, np.float32, True)) is not None
    assert linear_op.input_events(rng.standard_normal((50, 30)).astype(np.float32)) is None
    at_limit = np.zeros((10, 10), np.float32)
    at_limit.reshape(-1)[: int(linear_op.EVENT_DENSITY * 100)] = 1.0
    assert linear_op.input_events(at_limit) is not None            # "at most EVENT_DENSITY" is inclusive
    at_limit.reshape(-1)[int(linear_op.EVENT_DENSITY * 100)] = 1.0
    assert linear_op.input_events(at_limit) is None


@given(lead=st.lists(st.integers(1, 5), min_size=1, max_size=3), n_in=st.integers(1, 24), n_out=st.integers(1, 9),
       bias=st.booleans(), dtype=st.sampled_from([np.float64, np.float32]), seed=seeds, binary=st.booleans(),
       transposed=st.booleans())
def test_event_linear_matches_torch(lead, n_in, n_out, bias, dtype, seed, binary, transposed):
    """Spike (or sparse real) input of any rank, contiguous or not: output and all three gradients."""
    rng = np.random.default_rng(seed)
    x = sparse(rng, tuple(lead) + (n_in,), 0.05, dtype, binary)
    if transposed and x.ndim >= 2:
        x = np.swapaxes(np.ascontiguousarray(np.swapaxes(x, -1, -2)), -1, -2)
    w = rng.standard_normal((n_out, n_in)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype) if bias else None
    check_linear_against_torch(x, w, b, rng)


@pytest.mark.parametrize("binary", [True, False])
def test_event_linear_gradcheck(binary):
    """float64 finite differences through the event path (y is linear in each argument, so a perturbed
    zero of x that becomes an event changes nothing but the path)."""
    rng = np.random.default_rng(3)
    x = sparse(rng, (4, 6, 10), 0.15, np.float64, binary)
    assert linear_op.input_events(x.reshape(-1, 10)) is not None
    w, b = rng.standard_normal((5, 10)), rng.standard_normal(5)
    gradcheck(lambda w, b: F.linear(x, w, b), [w, b])
    gradcheck(lambda x: F.linear(x, w, b), [x])


def test_event_and_dense_paths_agree_on_a_spike_layer(monkeypatch):
    """The same spikes through both paths (EVENT_DENSITY 0 forces the dense one): equal to rounding."""
    rng = np.random.default_rng(5)
    x = sparse(rng, (2, 16, 64, 96), 0.15, np.float32, True)
    w, b = rng.standard_normal((80, 96)).astype(np.float32), rng.standard_normal(80).astype(np.float32)
    g = rng.standard_normal((2, 16, 64, 80)).astype(np.float32)

    def run():
        tx, tw, tb = (Tensor(a, requires_grad=True) for a in (x, w, b))
        y = F.linear(tx, tw, tb)
        y.backward(g)
        return y.data, tx.grad, tw.grad, tb.grad

    event = run()
    monkeypatch.setattr(linear_op, "EVENT_DENSITY", 0.0)
    dense = run()
    for got, want in zip(event, dense):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
