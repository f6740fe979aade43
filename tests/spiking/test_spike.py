"""spike(): Heaviside forward, straight-through backward into the membrane AND the slope."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minisnn import Tensor
from minisnn import functional as F
from minisnn.spiking import spike, surrogate


def sigma(y):
    return 1.0 / (1.0 + np.exp(-y))


def test_forward_is_heaviside_with_h0_equal_one():
    u = Tensor(np.array([0.5, 1.0, 1.0 - 1e-12, 1.0 + 1e-12, -3.0, 7.0]))
    np.testing.assert_array_equal(spike(u).data, [0, 1, 0, 1, 0, 1])
    np.testing.assert_array_equal(spike(u, threshold=0.5).data, [1, 1, 1, 1, 0, 1])
    assert spike(u.data.astype(np.float32)).dtype == np.float32


@given(seed=st.integers(0, 2**32 - 1), threshold=st.floats(-1, 2))
def test_per_token_slope_gradients_match_the_closed_form(seed, threshold):
    """dysvit.md §4.3 (sigmoid family): du = g·k·σ'(k x), dk[b,n] = Σ_c g·x·σ'(k x), x = u − θ."""
    rng = np.random.default_rng(seed)
    u = Tensor(rng.normal(threshold, 1.0, (2, 5, 8)), requires_grad=True)
    k = Tensor(rng.uniform(1.0, 5.0, (2, 5, 1)), requires_grad=True)
    g = rng.normal(size=u.shape)
    spike(u, k, threshold=threshold).backward(g)
    x = u.data - threshold
    ds = sigma(k.data * x) * (1 - sigma(k.data * x))  # naive σ(1 − σ): loses ~1e-10 relative in the tails
    np.testing.assert_allclose(u.grad, g * k.data * ds, rtol=1e-8, atol=1e-14)
    np.testing.assert_allclose(k.grad, (g * x * ds).sum(-1, keepdims=True), rtol=1e-8, atol=1e-13)
    np.testing.assert_allclose(k.grad[..., 0], (u.grad * x).sum(-1) / k.data[..., 0], rtol=1e-10)  # the cheap reuse


def test_slope_from_a_hypernetwork_receives_gradient():
    """k = 1 + 4·sigmoid(z) built by other ops: the gradient flows through spike into z."""
    rng = np.random.default_rng(0)
    u = Tensor(rng.normal(1.0, 1.0, (3, 4, 6)), requires_grad=True)
    z = Tensor(rng.normal(size=(3, 4, 1)), requires_grad=True)
    k = 1.0 + 4.0 * F.sigmoid(z)
    s = spike(u, k, surrogate="atan")
    s.backward(np.ones(s.shape))
    sg = surrogate.ATan()
    dk = sg.d_alpha(u.data - 1.0, k.data).sum(-1, keepdims=True)
    np.testing.assert_allclose(z.grad, dk * 4.0 * sigma(z.data) * (1 - sigma(z.data)), rtol=1e-12)


@pytest.mark.parametrize("slope_shape", [(), (1,), (6,), (4, 1), (3, 4, 6), (1, 4, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_slope_gradient_sums_over_broadcast_axes(slope_shape, dtype):
    rng = np.random.default_rng(1)
    u = Tensor(rng.normal(1.0, 1.0, (3, 4, 6)).astype(dtype), requires_grad=True)
    k = Tensor(rng.uniform(1, 4, slope_shape).astype(dtype), requires_grad=True)
    g = rng.normal(size=u.shape).astype(dtype)
    spike(u, k, surrogate="piecewise_linear").backward(g)
    full = np.broadcast_to(k.data, u.shape)
    sg = surrogate.PiecewiseLinear()
    expected = g * sg.d_alpha(u.data - 1.0, full)
    axes = tuple(range(u.ndim - len(slope_shape))) + tuple(
        u.ndim - len(slope_shape) + i for i, n in enumerate(slope_shape) if n == 1)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(k.grad, expected.sum(axis=axes).reshape(slope_shape), rtol=tol, atol=tol)
    np.testing.assert_allclose(u.grad, g * sg.derivative(u.data - 1.0, full), rtol=tol, atol=tol)
    assert k.grad.dtype == dtype and u.grad.dtype == dtype


def test_plain_number_or_array_slope_gets_no_gradient_and_default_is_surrogate_alpha():
    u = Tensor(np.linspace(-1, 3, 9), requires_grad=True)
    spike(u, surrogate=surrogate.Sigmoid(2.5)).sum().backward()
    a = u.grad.copy()
    u.grad = None
    spike(u, 2.5).sum().backward()
    np.testing.assert_array_equal(a, u.grad)
    u.grad = None
    spike(u, np.full(9, 2.5)).sum().backward()
    np.testing.assert_array_equal(a, u.grad)


def test_large_membranes_and_slopes_give_finite_gradients():
    u = Tensor(np.array([-100.0, -10.0, 0.999, 1.0, 50.0, 100.0]), requires_grad=True)
    for sg in ("sigmoid", "atan", "piecewise_linear", "rectangular", "fast_sigmoid"):
        k = Tensor(np.full(6, 100.0), requires_grad=True)
        u.grad = None
        spike(u, k, surrogate=sg).sum().backward()
        assert np.all(np.isfinite(u.grad)) and np.all(np.isfinite(k.grad))


def test_errors():
    u = np.ones((2, 3, 4))
    with pytest.raises(ValueError, match="contains NaN"):
        spike(np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match=r"slope of shape \(2, 3, 2\) does not broadcast"):
        spike(u, np.ones((2, 3, 2)))
    with pytest.raises(ValueError, match=r"slope of shape \(2, 3, 4, 1\) does not broadcast"):
        spike(u, np.ones((2, 3, 4, 1)))  # would enlarge the output
    with pytest.raises(ValueError, match="finite and > 0"):
        spike(u, 0.0)
    with pytest.raises(ValueError, match="finite and > 0"):
        spike(u, Tensor(np.full((2, 3, 1), -1.0)))
    with pytest.raises(TypeError, match="floating-point"):
        spike(np.ones(3, np.int32))
    with pytest.raises(ValueError, match="unknown surrogate"):
        spike(u, surrogate="relu")
