"""Multi-step LIF / IF neurons, Numba version of `reference.lif` (same maths, same contract).

Layout of the work: the M neurons are cut into blocks of `BLOCK` columns; blocks run
in parallel (`prange`), each walks through time itself, keeping its membranes in a
small buffer that stays in cache.  The inner loop runs over the neurons of a block
(contiguous memory, SIMD-vectorised); the loop over T is outside it.  The charge,
fire and reset equations are the functions of `kernels/lif_params.py` that the reference
calls too, compiled inline; arithmetic is done in the dtype of `x_seq`, in the same order
as the reference, so spikes agree bit for bit.  The neuron arrives as one `LIFParams`
(`params`), which the compiled functions read fields from, and its surrogate family as the token
`family_ops(params.kind)` (`jit.surrogate`): the kernels are compiled per family, with the family's
scalar functions inlined, whether it is built in or defined by a user.  `lif_backward` recomputes H
from `x_seq` (one read) rather than loading a stored copy; `lif_backward_saved` reads
dL/ds and the sign-packed ψ (q, spike in the sign bit) that the forward saved: two arrays
in, one out.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange, uintp

from ..lif_params import charge, charge_d_tau, charge_slopes, fires, reset, reset_slopes
from .surrogate import D_ALPHA, DERIVATIVE, PRIMITIVE, family_ops, surrogate_block

__all__ = ["lif_forward", "lif_forward_with_psi", "lif_backward", "lif_backward_saved"]

BLOCK = 512  # neurons handled together: the per-block buffers stay in L1
CHUNKS = 64  # parallel work items (each a run of blocks); fixed, so sums do not depend on threads
SERIAL_BELOW = 1 << 15  # elements; smaller inputs run on the calling thread


# The step equations of `kernels/lif_params.py`, compiled inline: the same source lines as the
# NumPy reference, so the two agree bit for bit.
_inline = njit(cache=True, error_model="numpy", inline="always")
_charge, _charge_slopes, _charge_d_tau = _inline(charge), _inline(charge_slopes), _inline(charge_d_tau)
_fires, _reset, _reset_slopes = _inline(fires), _inline(reset), _inline(reset_slopes)


# ------------------------------------------------------------------------------
# Row functions: one time step for the n neurons of a block (1-D arrays of length n).
# They are separate compiled functions on purpose: small loops over a handful of
# arrays vectorise reliably; the same loops inlined into the big parallel body did not.
# The hot ones read and write the shared [T, M] arrays by (row, first column) with unsigned
# indices instead of taking slices of them: every slice of a shared array takes and releases a
# reference to it with an atomic operation on one shared counter, and with a slice per block
# and step, two threads spent more time passing that cache line between cores than computing
# (binary forward, [2, 4194304], 2 threads: 23-27 ms against 1.6-2.5 ms; bench/README.md, "LIF kernel").
# Unsigned indices also spare Numba's negative-index test, which kept LLVM from vectorising.

@njit(cache=True, error_model="numpy")
def _step_row(x_seq, x0, s_seq, s0, t, v, h_t, params):
    """Binary spikes for the n = v.size neurons from column x0 of x_seq (written from column s0 of s_seq):
    H = charge(V, X[t]); S[t] = [H ≥ θ]; V ← reset(H, S).  h_t may be empty."""
    one = x_seq.dtype.type(1.0)
    zero = x_seq.dtype.type(0.0)
    keep_h = h_t.size > 0
    row, xk, sk = uintp(t), uintp(x0), uintp(s0)
    for j in range(uintp(v.size)):
        h = _charge(v[j], x_seq[row, xk + j], params.tau, params.v_rest, params.decay_input, params.leaky)
        s = one if _fires(h, params.v_threshold) else zero
        if keep_h:
            h_t[j] = h
        s_seq[row, sk + j] = s
        v[j] = _reset(h, s, params.v_threshold, params.v_rest, params.soft_reset, one)


@njit(cache=True, error_model="numpy")
def _step_row_smooth(x_t, v, h_t, s_t, a, params, ops):
    """Smooth spikes: as _step_row with S = p(H − θ; a)."""
    one = x_t.dtype.type(1.0)
    for j in range(x_t.size):
        h_t[j] = _charge(v[j], x_t[j], params.tau, params.v_rest, params.decay_input, params.leaky)
    surrogate_block(PRIMITIVE, ops, h_t, params.v_threshold, a, s_t)
    for j in range(x_t.size):
        v[j] = _reset(h_t[j], s_t[j], params.v_threshold, params.v_rest, params.soft_reset, one)


@njit(cache=True, error_model="numpy")
def _backward_row(g_t, d, h_t, s_t, g_v, gx_t, g_s_out, g_h_out, params, dh_dx, dh_dv):
    """One step of the BPTT recursion (see reference.lif); g_v: dL/dV[t] in, dL/dV[t−1] out."""
    one = g_t.dtype.type(1.0)
    for j in range(g_t.size):
        dv_dh, dv_ds = _reset_slopes(h_t[j], s_t[j], params.v_threshold, params.v_rest, params.soft_reset, one)
        g_s = g_t[j] if params.detach_reset else g_t[j] + g_v[j] * dv_ds
        g_h = g_s * d[j] + g_v[j] * dv_dh
        gx_t[j] = g_h * dh_dx
        g_v[j] = g_h * dh_dv
        g_s_out[j] = g_s
        g_h_out[j] = g_h


@njit(cache=True, error_model="numpy")
def _tau_row(x_t, g_h, v_prev, params):
    """Σ_j dL/dH[t]·∂H/∂τ over a row, accumulated in float64.  v_prev: V[t−1] (row)."""
    acc = 0.0
    for j in range(x_t.size):
        acc += np.float64(g_h[j] * _charge_d_tau(v_prev[j], x_t[j], params.tau, params.v_rest, params.decay_input))
    return acc


@njit(cache=True, error_model="numpy")
def _multiply_row(a, b, out):
    for j in range(out.size):
        out[j] = a[j] * b[j]


@njit(cache=True, error_model="numpy")
def _load_slopes(alpha, t, i0, a_buf):
    """a_buf[j] = slope of neuron i0 + j at step t."""
    ta = t if alpha.shape[0] > 1 else 0
    if alpha.shape[1] == 1:
        a_buf[:] = alpha[ta, 0]
    else:
        a_buf[:] = alpha[ta, i0:i0 + a_buf.size]


@njit(cache=True, error_model="numpy")
def _count_nonfinite(v):
    """How many final membranes V[T−1] are NaN or ±inf.  A non-finite input or membrane
    at any step leaves V non-finite for the rest of the sequence (NaN and inf never turn
    finite again in charge/reset), so this one check at the end catches every bad value
    without a test inside the hot loop."""
    zero = v.dtype.type(0.0)
    count = 0
    for j in range(v.size):
        count += (v[j] - v[j]) != zero  # NaN exactly when v[j] is NaN or ±inf
    return count


# ------------------------------------------------------------------------------
def _n_chunks(M):
    return max(1, min(CHUNKS, (M + BLOCK - 1) // BLOCK))


@njit(cache=True, error_model="numpy", inline="always")
def _forward_chunk(c, nchunks, x_seq, alpha, params, ops, s_seq, psi_seq):
    """Forward for the blocks of chunk c (and q = ±ψ, ψ = p'(H − θ), when psi_seq is not empty);
    returns how many final membranes are not finite."""
    T, M = x_seq.shape
    keep_psi = psi_seq.size > 0
    nblocks = (M + BLOCK - 1) // BLOCK
    per_chunk = (nblocks + nchunks - 1) // nchunks
    v = np.empty(BLOCK, dtype=x_seq.dtype)  # V[t−1] of the current block
    h = np.empty(BLOCK if params.smooth or keep_psi else 0, dtype=x_seq.dtype)
    a = np.empty(BLOCK, dtype=x_seq.dtype)
    nonfinite = 0
    for b in range(c * per_chunk, min(nblocks, (c + 1) * per_chunk)):
        i0 = b * BLOCK
        n = min(M, i0 + BLOCK) - i0
        v_b = v[:n]
        v_b[:] = params.v_rest
        for t in range(T):
            if params.smooth or keep_psi:
                _load_slopes(alpha, t, i0, a[:n])
            if params.smooth:
                _step_row_smooth(x_seq[t, i0:i0 + n], v_b, h[:n], s_seq[t, i0:i0 + n], a[:n], params, ops)
            else:
                _step_row(x_seq, i0, s_seq, i0, t, v_b, h[:n] if keep_psi else h, params)
            if keep_psi:
                surrogate_block(DERIVATIVE, ops, h[:n], params.v_threshold, a[:n], psi_seq[t, i0:i0 + n])
                _mark_fired_row(h[:n], params.v_threshold, psi_seq[t, i0:i0 + n])
        nonfinite += _count_nonfinite(v_b)
    return nonfinite


@njit(cache=True, error_model="numpy")
def _mark_fired_row(h_t, v_th, q_t):
    """q ← −q where H ≥ θ: the spike goes into the sign bit of ψ (ψ = 0 becomes −0.0)."""
    for j in range(q_t.size):
        if _fires(h_t[j], v_th):
            q_t[j] = -q_t[j]


@njit(cache=True, error_model="numpy")
def _saved_backward_row(g_seq, q_seq, gx_seq, t, i0, g_v, params, dh_dx, dh_dv):
    """One BPTT step, row t from column i0, from the saved q[t] = ±ψ[t] (no H needed: detached hard
    reset or soft reset); g_v: dL/dV[t] in, dL/dV[t−1] out."""
    one = g_seq.dtype.type(1.0)
    zero = g_seq.dtype.type(0.0)
    row, k0 = uintp(t), uintp(i0)
    for j in range(uintp(g_v.size)):
        k = k0 + j
        psi = abs(q_seq[row, k])
        if params.soft_reset:
            g = g_seq[row, k]
            g_s = g if params.detach_reset else g - g_v[j] * params.v_threshold  # ∂V/∂S = −θ
            g_h = g_s * psi + g_v[j]
        else:
            s = one if np.signbit(q_seq[row, k]) else zero
            g_h = g_seq[row, k] * psi + g_v[j] * (one - s)
        gx_seq[row, k] = g_h * dh_dx
        g_v[j] = g_h * dh_dv


@njit(cache=True, error_model="numpy")
def _saved_backward_last_row(g_seq, q_seq, gx_seq, t, i0, g_v, dh_dx, dh_dv):
    """The step t = T−1, where nothing arrives from the future (dL/dV = 0): S is not needed."""
    row, k0 = uintp(t), uintp(i0)
    for j in range(uintp(g_v.size)):
        k = k0 + j
        g_h = g_seq[row, k] * abs(q_seq[row, k])
        gx_seq[row, k] = g_h * dh_dx
        g_v[j] = g_h * dh_dv


@njit(cache=True, error_model="numpy", inline="always")
def _saved_backward_chunk(c, nchunks, g_seq, q_seq, params, gx_seq):
    T, M = g_seq.shape
    dh_dx, dh_dv = _charge_slopes(params.tau, params.decay_input, params.leaky, g_seq.dtype.type(1.0))
    nblocks = (M + BLOCK - 1) // BLOCK
    per_chunk = (nblocks + nchunks - 1) // nchunks
    g_v = np.empty(BLOCK, dtype=g_seq.dtype)
    for b in range(c * per_chunk, min(nblocks, (c + 1) * per_chunk)):
        i0 = b * BLOCK
        n = min(M, i0 + BLOCK) - i0
        _saved_backward_last_row(g_seq, q_seq, gx_seq, T - 1, i0, g_v[:n], dh_dx, dh_dv)
        for t in range(T - 2, -1, -1):
            _saved_backward_row(g_seq, q_seq, gx_seq, t, i0, g_v[:n], params, dh_dx, dh_dv)


@njit(cache=True, error_model="numpy", inline="always")
def _backward_chunk(c, nchunks, g_seq, x_seq, alpha, params, ops, need_alpha, need_tau, gx_seq, ga_seq):
    """BPTT for the blocks of chunk c; returns (Σ dL/dτ over the chunk, #non-finite membranes)."""
    T, M = x_seq.shape
    zero = x_seq.dtype.type(0.0)
    dh_dx, dh_dv = _charge_slopes(params.tau, params.decay_input, params.leaky, x_seq.dtype.type(1.0))
    nblocks = (M + BLOCK - 1) // BLOCK
    per_chunk = (nblocks + nchunks - 1) // nchunks
    # scratch for one block, reused by every block of this chunk
    h_buf = np.empty((T, BLOCK), dtype=x_seq.dtype)  # H[t]
    s_buf = np.empty((T, BLOCK), dtype=x_seq.dtype)  # S[t]
    v_buf = np.empty((T, BLOCK), dtype=x_seq.dtype)  # V[t] (only for dL/dτ)
    work = np.empty((6, BLOCK), dtype=x_seq.dtype)
    g_tau = 0.0
    nonfinite = 0
    for b in range(c * per_chunk, min(nblocks, (c + 1) * per_chunk)):
        i0 = b * BLOCK
        n = min(M, i0 + BLOCK) - i0
        a, v, g_v, d, g_s, g_h = work[0, :n], work[1, :n], work[2, :n], work[3, :n], work[4, :n], work[5, :n]
        # 1. forward again, keeping H[t] and S[t] (and V[t] when dL/dτ is wanted)
        v[:] = params.v_rest
        for t in range(T):
            if params.smooth:
                _load_slopes(alpha, t, i0, a)
                _step_row_smooth(x_seq[t, i0:i0 + n], v, h_buf[t, :n], s_buf[t, :n], a, params, ops)
            else:
                _step_row(x_seq, i0, s_buf, 0, t, v, h_buf[t, :n], params)
            if need_tau:
                v_buf[t, :n] = v
        nonfinite += _count_nonfinite(v)
        # 2. backward through time
        g_v[:] = zero
        for t in range(T - 1, -1, -1):
            _load_slopes(alpha, t, i0, a)
            surrogate_block(DERIVATIVE, ops, h_buf[t, :n], params.v_threshold, a, d)  # p'(H[t] − θ)
            _backward_row(g_seq[t, i0:i0 + n], d, h_buf[t, :n], s_buf[t, :n], g_v, gx_seq[t, i0:i0 + n],
                          g_s, g_h, params, dh_dx, dh_dv)
            if need_alpha:
                surrogate_block(D_ALPHA, ops, h_buf[t, :n], params.v_threshold, a, d)
                _multiply_row(g_s, d, ga_seq[t, i0:i0 + n])
            if need_tau and params.leaky:
                if t > 0:
                    g_tau += _tau_row(x_seq[t, i0:i0 + n], g_h, v_buf[t - 1, :n], params)
                else:
                    v[:] = params.v_rest
                    g_tau += _tau_row(x_seq[t, i0:i0 + n], g_h, v, params)
    return g_tau, nonfinite


# Parallel drivers (one work item per chunk) and serial twins for small inputs, where
# waking the thread pool costs more than the work.  Both use the same fixed chunks, so
# results do not depend on the driver or the thread count.  `params` is the neuron's LIFParams
# with τ, θ and v_r already in the dtype of the arrays (`LIFParams.in_dtype`), so every
# driver compiles once per dtype.
@njit(cache=True, error_model="numpy", parallel=True)
def _forward_parallel(x_seq, alpha, params, ops, s_seq, psi_seq, bad):
    for c in prange(bad.size):
        bad[c] = _forward_chunk(c, bad.size, x_seq, alpha, params, ops, s_seq, psi_seq)


@njit(cache=True, error_model="numpy")
def _forward_serial(x_seq, alpha, params, ops, s_seq, psi_seq, bad):
    for c in range(bad.size):
        bad[c] = _forward_chunk(c, bad.size, x_seq, alpha, params, ops, s_seq, psi_seq)


@njit(cache=True, error_model="numpy", parallel=True)
def _saved_backward_parallel(g_seq, q_seq, params, gx_seq, nchunks):
    for c in prange(nchunks):
        _saved_backward_chunk(c, nchunks, g_seq, q_seq, params, gx_seq)


@njit(cache=True, error_model="numpy")
def _saved_backward_serial(g_seq, q_seq, params, gx_seq, nchunks):
    for c in range(nchunks):
        _saved_backward_chunk(c, nchunks, g_seq, q_seq, params, gx_seq)


@njit(cache=True, error_model="numpy", parallel=True)
def _backward_parallel(g_seq, x_seq, alpha, params, ops, need_alpha, need_tau, gx_seq, ga_seq, g_tau_chunks, bad):
    for c in prange(bad.size):
        g_tau_chunks[c], bad[c] = _backward_chunk(c, bad.size, g_seq, x_seq, alpha, params, ops, need_alpha, need_tau,
                                                  gx_seq, ga_seq)


@njit(cache=True, error_model="numpy")
def _backward_serial(g_seq, x_seq, alpha, params, ops, need_alpha, need_tau, gx_seq, ga_seq, g_tau_chunks, bad):
    for c in range(bad.size):
        g_tau_chunks[c], bad[c] = _backward_chunk(c, bad.size, g_seq, x_seq, alpha, params, ops, need_alpha, need_tau,
                                                  gx_seq, ga_seq)


def _check_finite(bad):
    if bad.any():
        raise ValueError("LIF membrane is not finite: x_seq contains NaN or inf (clean it upstream, "
                         "e.g. with np.nan_to_num)")


def _forward(x_seq, alpha, params, keep_psi):
    s_seq = np.empty_like(x_seq)
    psi_seq = np.empty_like(x_seq) if keep_psi else np.empty((0, 0), x_seq.dtype)
    bad = np.zeros(_n_chunks(x_seq.shape[1]), dtype=np.int64)
    run = _forward_serial if x_seq.size < SERIAL_BELOW else _forward_parallel
    run(x_seq, alpha, params.in_dtype(x_seq.dtype), family_ops(params.kind), s_seq, psi_seq, bad)
    _check_finite(bad)
    return s_seq, psi_seq


def lif_forward(x_seq, alpha, params):
    """Spikes s_seq [T, M] of the neurons driven by x_seq [T, M] (contract: reference.lif)."""
    return _forward(x_seq, alpha, params, False)[0]


def lif_forward_with_psi(x_seq, alpha, params):
    """(s_seq, q_seq) [T, M] each, q = ψ = p'(H − θ) with the sign bit set where H ≥ θ
    (contract: reference.lif)."""
    return _forward(x_seq, alpha, params, True)


def lif_backward_saved(g_seq, q_seq, params):
    """dL/dx_seq from the forward's sign-packed ψ, q_seq (contract: reference.lif)."""
    if not (params.soft_reset or params.detach_reset):
        raise ValueError("lif_backward_saved needs H for a hard reset that is not detached; use lif_backward")
    gx_seq = np.empty_like(g_seq)
    if g_seq.shape[0] == 0:
        return gx_seq
    run = _saved_backward_serial if g_seq.size < SERIAL_BELOW else _saved_backward_parallel
    run(g_seq, q_seq, params.in_dtype(g_seq.dtype), gx_seq, _n_chunks(g_seq.shape[1]))
    return gx_seq


def lif_backward(g_seq, x_seq, alpha, params, need_alpha, need_tau):
    """(dL/dx_seq, dL/dα per element or empty, dL/dτ) (contract: reference.lif)."""
    gx_seq = np.empty_like(x_seq)
    ga_seq = np.empty_like(x_seq) if need_alpha else np.empty((0, 0), x_seq.dtype)
    nchunks = _n_chunks(x_seq.shape[1])
    g_tau_chunks = np.zeros(nchunks, dtype=np.float64)
    bad = np.zeros(nchunks, dtype=np.int64)
    run = _backward_serial if x_seq.size < SERIAL_BELOW else _backward_parallel
    run(g_seq, x_seq, alpha, params.in_dtype(x_seq.dtype), family_ops(params.kind), bool(need_alpha), bool(need_tau),
        gx_seq, ga_seq, g_tau_chunks, bad)
    _check_finite(bad)
    return gx_seq, ga_seq, float(g_tau_chunks.sum())
