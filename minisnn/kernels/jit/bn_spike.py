"""BatchNorm followed by a spike on a token matrix, Numba version (same names, signatures and
maths as `reference.bn_spike`, which explains the pair).

Each kernel streams through x [M, C] once, row by row, and recomputes the BatchNorm output
y = (x − centre)·scale + shift of every value where it needs it, instead of reading a stored y:

* `bn_spike_forward` writes the spikes and counts NaN on the calling thread (memory-bound and
  short, like `jit.spike.spike_forward`);
* `bn_spike_backward` writes du and adds its per-channel sums into one row of partial sums per
  block of rows; the blocks run on Numba's thread pool for large inputs, and the partials are
  added in block order, so the sums do not depend on the thread count.

The spike condition and the surrogate functions are those of `jit.spike` / `jit.surrogate`
(compiled per surrogate family); no fastmath anywhere here (threshold and surrogate code).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ..lif_params import fires
from ..reference.bn_spike import GUARD
from .surrogate import SERIAL_BELOW, derivative, family_ops, typed

__all__ = ["bn_spike_forward", "bn_spike_backward"]

_BLOCK_VALUES = 1 << 15  # values per block of rows in the backward pass
_SUMS_FAST = {"reassoc", "contract", "nsz"}  # for the float64 sums only (see `_add_row_sums`)
_fires = njit(cache=True, error_model="numpy", inline="always")(fires)


@njit(cache=True, error_model="numpy", inline="always")
def _membrane(xv, centre, scale, shift, nan_guard):
    """u = guard(y) (or y) for one value, y = (x − centre)·scale + shift.  Written as selects, not
    branches, so the loops that call it vectorise."""
    y = (xv - centre) * scale + shift
    if nan_guard:
        big = typed(y, GUARD)
        return y if math.isfinite(y) else (typed(y, 0.0) if y != y else (big if y > 0 else -big))
    return y


@njit(cache=True, error_model="numpy")
def _fire_rows(x, centre, scale, shift, threshold, nan_guard, s):
    """s[i, j] = H(u − θ); returns the number of NaN in u."""
    one, zero = typed(threshold, 1.0), typed(threshold, 0.0)
    n_nan = 0
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            u = _membrane(x[i, j], centre[j], scale[j], shift[j], nan_guard)
            s[i, j] = one if _fires(u, threshold) else zero
            n_nan += 1 if u != u else 0
    return n_nan


def bn_spike_forward(x: np.ndarray, centre: np.ndarray, scale: np.ndarray, shift: np.ndarray,
                     threshold: float, nan_guard: bool):
    """(s, n_nan); same contract as the reference."""
    s = np.empty_like(x)
    n_nan = _fire_rows(x, centre, scale, shift, x.dtype.type(threshold), bool(nan_guard), s)
    return s, int(n_nan)


@njit(cache=True, error_model="numpy", fastmath=_SUMS_FAST)
def _add_row_sums(d, xi, mean, a1, a2):
    """a1 += d, a2 += d·(x − mean), per column in float64 (BatchNorm statistics code: the BatchNorm
    kernels' fastmath flags, re-association and contraction, let LLVM vectorise it; no threshold here)."""
    for j in range(d.shape[0]):
        dj = np.float64(d[j])
        a1[j] += dj
        a2[j] += dj * (np.float64(xi[j]) - mean[j])


@njit(cache=True, error_model="numpy", inline="always")
def _grad_block(b, rows, ops, g, x, centre, scale, shift, mean, threshold, alpha, nan_guard, du, p1, p2):
    """Rows [b·rows, …): du and its partial sums Σ du, Σ du·(x − mean) into p1[b], p2[b].
    Per row, one loop makes du (0 where the guard replaces y: a select, so the loop vectorises) and
    `_add_row_sums` adds the row to the sums while it is still in cache."""
    a1 = p1[b]
    a2 = p2[b]
    a1[:] = 0.0
    a2[:] = 0.0
    zero = typed(threshold, 0.0)
    for i in range(b * rows, min(x.shape[0], (b + 1) * rows)):
        xi, gi, di = x[i], g[i], du[i]
        for j in range(x.shape[1]):
            y = (xi[j] - centre[j]) * scale[j] + shift[j]
            d = gi[j] * derivative(ops, y - threshold, alpha)
            di[j] = d if math.isfinite(y) or not nan_guard else zero
        _add_row_sums(di, xi, mean, a1, a2)


@njit(cache=True, error_model="numpy", parallel=True)
def _grad_parallel(rows, ops, g, x, centre, scale, shift, mean, threshold, alpha, nan_guard, du, p1, p2):
    for b in prange(p1.shape[0]):
        _grad_block(b, rows, ops, g, x, centre, scale, shift, mean, threshold, alpha, nan_guard, du, p1, p2)


@njit(cache=True, error_model="numpy")
def _grad_serial(rows, ops, g, x, centre, scale, shift, mean, threshold, alpha, nan_guard, du, p1, p2):
    for b in range(p1.shape[0]):
        _grad_block(b, rows, ops, g, x, centre, scale, shift, mean, threshold, alpha, nan_guard, du, p1, p2)


def bn_spike_backward(g: np.ndarray, x: np.ndarray, centre: np.ndarray, scale: np.ndarray, shift: np.ndarray,
                      mean: np.ndarray, threshold: float, alpha: float, kind: int, nan_guard: bool):
    """(du, Σ du, Σ du·(x − mean)); same contract as the reference."""
    m, c = x.shape
    rows = max(1, min(m, _BLOCK_VALUES // max(c, 1)))
    blocks = -(-m // rows)
    p1, p2 = np.empty((blocks, c)), np.empty((blocks, c))
    du = np.empty_like(g)
    run = _grad_serial if x.size < SERIAL_BELOW else _grad_parallel
    dt = x.dtype.type
    run(rows, family_ops(kind), g, x, centre, scale, shift, mean.astype(np.float64), dt(threshold), dt(alpha),
        bool(nan_guard), du, p1, p2)
    return du, p1.sum(axis=0), p2.sum(axis=0)
