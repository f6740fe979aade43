"""The Numba LIF kernels agree with the NumPy reference (forward spikes, BPTT gradients)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minisnn.kernels.jit import lif as jit_lif
from minisnn.kernels.lif_params import LIFParams
from minisnn.kernels.reference import lif as ref_lif
from minisnn.kernels.reference.surrogate import ATAN, FAST_SIGMOID, PIECEWISE_LINEAR, RECTANGULAR

from ..conftest import on_one_and_all_threads

seeds = st.integers(0, 2**32 - 1)


@st.composite
def lif_params(draw, soft=None, smooth=None):
    """Any neuron: LIF or IF, hard or soft reset, every surrogate kind, binary or smooth."""
    soft = draw(st.booleans()) if soft is None else soft
    return LIFParams.make(
        tau=draw(st.floats(0.6, 8.0)), v_threshold=draw(st.floats(0.2, 1.5)),
        v_reset=None if soft else draw(st.sampled_from([0.0, -0.3, 0.2])),
        decay_input=draw(st.booleans()), leaky=draw(st.booleans()), detach_reset=draw(st.booleans()),
        kind=draw(st.integers(0, 4)), smooth=draw(st.booleans()) if smooth is None else smooth)


@st.composite
def lif_cases(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    T = draw(st.integers(1, 6))
    M = draw(st.sampled_from([1, 3, 17, 511, 512, 513, 1300]))  # around the kernel's block size
    rng = np.random.default_rng(draw(seeds))
    layout = draw(st.sampled_from(["one", "per_neuron", "per_step_neuron"]))
    alpha_shape = {"one": (1, 1), "per_neuron": (1, M), "per_step_neuron": (T, M)}[layout]
    case = dict(x_seq=(rng.normal(0.6, 1.2, (T, M))).astype(dtype),
                alpha=rng.uniform(0.5, 8.0, alpha_shape).astype(dtype), params=draw(lif_params()))
    grad = dict(g_seq=rng.normal(size=(T, M)).astype(dtype), need_alpha=draw(st.booleans()),
                need_tau=draw(st.booleans()))
    return case, grad


def _fwd_args(c):
    return c["x_seq"], c["alpha"], c["params"]


def _bwd_args(c, g):
    return g["g_seq"], c["x_seq"], c["alpha"], c["params"], g["need_alpha"], g["need_tau"]


def _near_threshold_neurons(c):
    """Columns whose reference membrane came within 1e-6 of the threshold at some step."""
    p = c["params"].in_dtype(c["x_seq"].dtype)
    h_seq, _ = ref_lif._run(c["x_seq"], c["alpha"], p)
    return np.any(np.abs(h_seq.astype(np.float64) - np.float64(p.v_threshold)) < 1e-6, axis=0)


@given(lif_cases(), st.booleans())
def test_forward_matches_reference(case, keep_psi):
    c, _ = case
    forward = "lif_forward_with_psi" if keep_psi else "lif_forward"
    ref, jit = getattr(ref_lif, forward)(*_fwd_args(c)), getattr(jit_lif, forward)(*_fwd_args(c))
    if keep_psi:
        (ref, ref_psi), (jit, jit_psi) = ref, jit
        assert jit_psi.shape == ref_psi.shape == c["x_seq"].shape
    assert jit.dtype == ref.dtype == c["x_seq"].dtype and jit.shape == ref.shape
    smooth = c["params"].smooth
    if keep_psi:
        ok = np.ones(jit.shape[1], bool) if smooth else ~_near_threshold_neurons(c)
        tol = (2e-5, 1e-6) if jit.dtype == np.float32 else (1e-12, 1e-14)
        np.testing.assert_allclose(jit_psi[:, ok], ref_psi[:, ok], rtol=tol[0], atol=tol[1])
    if smooth:
        tol = 1e-5 if jit.dtype == np.float32 else 1e-12
        np.testing.assert_allclose(jit, ref, rtol=tol, atol=tol)
    else:
        assert set(np.unique(jit)) <= {0.0, 1.0}
        ok = ~_near_threshold_neurons(c)
        np.testing.assert_array_equal(jit[:, ok], ref[:, ok])


def _bits(a):
    """The bit patterns of a float array (so that −0.0 and +0.0, or two NaNs, are told apart)."""
    a = np.ascontiguousarray(a).reshape(-1)
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


@given(lif_cases())
def test_jit_equals_reference_bit_for_bit(case):
    """Both kernels run the step functions of `kernels/lif_params.py` in the same order and dtype.
    Binary spikes therefore agree bit for bit for every neuron; so do q = ±ψ, dL/dx and dL/dα
    wherever the surrogate is plain arithmetic: every kind except the sigmoid (its exp) and the
    atan primitive of smooth mode, which Numba and NumPy round differently.  (dL/dτ is summed in
    another order; `lif_backward_saved` may differ in the sign of a zero at the last step.)"""
    c, g = case
    p = c["params"]
    (rs, rq), (js, jq) = ref_lif.lif_forward_with_psi(*_fwd_args(c)), jit_lif.lif_forward_with_psi(*_fwd_args(c))
    for mod, s in ((ref_lif, rs), (jit_lif, js)):
        np.testing.assert_array_equal(_bits(mod.lif_forward(*_fwd_args(c))), _bits(s))
    exact = p.kind in (PIECEWISE_LINEAR, RECTANGULAR, FAST_SIGMOID) or (p.kind == ATAN and not p.smooth)
    if exact or not p.smooth:
        np.testing.assert_array_equal(_bits(js), _bits(rs))
    if not exact:
        return
    np.testing.assert_array_equal(_bits(jq), _bits(rq))
    (rx, ra, _), (jx, ja, _) = ref_lif.lif_backward(*_bwd_args(c, g)), jit_lif.lif_backward(*_bwd_args(c, g))
    np.testing.assert_array_equal(_bits(jx), _bits(rx))
    np.testing.assert_array_equal(_bits(ja), _bits(ra))
    if p.soft_reset or (p.detach_reset and not p.smooth):
        np.testing.assert_array_equal(jit_lif.lif_backward_saved(g["g_seq"], rq, p),
                                      ref_lif.lif_backward_saved(g["g_seq"], rq, p))


@given(lif_cases())
def test_backward_matches_reference(case):
    c, g = case
    (rx, ra, rt), (jx, ja, jt) = ref_lif.lif_backward(*_bwd_args(c, g)), jit_lif.lif_backward(*_bwd_args(c, g))
    p = c["params"]
    ok = np.ones(c["x_seq"].shape[1], bool) if p.smooth else ~_near_threshold_neurons(c)
    rtol, atol = (2e-4, 1e-5) if c["x_seq"].dtype == np.float32 else (1e-9, 1e-12)
    assert jx.dtype == rx.dtype and jx.shape == rx.shape
    np.testing.assert_allclose(jx[:, ok], rx[:, ok], rtol=rtol, atol=atol)
    assert ja.shape == ra.shape == (c["x_seq"].shape if g["need_alpha"] else (0, 0))
    if g["need_alpha"]:
        np.testing.assert_allclose(ja[:, ok], ra[:, ok], rtol=rtol, atol=atol)
    if g["need_tau"] and p.leaky and ok.all():
        assert jt == pytest.approx(rt, rel=10 * rtol, abs=10 * atol * c["x_seq"].size)
    if not (g["need_tau"] and p.leaky):
        assert jt == rt == 0.0


@given(lif_cases())
def test_saved_backward_equals_full_backward(case):
    """The fast path (spikes and ψ saved by the forward) gives the recomputing kernel's dL/dx."""
    c, g = case
    p = c["params"]
    if not (p.soft_reset or p.detach_reset):
        for mod in (ref_lif, jit_lif):
            with pytest.raises(ValueError, match="use lif_backward"):
                mod.lif_backward_saved(g["g_seq"], c["x_seq"], p)
        return
    if not p.soft_reset:
        c = dict(c, params=p._replace(smooth=False))  # the sign of q marks H ≥ θ: a hard reset needs binary spikes
    full = {}
    for mod in (ref_lif, jit_lif):
        _, q_seq = mod.lif_forward_with_psi(*_fwd_args(c))
        saved = mod.lif_backward_saved(g["g_seq"], q_seq, c["params"])
        full[mod] = mod.lif_backward(*_bwd_args(c, dict(g, need_alpha=False, need_tau=False)))[0]
        assert saved.dtype == full[mod].dtype
        rtol, atol = (1e-5, 1e-6) if saved.dtype == np.float32 else (1e-12, 1e-14)
        np.testing.assert_allclose(saved, full[mod], rtol=rtol, atol=atol)


