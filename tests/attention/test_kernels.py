"""Numba kernels == NumPy reference kernels, on spikes (exact) and on real values (rounding)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minisnn.kernels.jit import attention as jit
from minisnn.kernels.reference import attention as ref

from ..conftest import on_one_and_all_threads
from .conftest import dtypes, kinds, make_array, seeds


def assert_same(got, want, kind, dtype):
    assert got.dtype == want.dtype == dtype
    assert got.shape == want.shape
    if kind == "spikes":  # integer counts times a power of two: no rounding anywhere
        np.testing.assert_array_equal(got, want)
    else:
        rtol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * max(1.0, np.abs(want).max(initial=0)))


ssa_sizes = st.tuples(
    st.integers(1, 20),  # G problems (the jit kernels run blocks of 8 in parallel)
    st.integers(1, 80),  # Nq (crosses 64: two packed words)
    st.integers(1, 80),  # Nk
    st.integers(1, 40),  # d
    st.integers(1, 40),  # dv
)


@given(ssa_sizes, dtypes, kinds, seeds, st.sampled_from([0.125, 1.0, 0.3]))
def test_ssa_forward_backward_match(sizes, dtype, kind, seed, scale):
    g, nq, nk, d, dv = sizes
    rng = np.random.default_rng(seed)
    q = make_array(rng, (g, nq, d), dtype, kind)
    k = make_array(rng, (g, nk, d), dtype, kind)
    v = make_array(rng, (g, nk, dv), dtype, kind)
    if scale != 0.125:
        kind = "real"  # the scale may round
    z_ref, inner_ref = ref.ssa_forward(q, k, v, scale)
    z_jit, inner_jit = jit.ssa_forward(q, k, v, scale)
    assert_same(z_jit, z_ref, kind, dtype)
    assert_same(inner_jit, inner_ref, kind, dtype)
    grad = make_array(rng, z_ref.shape, dtype, "real")
    for got, want in zip(jit.ssa_backward(q, k, v, inner_jit, grad, scale),
                         ref.ssa_backward(q, k, v, inner_ref, grad, scale)):
        assert_same(got, want, "real", dtype)


@given(st.integers(1, 6), st.integers(1, 5), st.integers(1, 80), st.integers(1, 40), dtypes, kinds, seeds)
def test_ssa_interleaved_heads_match(g, heads, n, d, dtype, kind, seed):
    """Heads read where token rows hold them ([G, N, h, d]) give ssa_forward's and ssa_backward's results for
    the problems heads_first lists, in both backends (the jit kernels bit for bit: the same BLAS calls on the
    same rows)."""
    rng = np.random.default_rng(seed)
    q, k, v = (make_array(rng, (g, n, heads, d), dtype, kind) for _ in range(3))
    z_ref, inner_ref = ref.ssa_forward_interleaved(q, k, v, 0.125)
    z_jit, inner_jit = jit.ssa_forward_interleaved(q, k, v, 0.125)
    assert z_jit.shape == (g, n, heads, d) and inner_jit.shape == inner_ref.shape
    assert_same(z_jit, z_ref, kind, dtype)
    assert_same(inner_jit, inner_ref, kind, dtype)
    flat = [ref.heads_first(x) for x in (q, k, v)]
    z_flat, inner_flat = jit.ssa_forward(*flat, 0.125)
    np.testing.assert_array_equal(ref.heads_first(z_jit), z_flat)
    np.testing.assert_array_equal(inner_jit, inner_flat)
    grad = make_array(rng, z_ref.shape, dtype, "real")
    grads_jit = jit.ssa_backward_interleaved(q, k, v, inner_jit, grad, 0.125)
    for got, want in zip(grads_jit, ref.ssa_backward_interleaved(q, k, v, inner_ref, grad, 0.125)):
        assert_same(got, want, "real", dtype)
    for got, want in zip(grads_jit, jit.ssa_backward(*flat, inner_flat, ref.heads_first(grad), 0.125)):
        np.testing.assert_array_equal(ref.heads_first(got), want)


@pytest.mark.parametrize("n", [64, 8])
def test_ssa_does_not_depend_on_the_thread_count(n):
    """Every problem is one run of BLAS calls on one thread, so 1 or all threads give the same bits."""
    pytest.importorskip("numba")
    rng = np.random.default_rng(0)
    q, k, v, grad = (make_array(rng, (37, n, 16), np.float32, "real") for _ in range(4))
    def run():
        z, inner = jit.ssa_forward(q, k, v, 0.125)
        return (z, inner, *jit.ssa_backward(q, k, v, inner, grad, 0.125))

    for one, many in zip(*on_one_and_all_threads(run)):
        np.testing.assert_array_equal(one, many)


@pytest.mark.parametrize("shape, kv_first", [((2, 64, 32), True), ((2, 8, 32), False), ((2, 16, 16), False),
                                             ((1, 17, 16), True)])
def test_ssa_product_order_rule(shape, kv_first):
    """kᵀ v first exactly when N > d (square self-attention); the saved inner product shows which."""
    g, n, d = shape
    assert ref.ssa_kv_first(n, n, d, d) is kv_first
    x = np.ones(shape)
    for mod in (ref, jit):
        _, inner = mod.ssa_forward(x, x, x, 0.125)
        assert inner.shape == ((g, d, d) if kv_first else (g, n, n))


@given(st.integers(1, 3), st.integers(2, 150), st.integers(1, 40), dtypes, kinds, seeds)
def test_ssa_bitcount_variant_matches(g, n, d, dtype, kind, seed):
    """The bit-packed popcount variant (kept for the benchmark) gives the same z and kᵀ v."""
    d = min(d, n - 1)  # kᵀ v-first shapes only
    rng = np.random.default_rng(seed)
    q, k, v = (make_array(rng, (g, n, d), dtype, kind) for _ in range(3))
    if kind == "real":
        k[0, n // 2, 0] = 0.5  # make sure a non-binary value is present: BLAS fallback path
    z_bits, m_bits = jit.ssa_forward_bitcount(q, k, v, 0.125)
    z_ref, m_ref = ref.ssa_forward(q, k, v, 0.125)
    assert_same(m_bits, m_ref, kind, dtype)
    assert_same(z_bits, z_ref, kind, dtype)


def test_ssa_bitcount_packs_words_exactly():
    """Popcount over several 64-bit words: column counts of an all-ones block equal the token count."""
    n, d = 130, 3
    k = np.ones((1, n, d), np.float32)
    v = np.zeros((1, n, d), np.float32)
    v[0, :, 0] = 1
    v[0, 64:, 1] = 1  # only tokens of the second and third word
    _, m = jit.ssa_forward_bitcount(np.zeros((1, n, d), np.float32), k, v, 0.125)
    np.testing.assert_array_equal(m[0], np.array([[130, 66, 0]] * 3, np.float32))
    with pytest.raises(ValueError, match="k\\^T v-first"):
        jit.ssa_forward_bitcount(np.ones((1, 4, 8)), np.ones((1, 4, 8)), np.ones((1, 4, 8)), 0.125)


mask_sizes = st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 6), st.integers(1, 70))


@given(mask_sizes, dtypes, kinds, seeds)
def test_column_sum_and_mask_match(sizes, dtype, kind, seed):
    g, heads, d, n = sizes
    c = heads * d
    rng = np.random.default_rng(seed)
    x = make_array(rng, (g, c, n), dtype, kind)
    a = make_array(rng, (g, heads, n), dtype, kind)
    grad_y = make_array(rng, (g, c, n), dtype, "real")
    grad_s = make_array(rng, (g, heads, n), dtype, "real")
    assert_same(jit.head_column_sum_forward(x, heads), ref.head_column_sum_forward(x, heads), kind, dtype)
    assert_same(jit.head_column_sum_backward(grad_s, c), ref.head_column_sum_backward(grad_s, c), "real", dtype)
    assert_same(jit.head_token_mask_forward(a, x, heads), ref.head_token_mask_forward(a, x, heads), kind, dtype)
    for got, want in zip(jit.head_token_mask_backward(a, x, grad_y, heads),
                         ref.head_token_mask_backward(a, x, grad_y, heads)):
        assert_same(got, want, "real", dtype)


def test_column_sum_and_mask_by_hand():
    """Tiny example with known answers: 2 heads of 2 channels, 3 tokens."""
    x = np.array([[[1, 0, 1], [1, 1, 0], [0, 0, 1], [1, 0, 1]]], np.float32)
    a = np.array([[[1, 0, 1], [0, 1, 1]]], np.float32)
    for mod in (ref, jit):
        np.testing.assert_array_equal(mod.head_column_sum_forward(x, 2), [[[2, 1, 1], [1, 0, 2]]])
        np.testing.assert_array_equal(mod.head_token_mask_forward(a, x, 2),
                                      [[[1, 0, 1], [1, 0, 0], [0, 0, 1], [0, 0, 1]]])
        np.testing.assert_array_equal(mod.head_column_sum_backward(a, 4),
                                      [[[1, 0, 1], [1, 0, 1], [0, 1, 1], [0, 1, 1]]])


@pytest.mark.parametrize("mod", [ref, jit], ids=["reference", "jit"])
def test_ssa_empty_sizes(mod):
    """Zero tokens or zero features give zeros, not garbage from uninitialised memory."""
    q, k, v = np.ones((2, 3, 0)), np.ones((2, 5, 0)), np.ones((2, 5, 4))
    z, inner = mod.ssa_forward(q, k, v, 0.125)
    np.testing.assert_array_equal(z, np.zeros((2, 3, 4)))
    dq, dk, dv = mod.ssa_backward(q, k, v, inner, np.ones((2, 3, 4)), 0.125)
    np.testing.assert_array_equal(dv, np.zeros((2, 5, 4)))
    z, _ = mod.ssa_forward(np.ones((2, 3, 2)), np.ones((2, 0, 2)), np.ones((2, 0, 2)), 0.125)
    np.testing.assert_array_equal(z, np.zeros((2, 3, 2)))
