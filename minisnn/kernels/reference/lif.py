"""Multi-step LIF / IF neurons: forward and BPTT backward, NumPy reference.

One neuron per column of `x_seq` [T, M]; time runs down axis 0.  Per step t (the step
functions `charge`, `fires`, `reset` and their slopes live in `minisnn/kernels/lif_params.py`,
shared with the Numba kernel; the derivation of the backward pass is in `minisnn/spiking/bptt.md`):

    charge   H[t] = V[t-1] + (X[t] − (V[t-1] − v_r)) / τ      LIF, decay_input=True
             H[t] = V[t-1] − (V[t-1] − v_r) / τ + X[t]        LIF, decay_input=False
             H[t] = V[t-1] + X[t]                             IF (leaky=False)
    fire     S[t] = H(H[t] − θ)  (Heaviside, H(0) = 1)      or  p(H[t] − θ; α)  when smooth
    reset    V[t] = H[t]·(1 − S[t]) + v_r·S[t]                hard reset
             V[t] = H[t] − θ·S[t]                             soft reset (v_r = 0 in the charge)
    with V[-1] = v_r (hard) or 0 (soft).

Backward, t = T−1 … 0, with gV = dL/dV[t] arriving from step t+1 (0 at t = T−1):

    gS[t] = dL/dS[t] + gV·∂V/∂S          (the second term only when the reset is not detached)
    gH[t] = gS[t]·p'(H[t] − θ) + gV·∂V/∂H|_S
    dL/dX[t] = gH[t]·∂H/∂X,   next gV = gH[t]·∂H/∂V,   dL/dα += gS[t]·∂p/∂α,   dL/dτ += gH[t]·∂H/∂τ
    hard: ∂V/∂H|_S = 1 − S, ∂V/∂S = v_r − H;   soft: ∂V/∂H|_S = 1, ∂V/∂S = −θ
    LIF: ∂H/∂V = 1 − 1/τ,  ∂H/∂X = 1/τ (decay_input) or 1;  IF: both 1.

Two backward kernels:

* `lif_backward` recomputes H and S from `x_seq` and handles every case (gradients for
  α and τ, a hard reset that is not detached);
* `lif_backward_saved` is the common training case (detached hard reset or soft reset,
  gradient for x only): `lif_forward_with_psi` also writes ψ[t] = p'(H[t] − θ), and
  backward then needs only ψ[t] and, for the hard reset, whether the neuron fired.
  This moves the costly surrogate evaluation into the forward pass, where it overlaps
  with the memory traffic.  The spike travels in the sign bit of ψ (ψ ≥ 0 for every
  surrogate), so backward reads one saved array instead of two:

      q[t] = −ψ[t] where H[t] ≥ θ,   +ψ[t] elsewhere;   ψ[t] = |q[t]|,  fired = signbit(q[t])

  ψ = 0 with a spike is stored as −0.0, which still has its sign bit set.  The sign
  marks H[t] ≥ θ, which is S[t] for binary spikes; with smooth spikes S is not 0/1,
  so a hard reset in smooth mode must use `lif_backward` (the soft reset ignores the sign).

Kernel contract (shared with `minisnn.kernels.jit.lif`):

* `x_seq`, `g_seq`: float32/float64 arrays [T, M], C-contiguous.
* `alpha`: surrogate slope, same dtype, shape [A_t, A_m] with A_t in {1, T} and
  A_m in {1, M} (one slope for everything is [1, 1]).
* `params`: the neuron as one `LIFParams` (`minisnn/kernels/lif_params.py`: τ, θ, v_r,
  the flags and the surrogate kind); flags `need_alpha`, `need_tau` for `lif_backward`.
* A non-finite membrane (NaN/inf input) raises ValueError.
"""
from __future__ import annotations

import numpy as np

from ..lif_params import charge, charge_d_tau, charge_slopes, fires, reset, reset_slopes
from .surrogate import surrogate_d_alpha, surrogate_derivative, surrogate_primitive

__all__ = ["lif_forward", "lif_forward_with_psi", "lif_backward", "lif_backward_saved"]


def _fire(h, params, a):
    """S[t]: the step at θ, or p(H − θ; α) in smooth mode."""
    if params.smooth:
        return surrogate_primitive(h - params.v_threshold, a, params.kind)
    return fires(h, params.v_threshold).astype(h.dtype)


def _slope_at(alpha, t):
    """The slopes of step t: shape [A_m], broadcasting over the M neurons."""
    return alpha[t if alpha.shape[0] > 1 else 0]


def _run(x_seq, alpha, params):
    """Charge, fire and reset over T steps; returns (h_seq, s_seq), both [T, M].
    params: the LIFParams already in x_seq's dtype (`LIFParams.in_dtype`)."""
    one = x_seq.dtype.type(1)
    h_seq = np.empty_like(x_seq)
    s_seq = np.empty_like(x_seq)
    v = np.full(x_seq.shape[1:], params.v_rest, dtype=x_seq.dtype)
    with np.errstate(invalid="ignore", over="ignore"):  # non-finite input is reported below
        for t in range(x_seq.shape[0]):
            h = charge(v, x_seq[t], params.tau, params.v_rest, params.decay_input, params.leaky)
            s = _fire(h, params, _slope_at(alpha, t))
            v = reset(h, s, params.v_threshold, params.v_rest, params.soft_reset, one)
            h_seq[t], s_seq[t] = h, s
    if not np.all(np.isfinite(h_seq)):
        raise ValueError("LIF membrane is not finite: x_seq contains NaN or inf (clean it upstream, "
                         "e.g. with np.nan_to_num)")
    return h_seq, s_seq


