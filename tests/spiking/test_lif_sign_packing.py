"""The forward's saved array q carries ψ = p'(H − θ) in its magnitude and the spike in its sign bit."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minisnn.kernels.jit import lif as jit_lif
from minisnn.kernels.lif_params import LIFParams
from minisnn.kernels.reference import lif as ref_lif
from minisnn.kernels.reference.surrogate import surrogate_derivative

BACKENDS = [ref_lif, jit_lif]


@st.composite
def binary_cases(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    T = draw(st.integers(1, 5))
    M = draw(st.sampled_from([1, 7, 513, 1300]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x_seq = rng.normal(0.6, 1.5, (T, M)).astype(dtype)
    x_seq[:, ::5] *= 1e4  # far above threshold: ψ underflows to 0 while the neuron fires
    soft = draw(st.booleans())
    params = LIFParams.make(tau=draw(st.floats(0.6, 8.0)), v_threshold=draw(st.floats(0.2, 1.5)),
                            v_reset=None if soft else draw(st.sampled_from([0.0, -0.3])),
                            decay_input=draw(st.booleans()), leaky=draw(st.booleans()), kind=draw(st.integers(0, 4)))
    return x_seq, np.full((1, 1), draw(st.floats(0.5, 8.0)), dtype), params


@pytest.mark.parametrize("backend", BACKENDS)
@given(binary_cases())
def test_sign_packed_psi_decodes_to_psi_and_spikes(backend, args):
    """|q| is ψ bit for bit and signbit(q) is S, including ψ = 0 with S = 1 (stored as −0.0)."""
    x_seq, alpha, params = args
    p = params.in_dtype(x_seq.dtype)
    s_seq, q_seq = backend.lif_forward_with_psi(*args)
    h_seq, s_ref = ref_lif._run(x_seq, alpha, p)
    psi_ref = surrogate_derivative(h_seq - p.v_threshold, alpha[0], p.kind)
    assert np.all(psi_ref >= 0)
    near = np.abs(h_seq.astype(np.float64) - np.float64(p.v_threshold)) < 1e-6  # where H is within rounding of θ
    ok = ~np.any(near, axis=0)
    np.testing.assert_array_equal(s_seq[:, ok], s_ref[:, ok])
    np.testing.assert_array_equal(np.signbit(q_seq), s_seq == 1)  # every spike, also where ψ = 0
    if backend is ref_lif:
        assert np.array_equal(np.abs(q_seq).view(np.uint8), psi_ref.view(np.uint8))
    else:
        rtol, atol = (1e-5, 1e-30) if x_seq.dtype == np.float32 else (1e-12, 1e-300)  # exp may differ in denormals
        np.testing.assert_allclose(np.abs(q_seq)[:, ok], psi_ref[:, ok], rtol=rtol, atol=atol)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zero_psi_spike_still_blocks_the_future_gradient(backend, dtype):
    """A spike with ψ = 0 is stored as −0.0; backward still reads it as a spike (1 − S = 0)."""
    x_seq = np.array([[1e6, 0.3], [0.4, 0.4]], dtype)  # neuron 0 fires at t = 0 with ψ = 0
    alpha = np.full((1, 1), 4.0, dtype)
    params = LIFParams.make(tau=2.0, v_threshold=1.0, v_reset=0.0, detach_reset=True)
    s_seq, q_seq = backend.lif_forward_with_psi(x_seq, alpha, params)
    assert s_seq[0, 0] == 1 and q_seq[0, 0] == 0 and np.signbit(q_seq[0, 0])
    assert not np.signbit(q_seq[0, 1])
    g = np.ones_like(x_seq)
    saved = backend.lif_backward_saved(g, q_seq, params)
    full = backend.lif_backward(g, x_seq, alpha, params, False, False)[0]
    assert saved[0, 0] == 0  # ψ = 0 at t = 0 and the spike cuts dL/dV from t = 1
    np.testing.assert_array_equal(saved, full)
    flipped = backend.lif_backward_saved(g, np.abs(q_seq), params)
    assert flipped[0, 0] != 0  # without the sign, the gradient from t = 1 would leak through
