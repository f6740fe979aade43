"""End-to-end BPTT checked by finite differences, in float64, in smooth mode.

In smooth mode the forward emits p(H − θ; α) instead of a step, so the loss is a smooth
function of every input and central differences can check the whole recursion through
T steps: charge, fire, reset (not detached, so the reset path is part of the check),
τ, and a slope Tensor computed by another part of the graph.  Both kernel backends.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minisnn import Tensor, gradcheck, kernels
from minisnn import functional as F
from minisnn.spiking import ParametricLIF, lif_sequence, spike, surrogate


@pytest.fixture(params=["jit", "reference"])
def backend(request):
    before = kernels.backend()
    kernels.set_backend(request.param)
    yield request.param
    kernels.set_backend(before)


NEURONS = {
    "lif_hard": dict(v_reset=0.0),
    "lif_hard_negative_reset": dict(v_reset=-0.3, v_threshold=0.8),
    "lif_soft": dict(v_reset=None),
    "lif_no_decay": dict(decay_input=False),
    "if_hard": dict(leaky=False),
    "if_soft": dict(leaky=False, v_reset=None, v_threshold=0.7),
}


@pytest.mark.parametrize("name", sorted(NEURONS))
@pytest.mark.parametrize("sg", [surrogate.Sigmoid(2.0), surrogate.ATan(1.5)])
def test_smooth_bptt_through_x(backend, name, sg):
    x = np.random.default_rng(0).normal(0.7, 0.8, (4, 2, 3))
    kw = dict(NEURONS[name], detach_reset=False, smooth=True, surrogate=sg)
    assert gradcheck(lambda x: lif_sequence(x, **kw), [x], atol=1e-6, rtol=1e-5)


@given(seed=st.integers(0, 2**32 - 1), tau=st.floats(1.2, 6.0), decay=st.booleans(), soft=st.booleans())
@settings(max_examples=8)
def test_smooth_bptt_through_tau_and_slope_tensor(seed, tau, decay, soft):
    """τ as a Tensor and a per-token slope k = 1 + 4·sigmoid(z) from another branch of the graph."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.8, 0.8, (3, 2, 2, 3))       # [T, B, N, C]
    z = rng.normal(0.0, 1.0, (2, 2, 1))           # one slope per token, broadcast over C and T
    t = np.array(tau)

    def fn(x, t, z):
        k = 1.0 + 4.0 * F.sigmoid(z)
        return lif_sequence(x, tau=t, v_reset=None if soft else 0.0, decay_input=decay, detach_reset=False,
                            slope=k, smooth=True)

    assert gradcheck(fn, [x, t, z], atol=1e-6, rtol=1e-5)


def test_parametric_lif_gradient_reaches_w(backend):
    """ParametricLIF: τ = 1 + exp(−w); finite differences in w through the whole sequence."""
    x = np.random.default_rng(1).normal(0.8, 0.8, (4, 3, 2))

    def fn(x, w):
        return lif_sequence(x, tau=1.0 + F.exp(-w), detach_reset=False, smooth=True)

    assert gradcheck(fn, [x, np.array(0.3)], atol=1e-6, rtol=1e-5)
    plif = ParametricLIF(init_tau=1.0 + np.exp(-0.3), detach_reset=False, smooth=True)
    plif.to_dtype(np.float64)
    xt = Tensor(x)
    plif(xt).sum().backward()
    w = Tensor(np.array(float(plif.w.data)), requires_grad=True)
    fn(xt, w).sum().backward()
    assert float(plif.w.grad) == pytest.approx(float(w.grad), rel=1e-12)


def test_smooth_spike_gradcheck_in_u_and_slope(backend):
    """spike(..., smooth=True) is the primitive itself: its backward must be exact."""
    rng = np.random.default_rng(2)
    u = rng.normal(1.0, 0.7, (2, 3, 4))
    z = rng.normal(0.0, 1.0, (2, 3, 1))
    for sg in ("sigmoid", "atan", "fast_sigmoid"):
        assert gradcheck(lambda u, z: spike(u, 1.0 + 4.0 * F.sigmoid(z), surrogate=sg, smooth=True), [u, z],
                         atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("slope_shape", [(2, 3, 1), (3, 1), (1,), (), (11,), (2, 3, 11)],
                         ids=["per_token", "per_token_broadcast", "one", "scalar", "per_channel", "per_element"])
def test_smooth_spike_gradcheck_for_every_slope_layout(backend, slope_shape):
    """The per-row kernels (slope constant along the last axis, 11 channels: 8 summing lanes and a
    tail) and the general ones (slope varying along it) both give exact gradients."""
    rng = np.random.default_rng(4)
    u = rng.normal(1.0, 0.7, (2, 3, 11))
    z = rng.normal(0.0, 1.0, slope_shape)
    assert gradcheck(lambda u, z: spike(u, 1.0 + 4.0 * F.sigmoid(z), smooth=True), [u, z], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", ["lif_hard", "lif_soft", "if_hard"])
def test_step_mode_gradients_equal_smooth_forward_gradients(backend, name):
    """STE consistency: the binary forward uses exactly the smooth mode's backward formulas
    at the same membranes — checked on inputs where both forwards give the same spikes path
    (T = 1, so there is no reset to make the two forwards diverge)."""
    rng = np.random.default_rng(3)
    x = Tensor(rng.normal(1.0, 1.0, (1, 4, 5)), requires_grad=True)
    k = Tensor(rng.uniform(1, 5, (1, 4, 1)), requires_grad=True)
    grads = []
    for smooth in (False, True):
        x.grad = k.grad = None
        lif_sequence(x, slope=k, smooth=smooth, **NEURONS[name]).sum().backward()
        grads.append((x.grad.copy(), k.grad.copy()))
    np.testing.assert_allclose(grads[0][0], grads[1][0], rtol=1e-13)
    np.testing.assert_allclose(grads[0][1], grads[1][1], rtol=1e-13)


def test_detached_reset_really_drops_the_reset_path():
    """With detach_reset=True the S in the reset is a constant for backward, so the gradient
    differs from the full derivative that finite differences measure (and only then)."""
    x = np.random.default_rng(4).normal(0.7, 0.8, (4, 2, 3))
    assert not gradcheck(lambda x: lif_sequence(x, detach_reset=True, smooth=True), [x], atol=1e-6, rtol=1e-5,
                         raise_exception=False)