def lif_forward(x_seq, alpha, params):
    """Spikes s_seq [T, M] of the neurons driven by x_seq [T, M]."""
    return _run(x_seq, alpha, params.in_dtype(x_seq.dtype))[1]


def _pack_spike_sign(psi, fired):
    """q = −ψ where fired, +ψ elsewhere (ψ ≥ 0; −0.0 keeps the sign of a spike with ψ = 0)."""
    return np.where(fired, -psi, psi)


def lif_forward_with_psi(x_seq, alpha, params):
    """(s_seq, q_seq) [T, M] each: the spikes, and ψ[t] = p'(H[t] − θ; α) with the sign bit
    set where H[t] ≥ θ (q = −ψ there): all that `lif_backward_saved` needs."""
    params = params.in_dtype(x_seq.dtype)
    h_seq, s_seq = _run(x_seq, alpha, params)
    q_seq = np.empty_like(x_seq)
    for t in range(x_seq.shape[0]):
        psi = surrogate_derivative(h_seq[t] - params.v_threshold, _slope_at(alpha, t), params.kind)
        q_seq[t] = _pack_spike_sign(psi, fires(h_seq[t], params.v_threshold))
    return s_seq, q_seq


def lif_backward_saved(g_seq, q_seq, params):
    """dL/dx_seq [T, M] from the forward's sign-packed ψ (q_seq), without H or S.

    ψ[t] = |q[t]|; the hard reset's 1 − S[t] is 0 where signbit(q[t]), 1 elsewhere.
    Valid when H is not needed: a detached hard reset with binary spikes, or a soft reset
    (∂V/∂S = −θ is a constant); no gradient for α or τ.  The same recursion as `lif_backward`.
    """
    if not (params.soft_reset or params.detach_reset):
        raise ValueError("lif_backward_saved needs H for a hard reset that is not detached; use lif_backward")
    params = params.in_dtype(g_seq.dtype)
    one = g_seq.dtype.type(1)
    dh_dx, dh_dv = charge_slopes(params.tau, params.decay_input, params.leaky, one)
    gx_seq = np.empty_like(g_seq)
    g_v = np.zeros(g_seq.shape[1:], dtype=g_seq.dtype)
    for t in range(g_seq.shape[0] - 1, -1, -1):
        psi = np.abs(q_seq[t])
        if params.soft_reset:
            g_s = g_seq[t] if params.detach_reset else g_seq[t] - g_v * params.v_threshold
            g_h = g_s * psi + g_v
        else:
            s = np.signbit(q_seq[t]).astype(g_seq.dtype)
            g_h = g_seq[t] * psi + g_v * (one - s)
        gx_seq[t] = g_h * dh_dx
        g_v = g_h * dh_dv
    return gx_seq


def lif_backward(g_seq, x_seq, alpha, params, need_alpha, need_tau):
    """BPTT through T steps.  g_seq = dL/ds_seq [T, M].

    Returns (dL/dx_seq [T, M], dL/dα per element [T, M] or an empty array,
    dL/dτ as a Python float, 0.0 unless need_tau and leaky).
    """
    params = params.in_dtype(x_seq.dtype)
    h_seq, s_seq = _run(x_seq, alpha, params)
    one = x_seq.dtype.type(1)
    dh_dx, dh_dv = charge_slopes(params.tau, params.decay_input, params.leaky, one)
    gx_seq = np.empty_like(x_seq)
    ga_seq = np.empty_like(x_seq) if need_alpha else np.empty((0, 0), x_seq.dtype)
    g_tau = 0.0
    g_v = np.zeros(x_seq.shape[1:], dtype=x_seq.dtype)  # dL/dV[t], arriving from step t+1
    for t in range(x_seq.shape[0] - 1, -1, -1):
        h, s, a = h_seq[t], s_seq[t], _slope_at(alpha, t)
        u = h - params.v_threshold
        dv_dh, dv_ds = reset_slopes(h, s, params.v_threshold, params.v_rest, params.soft_reset, one)
        g_s = g_seq[t] if params.detach_reset else g_seq[t] + g_v * dv_ds
        g_h = g_s * surrogate_derivative(u, a, params.kind) + g_v * dv_dh
        gx_seq[t] = g_h * dh_dx
        if need_alpha:
            ga_seq[t] = g_s * surrogate_d_alpha(u, a, params.kind)
        if need_tau and params.leaky:
            v_prev = params.v_rest if t == 0 else reset(h_seq[t - 1], s_seq[t - 1], params.v_threshold,
                                                        params.v_rest, params.soft_reset, one)
            dh_dtau = charge_d_tau(v_prev, x_seq[t], params.tau, params.v_rest, params.decay_input)
            g_tau += float(np.sum(g_h * dh_dtau, dtype=np.float64))
        g_v = g_h * dh_dv
    return gx_seq, ga_seq, g_tau