@pytest.mark.parametrize("backend", [ref_lif, jit_lif])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("mode", ["hard", "soft", "if", "no_decay", "smooth"])
@pytest.mark.parametrize("t_bad", [0, 2, 4])
def test_non_finite_input_raises(backend, bad, mode, t_bad):
    """Guard: a NaN/inf input anywhere, at any step, raises ValueError (forward and backward)."""
    x = np.random.default_rng(0).normal(0.5, 1.0, (5, 40)).astype(np.float32)
    x[t_bad, 7] = bad
    alpha = np.full((1, 1), 4.0, np.float32)
    params = LIFParams.make(v_reset=None if mode == "soft" else 0.0, decay_input=mode != "no_decay",
                            leaky=mode != "if", smooth=mode == "smooth")
    for forward in (backend.lif_forward, backend.lif_forward_with_psi):
        with pytest.raises(ValueError, match="not finite"):
            forward(x, alpha, params)
    with pytest.raises(ValueError, match="not finite"):
        backend.lif_backward(np.ones_like(x), x, alpha, params, False, False)


def test_result_independent_of_thread_count_and_driver():
    rng = np.random.default_rng(7)
    x = rng.normal(0.5, 1.0, (4, 70_000)).astype(np.float32)
    g = rng.normal(size=x.shape).astype(np.float32)
    alpha = np.full((1, 1), 4.0, np.float32)
    args = (g, x, alpha, LIFParams.make(tau=3.0), True, True)
    one, many = on_one_and_all_threads(lambda: jit_lif.lif_backward(*args))
    serial_limit = jit_lif.SERIAL_BELOW
    try:
        jit_lif.SERIAL_BELOW = x.size + 1
        serial = jit_lif.lif_backward(*args)
    finally:
        jit_lif.SERIAL_BELOW = serial_limit
    for other in (many, serial):
        np.testing.assert_array_equal(one[0], other[0])
        np.testing.assert_array_equal(one[1], other[1])
        assert one[2] == other[2]  # fixed chunking: the τ sum is bit-for-bit reproducible


