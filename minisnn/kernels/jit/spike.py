"""The kernels of `spike()`, Numba version (same names, signatures and maths as `reference.spike`).

`spike_forward` makes the spikes and counts NaN in one read of u and one write of s (NumPy
needs a minimum for the NaN check, a boolean array and a cast).  It runs on the calling thread:
it is memory-bound and short, and waking the thread pool costs more than it saves on two cores.
The `*_rows` kernels work row by row (one slope per row) in blocks of rows on Numba's thread
pool; the surrogate's scalar functions come from `jit.surrogate`, and each row kernel is compiled
per surrogate family.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..lif_params import fires
from .surrogate import DERIVATIVE, PRIMITIVE, SERIAL_BELOW, d_alpha, derivative, family_ops, primitive, typed

__all__ = ["spike_forward", "surrogate_primitive_rows", "spike_backward_rows"]

_CHUNK = 4096  # values per work item of the row kernels
LANES = 8  # running float64 sums per row in spike_backward_rows
_fires = njit(cache=True, error_model="numpy", inline="always")(fires)  # the spike condition, as in the LIF kernels


# ------------------------------------------------------------------------- forward
@njit(cache=True, error_model="numpy")
def _fire(u, threshold, s):
    """s[j] = 1 if u[j] fires else 0; returns the number of NaN (the one value unequal to itself)."""
    one, zero = typed(threshold, 1.0), typed(threshold, 0.0)
    n_nan = 0
    for j in range(u.size):
        s[j] = one if _fires(u[j], threshold) else zero
        n_nan += 1 if u[j] != u[j] else 0
    return n_nan


def spike_forward(u: np.ndarray, threshold: float):
    """(s = H(u − θ) in u's dtype, number of NaN in u); same contract as the reference."""
    s = np.empty(u.shape, dtype=u.dtype)
    n_nan = _fire(u.reshape(-1), u.dtype.type(threshold), s.reshape(-1))
    return s, int(n_nan)


# ------------------------------------------------------------- one slope per row
@njit(cache=True, error_model="numpy")
def _row(which, ops, g, u, shift, a, out, terms):
    """One row at x = u[j] − shift: the primitive into out (which = PRIMITIVE), or the backward
    gu[j] = g[j]·∂p/∂x into out and, when terms is not empty, terms[j] = g[j]·∂p/∂α.
    Compiled per family `ops` (see `jit.surrogate`), so every loop calls one known function."""
    if which == PRIMITIVE:
        for j in range(u.size):
            out[j] = primitive(ops, u[j] - shift, a)
    elif terms.size == 0:
        for j in range(u.size):
            out[j] = g[j] * derivative(ops, u[j] - shift, a)
    else:
        for j in range(u.size):
            x = u[j] - shift
            out[j] = g[j] * derivative(ops, x, a)
            terms[j] = g[j] * d_alpha(ops, x, a)


@njit(cache=True, error_model="numpy", inline="always")
def sum_f64(terms, lanes):
    """Σ terms in float64, in a fixed order: lane l sums terms[l], terms[l + 8], … in turn, then
    the 8 lane sums are added from lane 0 up.  (A single running sum could not be vectorised.)"""
    lanes[:] = 0.0
    n_full = terms.size - terms.size % LANES
    for j0 in range(0, n_full, LANES):
        for lane in range(LANES):
            lanes[lane] += np.float64(terms[j0 + lane])
    for j in range(n_full, terms.size):
        lanes[j - n_full] += np.float64(terms[j])
    total = 0.0
    for lane in range(LANES):
        total += lanes[lane]
    return total


@njit(cache=True, error_model="numpy", inline="always")
def _rows_block(b, rows_per_block, which, ops, need_alpha, g, u, shift, alpha, out, ga):
    """Rows [b·rows_per_block, …) of the primitive or of the backward (with their slope sums)."""
    r0 = b * rows_per_block
    r1 = min(u.shape[0], r0 + rows_per_block)
    terms = np.empty(u.shape[1] if need_alpha else 0, dtype=u.dtype)
    lanes = np.empty(LANES, dtype=np.float64)
    for r in range(r0, r1):
        _row(which, ops, g[r], u[r], shift, alpha[r], out[r], terms)
        if need_alpha:
            ga[r] = sum_f64(terms, lanes)


@njit(cache=True, error_model="numpy", parallel=True)
def _rows_parallel(rows_per_block, which, ops, need_alpha, g, u, shift, alpha, out, ga):
    for b in prange((u.shape[0] + rows_per_block - 1) // rows_per_block):
        _rows_block(b, rows_per_block, which, ops, need_alpha, g, u, shift, alpha, out, ga)


@njit(cache=True, error_model="numpy")
def _rows_serial(rows_per_block, which, ops, need_alpha, g, u, shift, alpha, out, ga):
    for b in range((u.shape[0] + rows_per_block - 1) // rows_per_block):
        _rows_block(b, rows_per_block, which, ops, need_alpha, g, u, shift, alpha, out, ga)


def _run_rows(which, kind, need_alpha, g, u, threshold, alpha):
    u = np.ascontiguousarray(u)
    g = np.ascontiguousarray(g, dtype=u.dtype)
    alpha = np.ascontiguousarray(alpha, dtype=u.dtype).reshape(-1)
    out = np.empty_like(u)
    ga = np.empty(u.shape[0] if need_alpha else 0, dtype=u.dtype)
    run = _rows_serial if u.size < SERIAL_BELOW else _rows_parallel
    rows_per_block = max(1, _CHUNK // max(1, u.shape[1]))
    run(rows_per_block, which, family_ops(kind), bool(need_alpha), g, u, u.dtype.type(threshold), alpha, out, ga)
    return out, ga


def surrogate_primitive_rows(u: np.ndarray, threshold: float, alpha: np.ndarray, kind: int) -> np.ndarray:
    """p(u − θ; α_r), one slope per row; same contract as the reference."""
    return _run_rows(PRIMITIVE, kind, False, u, u, threshold, alpha)[0]


def spike_backward_rows(g: np.ndarray, u: np.ndarray, threshold: float, alpha: np.ndarray, kind: int,
                        need_alpha: bool):
    """(g·∂p/∂x [R, C], Σ_c g·∂p/∂α [R] or an empty array); same contract as the reference.
    The row sums run in float64 in a fixed order (`sum_f64`), whatever the thread count."""
    return _run_rows(DERIVATIVE, kind, need_alpha, g, u, threshold, alpha)
