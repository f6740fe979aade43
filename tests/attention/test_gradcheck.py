"""Finite-difference gradient checks (float64) of the three attention Functions, on both backends."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minisnn import Tensor, gradcheck
from minisnn import functional as F
from minisnn.attention import functions as attention_functions, head_column_sum, head_token_mask, ssa

from .conftest import lead_shapes, seeds

# (Nq, Nk, d, dv): kᵀ v first (N > d), q kᵀ first (N <= d), and rectangular cases of both.
SSA_SIZES = [(6, 6, 2, 2), (3, 3, 5, 5), (4, 7, 3, 2), (5, 2, 4, 6), (7, 5, 1, 3)]


@pytest.mark.parametrize("sizes", SSA_SIZES)
def test_ssa_gradcheck(backend, sizes):
    nq, nk, d, dv = sizes
    rng = np.random.default_rng(hash(sizes) % 2**32)
    q = rng.standard_normal((2, nq, d))
    k = rng.standard_normal((2, nk, d))
    v = rng.standard_normal((2, nk, dv))
    gradcheck(lambda q, k, v: ssa(q, k, v, scale=0.37), [q, k, v])


@settings(max_examples=10)
@given(lead_shapes, st.integers(1, 5), st.integers(1, 4), seeds)
def test_ssa_gradcheck_any_leading_axes(lead, n, d, seed):
    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal(lead + (n, d)) for _ in range(3))
    gradcheck(lambda q, k, v: ssa(q, k, v), [q, k, v])


def test_ssa_gradcheck_on_spike_values(backend):
    """At 0/1 inputs (the real use) the Function is still smooth: its gradient is exact there."""
    rng = np.random.default_rng(3)
    q, k, v = ((rng.random((2, 9, 4)) < 0.4).astype(np.float64) for _ in range(3))
    gradcheck(lambda q, k, v: ssa(q, k, v), [q, k, v])


@pytest.mark.parametrize("shape, heads", [((2, 6, 5), 3), ((2, 3, 4, 7), 1), ((4, 4), 4), ((1, 2, 8, 3), 2)])
def test_column_sum_gradcheck(backend, shape, heads):
    x = np.random.default_rng(0).standard_normal(shape)
    gradcheck(lambda x: head_column_sum(x, heads), [x])


@pytest.mark.parametrize("shape, heads", [((2, 6, 5), 3), ((3, 4, 2), 1), ((2, 2, 8, 3), 4)])
def test_token_mask_gradcheck(backend, shape, heads):
    rng = np.random.default_rng(1)
    k = rng.standard_normal(shape)
    a = rng.standard_normal(shape[:-2] + (heads, shape[-1]))
    gradcheck(lambda a, k: head_token_mask(a, k, heads), [a, k])


def test_token_mask_gradcheck_one_input(backend):
    """Only k requires grad (the path that reuses the forward kernel), then only a."""
    rng = np.random.default_rng(2)
    k = rng.standard_normal((2, 6, 4))
    a = rng.standard_normal((2, 2, 4))
    gradcheck(lambda a, k: head_token_mask(a, k, 2), [Tensor(a), Tensor(k, requires_grad=True)])
    gradcheck(lambda a, k: head_token_mask(a, k, 2), [Tensor(a, requires_grad=True), Tensor(k)])


def test_mssa_composition_gradcheck(backend):
    """MSSA core with a smooth stand-in for the attention neuron: y = tanh(Σq + Σp) masks k."""
    rng = np.random.default_rng(4)
    q, p, k = (rng.standard_normal((2, 6, 5)) for _ in range(3))

    def mssa(q, p, k):
        a = F.tanh(head_column_sum(q, 3) + head_column_sum(p, 3))
        return head_token_mask(a, k, 3)

    gradcheck(mssa, [q, p, k])


def test_spikformer_layout_gradcheck(backend):
    """Heads split from a [T, B, N, C] tensor by reshape + transpose (non-contiguous), as Spikformer does."""
    rng = np.random.default_rng(5)
    t, b, n, heads, d = 2, 1, 5, 2, 2
    x = rng.standard_normal((t, b, n, heads * d))

    def attend(x):
        h = F.transpose(F.reshape(x, (t, b, n, heads, d)), 2, 3)  # [T, B, heads, N, d]
        z = ssa(h, F.tanh(h), h * h, scale=0.125)
        return F.reshape(F.transpose(z, 2, 3), (t, b, n, heads * d))

    gradcheck(attend, [x])


def test_ssa_reads_heads_where_the_tokens_hold_them(backend, monkeypatch):
    """Spikformer's head split ([T, B, N, h, d] permuted to [T, B, h, N, d]) runs without copies: z is returned
    as the same kind of view (its permute back to tokens is contiguous), equal to the bit to the result of
    copying the heads together first, and so are the gradients."""
    rng = np.random.default_rng(6)
    t, b, n, heads, d = 2, 3, 9, 4, 5
    arrays = [(rng.random((t, b, n, heads * d)) < 0.3).astype(np.float32) for _ in range(3)]
    g = rng.standard_normal((t, b, heads, n, d)).astype(np.float32)

    def run():
        leaves = [Tensor(a, requires_grad=True) for a in arrays]
        z = ssa(*(x.reshape(t, b, n, heads, d).permute(0, 1, 3, 2, 4) for x in leaves))
        (z * Tensor(g)).sum().backward()
        return z.data, [x.grad.data if isinstance(x.grad, Tensor) else x.grad for x in leaves]

    z_views, grads_views = run()
    assert np.shares_memory(z_views.transpose(0, 1, 3, 2, 4).reshape(t, b, n, heads * d), z_views)   # no copy
    monkeypatch.setattr(attention_functions, "_token_major", lambda x: None)   # heads copied together first
    z_copies, grads_copies = run()
    assert not np.shares_memory(z_copies.transpose(0, 1, 3, 2, 4).reshape(t, b, n, heads * d), z_copies)
    np.testing.assert_array_equal(z_views, z_copies)
    for got, want in zip(grads_views, grads_copies):
        np.testing.assert_array_equal(got, want)


def test_ssa_gradcheck_some_inputs(backend):
    """Only some inputs require grad: the others get none, the checked ones are still right."""
    rng = np.random.default_rng(6)
    q, k, v = (rng.standard_normal((2, 7, 3)) for _ in range(3))
    qt, kt, vt = Tensor(q, requires_grad=True), Tensor(k), Tensor(v, requires_grad=True)
    gradcheck(lambda q, k, v: ssa(q, k, v), [qt, kt, vt])
    assert kt.grad is None
