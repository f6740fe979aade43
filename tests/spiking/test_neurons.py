"""Neuron modules: step-by-step and fused paths agree; state, reset_net, record, errors."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minisnn import Tensor, kernels, nn
from minisnn import functional as F
from minisnn.spiking import IF, LIF, LIFParams, ParametricLIF, lif_sequence, reset_net, surrogate


def make(kind, **kw):
    return {"lif": LIF, "if": IF, "plif": ParametricLIF}[kind](**kw)


def step_through(neuron, x, slope=None):
    neuron.reset_state()
    return F.stack([neuron.step(x[t], None if slope is None else slope[t]) for t in range(x.shape[0])], 0)


@pytest.mark.parametrize("backend", ["jit", "reference"])
@given(seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(["lif", "if", "plif"]), soft=st.booleans(),
       detach=st.booleans(), decay=st.booleans(), smooth=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]),
       sg=st.sampled_from(["sigmoid", "atan", "piecewise_linear", "rectangular", "fast_sigmoid"]))
def test_fused_sequence_equals_step_by_step(backend, seed, kind, soft, detach, decay, smooth, dtype, sg):
    """The fused kernel and the step path (plain autograd ops + spike) give the same spikes and
    the same gradients for x, the slope and (ParametricLIF) w."""
    before = kernels.backend()
    kernels.set_backend(backend)
    try:
        rng = np.random.default_rng(seed)
        kw = dict(v_reset=None if soft else -0.1, detach_reset=detach, smooth=smooth, surrogate=sg)
        if kind != "if":
            kw["decay_input"] = decay
        if kind == "lif":
            kw["tau"] = 2.5
        neuron = make(kind, **kw)
        neuron.to_dtype(dtype)
        x = Tensor(rng.normal(0.8, 1.0, (5, 2, 3, 4)).astype(dtype), requires_grad=True)
        k = Tensor(rng.uniform(1.0, 5.0, (5, 2, 3, 1)).astype(dtype), requires_grad=True)
        g = rng.normal(size=x.shape).astype(dtype)
        results = []
        for run in (lambda: neuron(x, k), lambda: step_through(neuron, x, k)):
            x.grad = k.grad = None
            neuron.zero_grad()
            s = run()
            s.backward(g)
            w_grad = neuron.w.grad.copy() if kind == "plif" else None
            results.append((s.data, x.grad.copy(), k.grad.copy(), w_grad))
        (s1, gx1, gk1, gw1), (s2, gx2, gk2, gw2) = results
        assert s1.dtype == s2.dtype == dtype
        rtol, atol = (1e-4, 1e-5) if dtype == np.float32 else (1e-10, 1e-12)
        if smooth:
            np.testing.assert_allclose(s1, s2, rtol=rtol, atol=atol)
        else:
            np.testing.assert_array_equal(s1, s2)
        np.testing.assert_allclose(gx1, gx2, rtol=rtol, atol=atol)
        np.testing.assert_allclose(gk1, gk2, rtol=rtol, atol=atol * 10)
        if kind == "plif":
            assert float(gw1) == pytest.approx(float(gw2), rel=rtol * 10, abs=atol * 100)
    finally:
        kernels.set_backend(before)


def test_no_parameters_or_state_keys_except_plif_w():
    assert LIF().state_dict() == {} and IF().state_dict() == {}
    assert list(LIF().parameters()) == [] and LIF().num_parameters() == 0
    plif = ParametricLIF(init_tau=3.0)
    sd = plif.state_dict()
    assert list(sd) == ["w"] and sd["w"].shape == () and plif.tau == pytest.approx(3.0)
    assert float(sd["w"]) == pytest.approx(-np.log(2.0))
    plif.load_state_dict({"w": np.array(0.0, np.float32)})
    assert plif.tau == pytest.approx(2.0)


def test_step_keeps_state_and_reset_net_clears_every_neuron():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = LIF()
            self.inner = nn.Module()
            self.inner.b = IF(v_reset=None)

    block = Block()
    x = Tensor(np.full((2, 3), 1.5, np.float32))
    s1 = block.a.step(x)            # H = 0.75: no spike yet
    s2 = block.a.step(x)            # H = 0.75 + (1.5 − 0.75)/2 = 1.125: spike, reset to 0
    assert s1.data.sum() == 0 and np.all(s2.data == 1) and np.all(block.a.v.data == 0)
    block.a.step(x)
    block.inner.b.step(x)
    assert block.a.v is not None and block.inner.b.v is not None
    assert reset_net(block) == 2
    assert block.a.v is None and block.inner.b.v is None
    np.testing.assert_array_equal(block.a.step(x).data, s1.data)  # starts from rest again


def test_fused_forward_is_stateless():
    lif = LIF()
    x = Tensor(np.random.default_rng(0).normal(1, 1, (4, 3)).astype(np.float32))
    lif.step(x[0])
    v = lif.v
    a, b = lif(x), lif(x)
    np.testing.assert_array_equal(a.data, b.data)
    assert lif.v is v


def test_record_keeps_last_spikes_without_changing_outputs():
    lif = LIF()
    x = Tensor(np.random.default_rng(1).normal(1, 1, (4, 2, 3)).astype(np.float32))
    plain = lif(x).data
    lif.record = True
    out = lif(x)
    np.testing.assert_array_equal(out.data, plain)
    assert isinstance(lif.last_s_seq, np.ndarray) and np.array_equal(lif.last_s_seq, plain)
    s = lif.step(x[0])
    np.testing.assert_array_equal(lif.last_s_seq, s.data)


def test_dtype_and_shape_preserved_and_single_step_sequence():
    for dtype in (np.float32, np.float64):
        x = np.random.default_rng(2).normal(1.5, 1, (1, 2, 5)).astype(dtype)
        s = LIF(tau=2.0)(x)
        assert s.dtype == dtype and s.shape == x.shape
        np.testing.assert_array_equal(s.data, (x / 2.0 >= 1.0).astype(dtype))  # T = 1: H = X/τ from rest
        np.testing.assert_array_equal(IF(v_threshold=0.5)(x).data, (x >= 0.5).astype(dtype))


def test_repr_mentions_the_configuration():
    text = repr(LIF(tau=3.0, v_reset=None, surrogate=surrogate.ATan()))
    assert "tau=3.0" in text and "soft" in text and "ATan(alpha=2.0)" in text


@pytest.mark.parametrize("factory, message", [
    (lambda: LIF(tau=0.0), "tau must be finite and > 0"),
    (lambda: LIF(tau=-2.0), "tau must be finite and > 0"),
    (lambda: LIF(tau=float("nan")), "tau must be finite and > 0"),
    (lambda: ParametricLIF(init_tau=1.0), "init_tau must be finite and > 1"),
    (lambda: LIF(v_threshold=float("inf")), "v_threshold must be finite"),
    (lambda: LIF(surrogate="nope"), "unknown surrogate"),
])
def test_bad_configuration(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_membrane_raises_in_both_paths(bad):
    x = np.ones((3, 4), np.float32)
    x[1, 2] = bad
    with pytest.raises(ValueError, match="not finite"):
        LIF()(x)
    lif = LIF()
    lif.step(x[0])
    with pytest.raises(ValueError, match="not finite"):
        lif.step(x[1])


def test_bad_inputs_have_clear_errors():
    lif = LIF()
    with pytest.raises(TypeError, match="floating-point"):
        lif(np.ones((3, 4), np.int64))
    with pytest.raises(ValueError, match="T >= 1"):
        lif(np.ones((0, 4), np.float32))
    with pytest.raises(ValueError, match=r"slope of shape \(3,\) does not broadcast"):
        lif(np.ones((2, 4, 5), np.float32), slope=np.ones(3))
    with pytest.raises(ValueError, match="finite and > 0"):
        lif(np.ones((2, 4), np.float32), slope=np.array([1.0, -1.0, 2.0, 3.0]))
    lif.step(np.ones((4,), np.float32))
    with pytest.raises(ValueError, match="reset_state"):
        lif.step(np.ones((5,), np.float32))


def test_settings_are_one_checked_value():
    lif = LIF(tau=3.0, v_threshold=0.8, v_reset=None, decay_input=False, surrogate="atan")
    assert lif.params == LIFParams.make(tau=3.0, v_threshold=0.8, v_reset=None, decay_input=False,
                                        kind=surrogate.ATan.kind)
    assert (lif.tau, lif.v_threshold, lif.v_reset, lif.v_rest, lif.decay_input) == (3.0, 0.8, None, 0.0, False)
    with pytest.raises(AttributeError):
        lif.v_threshold = 2.0  # the settings are fixed when the neuron is built
    assert IF().params.tau == 1.0 and not IF().params.leaky
    assert LIFParams.make(tau=-1.0, leaky=False).tau == 1.0  # τ is neither used nor checked without a leak
    with pytest.raises(ValueError, match="v_reset must be finite or None"):
        LIFParams.make(v_reset=float("inf"))
    with pytest.raises(ValueError, match="unknown surrogate kind"):
        LIFParams.make(kind=7)
    with pytest.raises(ValueError, match="tau must be finite and > 0"):
        LIFParams.make().with_tau(0.0)


def test_lif_sequence_takes_params_or_keywords_alike():
    x = Tensor(np.random.default_rng(5).normal(1.0, 1.0, (4, 3, 5)), requires_grad=True)
    params = LIFParams.make(tau=3.0, v_reset=None, detach_reset=False, kind=surrogate.ATan.kind)
    by_keywords = lif_sequence(x, tau=3.0, v_reset=None, detach_reset=False, surrogate="atan")
    by_params = lif_sequence(x, params=params, surrogate="atan")
    np.testing.assert_array_equal(by_keywords.data, by_params.data)
    with pytest.raises(ValueError, match="not of the kind of params"):
        lif_sequence(x, params=params)  # the default sigmoid would give the wrong default slope
    tau = Tensor(np.array(2.5), requires_grad=True)  # a learnable τ replaces params.tau
    np.testing.assert_array_equal(lif_sequence(x, tau=tau, params=params, surrogate="atan").data,
                                  lif_sequence(x, tau=2.5, v_reset=None, surrogate="atan").data)