def test_spikes_fire_at_exact_threshold():
    """H == θ fires (H(0) = 1): with τ = 2 from rest, X = 2θ reaches the threshold exactly."""
    for mod in (ref_lif, jit_lif):
        x = np.array([[2.0, 1.9999999, 2.0000001]], np.float64)
        s = mod.lif_forward(x, np.full((1, 1), 4.0), LIFParams.make(tau=2.0, v_threshold=1.0))
        np.testing.assert_array_equal(s, [[1.0, 0.0, 1.0]])


def test_one_compiled_version_per_dtype():
    """The neuron reaches the kernels as one LIFParams in the arrays' dtype: flags, surrogate kind,
    smooth mode and slope layout are values, not types, so each driver compiles once per dtype."""
    rng = np.random.default_rng(3)
    for dtype in (np.float32, np.float64):
        x = rng.normal(0.5, 1.0, (3, 20)).astype(dtype)
        for params in (LIFParams.make(), LIFParams.make(tau=3.5, v_reset=None, kind=ATAN, smooth=True),
                       LIFParams.make(leaky=False, v_reset=-0.2, detach_reset=False, kind=FAST_SIGMOID)):
            for alpha in (np.full((1, 1), 2.0, dtype), np.full((3, 20), 2.0, dtype)):
                jit_lif.lif_forward(x, alpha, params)
                jit_lif.lif_backward(np.ones_like(x), x, alpha, params, True, True)
    for driver in (jit_lif._forward_serial, jit_lif._backward_serial):
        params_types = {sig[2] for sig in driver.signatures}
        assert len(params_types) == 2, params_types
