"""Surrogate families: derivatives are the derivatives of their primitives, jit == reference."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minisnn.kernels.jit import surrogate as jit_sg
from minisnn.kernels.reference import surrogate as ref_sg
from minisnn.spiking import surrogate

FAMILIES = [surrogate.Sigmoid, surrogate.ATan, surrogate.PiecewiseLinear, surrogate.Rectangular,
            surrogate.FastSigmoid]
KINDS = [cls.kind for cls in FAMILIES]
seeds = st.integers(0, 2**32 - 1)


def _kinks(kind, alpha):
    """Points where the primitive is not twice differentiable (finite differences avoid them)."""
    if kind == ref_sg.PIECEWISE_LINEAR:
        return np.array([-1.0, 0.0, 1.0]) / alpha
    if kind == ref_sg.RECTANGULAR:
        return np.array([-0.5, 0.5]) / alpha
    if kind == ref_sg.FAST_SIGMOID:
        return np.array([0.0])
    return np.array([])


def _away_from_kinks(x, kind, alpha, margin):
    k = _kinks(kind, alpha)
    return x if k.size == 0 else x[np.min(np.abs(x[:, None] - k[None, :]), axis=1) > margin]


@pytest.mark.parametrize("cls", FAMILIES)
@given(seed=seeds, alpha=st.floats(0.3, 30.0))
def test_derivative_is_the_derivative_of_the_primitive(cls, seed, alpha):
    sg = cls(alpha)
    x = np.random.default_rng(seed).normal(0.0, 2.0 / alpha, 64)
    x = _away_from_kinks(x, sg.kind, alpha, margin=1e-4)
    eps = 1e-6 / max(alpha, 1.0)
    numeric = (sg.primitive(x + eps) - sg.primitive(x - eps)) / (2 * eps)
    np.testing.assert_allclose(sg.derivative(x), numeric, rtol=1e-5, atol=1e-6 * max(alpha, 1.0))


@pytest.mark.parametrize("cls", FAMILIES)
@given(seed=seeds, alpha=st.floats(0.3, 30.0))
def test_d_alpha_is_the_slope_derivative_of_the_primitive(cls, seed, alpha):
    sg = cls(alpha)
    x = np.random.default_rng(seed).normal(0.0, 2.0 / alpha, 64)
    eps = 1e-6 * alpha
    # the kinks move with alpha: stay clear of them over the whole [alpha - eps, alpha + eps]
    x = _away_from_kinks(x, sg.kind, alpha, margin=1e-3 * np.abs(x).max() + 1e-4)
    numeric = (sg.primitive(x, alpha + eps) - sg.primitive(x, alpha - eps)) / (2 * eps)
    np.testing.assert_allclose(sg.d_alpha(x), numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("cls", FAMILIES)
def test_primitive_is_a_smooth_step(cls):
    sg = cls()
    lo, hi = sg.primitive(np.array([-1e4, 1e4]))
    top = 2.0 / sg.alpha if cls is surrogate.FastSigmoid else 1.0  # snnTorch form: 0 .. 2/alpha
    assert lo == pytest.approx(0.0, abs=1e-3 * top) and hi == pytest.approx(top, rel=1e-3)
    x = np.linspace(-3, 3, 101)
    assert np.all(np.diff(sg.primitive(x)) >= 0) and np.all(sg.derivative(x) >= 0)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradients_finite_for_large_inputs_and_slopes(kind, dtype):
    x = np.concatenate([np.linspace(-100, 100, 2001), [-1e30, 1e30, 0.0]]).astype(dtype)
    for alpha in (1e-3, 1.0, 100.0):
        a = np.array([alpha], dtype)
        for mod in (ref_sg, jit_sg):
            for fn in (mod.surrogate_primitive, mod.surrogate_derivative, mod.surrogate_d_alpha):
                with np.errstate(over="ignore", under="ignore"):
                    out = fn(x, a, kind)
                assert out.dtype == dtype and np.all(np.isfinite(out)), (mod.__name__, fn.__name__, alpha)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(seed=seeds, per_element=st.booleans(), need_alpha=st.booleans())
def test_jit_matches_reference(kind, dtype, seed, per_element, need_alpha):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 2, (3, 7, 5)).astype(dtype)
    alpha = rng.uniform(0.5, 8, x.shape if per_element else (1,)).astype(dtype)
    g = rng.normal(size=x.shape).astype(dtype)
    rtol, atol = (2e-6, 1e-6) if dtype == np.float32 else (1e-13, 1e-15)
    for name in ("surrogate_primitive", "surrogate_derivative", "surrogate_d_alpha"):
        r, j = getattr(ref_sg, name)(x, alpha, kind), getattr(jit_sg, name)(x, alpha, kind)
        assert j.dtype == r.dtype == dtype and j.shape == r.shape
        np.testing.assert_allclose(j, r, rtol=rtol, atol=atol, err_msg=name)
    (rg, ra), (jg, ja) = (m.spike_backward(g, x, alpha, kind, need_alpha) for m in (ref_sg, jit_sg))
    np.testing.assert_allclose(jg, rg, rtol=rtol, atol=atol)
    assert ja.shape == ra.shape == (x.shape if need_alpha else (0,))
    np.testing.assert_allclose(ja.reshape(ra.shape), ra, rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype, max_ulp", [(np.float32, 3.0), (np.float64, 2.0)])
def test_jit_exp_neg_accuracy(dtype, max_ulp):
    from numba import njit

    @njit
    def run(y, out):
        for i in range(y.size):
            out[i] = jit_sg.exp_neg(y[i])

    y = np.concatenate([np.random.default_rng(0).uniform(-700, 0, 200_000), np.linspace(-3, 0, 10_001)]).astype(dtype)
    y = y[y > {np.float32: -87.3, np.float64: -708.3}[dtype]]
    out = np.empty_like(y)
    run(y, out)
    exact = np.exp(y.astype(np.longdouble))
    ulp = np.abs(out - exact) / (exact * np.finfo(dtype).eps)
    assert float(ulp.max()) <= max_ulp
    tiny = np.array([-1e4, -800.0, {np.float32: -104.0, np.float64: -746.0}[dtype]], dtype)
    run(tiny, out[:3])
    assert np.all(out[:3] <= np.finfo(dtype).tiny)  # underflows to (almost) zero, never garbage


def test_defaults_names_and_errors():
    assert [cls().alpha for cls in FAMILIES] == [4.0, 2.0, 1.0, 1.0, 25.0]
    assert isinstance(surrogate.get("atan"), surrogate.ATan)
    assert isinstance(surrogate.get("triangle"), surrogate.PiecewiseLinear)
    sg = surrogate.Sigmoid(3.0)
    assert surrogate.get(sg) is sg and repr(sg) == "Sigmoid(alpha=3.0)"
    with pytest.raises(ValueError, match="unknown surrogate 'tanh'"):
        surrogate.get("tanh")
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite and > 0"):
            surrogate.Sigmoid(bad)
    with pytest.raises(ValueError, match="does not broadcast"):
        sg.derivative(np.zeros((2, 3)), np.ones(4))
    with pytest.raises(ValueError, match="finite and > 0"):
        sg.derivative(np.zeros(3), np.array([1.0, 0.0, 2.0]))


def test_array_slope_broadcasts_per_token():
    sg = surrogate.ATan()
    x = np.random.default_rng(1).normal(size=(2, 5, 4))
    k = np.random.default_rng(2).uniform(1, 5, (2, 5, 1))
    expected = np.stack([[sg.derivative(x[b, n], k[b, n, 0]) for n in range(5)] for b in range(2)])
    np.testing.assert_allclose(sg.derivative(x, k), expected, rtol=1e-14)
