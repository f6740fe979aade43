"""Dy-SViT's slope hypernetwork: Numba kernels == NumPy references, and the fused Function == the layer chain."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minisnn import Tensor, gradcheck
from minisnn import functional as F
from minisnn.kernels.jit import hypernet as jit
from minisnn.kernels.reference import hypernet as ref
from minisnn.kernels.reference.bn_spike import GUARD
from minisnn.models.dysvit_neuron import SlopeHypernet, SlopeHypernetFunction

from .strategies import seeds

TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}


def _operands(seed, rows, hidden, dtype, non_finite):
    rng = np.random.default_rng(seed)
    pre = rng.standard_normal((rows, hidden)).astype(dtype)
    b1 = (0.5 * rng.standard_normal(hidden)).astype(dtype)
    w2 = rng.standard_normal(hidden).astype(dtype)
    if non_finite and rows:
        pre[rng.integers(rows), rng.integers(hidden)] = rng.choice([np.nan, np.inf, -np.inf])
    return pre, b1, w2, dtype(rng.standard_normal())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(seed=seeds, rows=st.integers(0, 70), hidden=st.integers(1, 20), non_finite=st.booleans())
def test_forward_jit_matches_reference(dtype, seed, rows, hidden, non_finite):
    pre, b1, w2, b2 = _operands(seed, rows, hidden, dtype, non_finite)
    want = ref.slope_hypernet_forward(pre, b1, w2, b2, 1.0, 4.0)
    got = jit.slope_hypernet_forward(pre, b1, w2, b2, 1.0, 4.0)
    for name, g, w in zip(("h", "z", "k"), got, want):
        assert g.dtype == dtype and g.shape == w.shape, name
        np.testing.assert_allclose(g, w, **TOL[dtype], err_msg=name)
    assert np.all((want[2] > 1.0 - 1e-6) & (want[2] < 5.0 + 1e-6))   # k inside (low, low + span)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(seed=seeds, rows=st.integers(0, 70), hidden=st.integers(1, 20), non_finite=st.booleans())
def test_backward_jit_matches_reference(dtype, seed, rows, hidden, non_finite):
    pre, b1, w2, b2 = _operands(seed, rows, hidden, dtype, False)
    h, z, _ = ref.slope_hypernet_forward(pre, b1, w2, b2, 1.0, 4.0)
    rng = np.random.default_rng(seed + 1)
    if non_finite and rows:   # a logit the guard replaces: no gradient flows through it
        z[rng.integers(rows)] = rng.choice([np.nan, np.inf, -np.inf])
    dk = rng.standard_normal(rows).astype(dtype)
    want = ref.slope_hypernet_backward(dk, h, z, w2, 4.0)
    got = jit.slope_hypernet_backward(dk, h, z, w2, 4.0)
    for name, g, w in zip(("dh", "db1", "dw2", "db2"), got, want):
        assert g.dtype == dtype and g.shape == w.shape, name
        np.testing.assert_allclose(g, w, **TOL[dtype], err_msg=name)
    assert np.all(np.isfinite(got[0]))
    np.testing.assert_array_equal(got[0][~np.isfinite(z)], 0.0)


def test_guard_and_relu_at_their_edges():
    """NaN before the ReLU is 0 after it; a non-finite logit is guarded to 0 or ±GUARD before σ."""
    for module in (ref, jit):
        pre = np.array([[np.nan, -1.0], [2.0, 0.0]])
        h, z, k = module.slope_hypernet_forward(pre, np.zeros(2), np.array([1.0, 1.0]), 0.0, 1.0, 4.0)
        np.testing.assert_array_equal(h, [[0.0, 0.0], [2.0, 0.0]])
        np.testing.assert_allclose(k, [3.0, 1.0 + 4.0 / (1.0 + math.exp(-2.0))])
        big = np.array([[np.inf, 0.0], [0.0, np.inf]])   # z = +inf, −inf
        _, _, k = module.slope_hypernet_forward(big, np.zeros(2), np.array([1.0, -1.0]), 0.0, 1.0, 4.0)
        np.testing.assert_array_equal(k, [5.0, 1.0])   # σ(±GUARD) is 1 and 0 in float64


def _chain(u, w1, b1, w2, b2):
    """The hypernetwork as separate layers (linear, ReLU, linear, guard, σ)."""
    z = F.linear(F.relu(F.linear(u, w1, b1)), w2, b2)
    return 1.0 + 4.0 * F.sigmoid(F.nan_to_num(z, nan=0.0, posinf=GUARD, neginf=-GUARD))


def _parameters(seed, channels=5, hidden=3):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((hidden, channels)), rng.standard_normal(hidden) * 0.3,
            rng.standard_normal((1, hidden)), rng.standard_normal(1))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fused_function_matches_the_layer_chain_in_value_and_every_gradient(seed):
    params = [Tensor(p, requires_grad=True) for p in _parameters(seed)]
    u = Tensor(np.random.default_rng(seed + 10).standard_normal((2, 4, 5)), requires_grad=True)
    g = np.random.default_rng(seed + 20).standard_normal((2, 4, 1))
    fused = SlopeHypernetFunction.apply(u, *params, low=1.0, span=4.0)
    fused.backward(g)
    got = [u.grad] + [p.grad for p in params]
    for t in [u, *params]:
        t.grad = None
    chain = _chain(u, *params)
    chain.backward(g)
    np.testing.assert_allclose(fused.data, chain.data, rtol=1e-13)
    for name, a, b in zip(("u", "w1", "b1", "w2", "b2"), got, [u.grad] + [p.grad for p in params]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14, err_msg=name)


def test_fused_function_gradcheck():
    """Finite differences in float64; the inputs keep every ReLU input away from 0 (a kink)."""
    w1, b1, w2, b2 = _parameters(3)
    u = np.random.default_rng(4).standard_normal((3, 5))
    assert np.abs(u @ w1.T + b1).min() > 1e-3
    gradcheck(lambda *a: SlopeHypernetFunction.apply(*a, low=1.0, span=4.0), [u, w1, b1, w2, b2])


def test_module_reads_its_layers_and_starts_at_slope_two():
    net = SlopeHypernet(8, hidden=4, dtype=np.float32)
    u = np.random.default_rng(0).standard_normal((2, 3, 8)).astype(np.float32)
    k = net(u)
    assert k.shape == (2, 3, 1) and k.dtype == np.float32
    np.testing.assert_allclose(k.data, 2.0, rtol=1e-6)   # fc2 = 0, b2 = ln(1/3): σ = 1/4
    net.fc2.weight.data[...] = 1.0
    want = _chain(Tensor(u), net.fc1.weight, net.fc1.bias, net.fc2.weight, net.fc2.bias)
    np.testing.assert_allclose(net(u).data, want.data, rtol=1e-6)
