"""BatchNorm followed by a spike on a token matrix, Numba version (same names, signatures and
maths as `reference.bn_spike`, which explains the pair).

Each kernel streams through x [M, C] once, row by row, and recomputes the BatchNorm output
y = (x − centre)·scale + shift of every value where it needs it, instead of reading a stored y:

* `bn_spike_forward` writes the spikes and counts NaN on the calling thread (memory-bound and
  short, like `jit.spike.spike_forward`); with the guard it counts the non-finite values instead
  and fixes their spikes in a second pass only when there are some;
* `bn_spike_backward` writes du and adds its per-channel sums into one row of partial sums per
  block of rows; the blocks run on Numba's thread pool for large inputs, and the partials are
  added in block order, so the sums do not depend on the thread count.  With per-row slopes it
  also sums each row's slope gradient, in float64 on one thread in a fixed order.

The loops that evaluate the guard are written with selects, or moved to a rare second pass: a
branch in the loop stopped LLVM from vectorising it (2× slower; `minisnn/spiking/norm_spike.md`).
The spike condition and the surrogate functions are those of `jit.spike` / `jit.surrogate`
(compiled per surrogate family); no fastmath in threshold or surrogate code, only in the float64
sums of `_add_row_sums`.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ..lif_params import fires
from ..reference.bn_spike import GUARD
from .norm import row_blocks
from .spike import LANES, sum_f64
from .surrogate import SERIAL_BELOW, d_alpha, derivative, family_ops, typed

__all__ = ["bn_spike_forward", "bn_spike_backward"]

_SUMS_FAST = {"reassoc", "contract", "nsz"}  # for the float64 sums only (see `_add_row_sums`)
_fires = njit(cache=True, error_model="numpy", inline="always")(fires)


@njit(cache=True, error_model="numpy", inline="always")
def _guard_value(y):
    """The NaN guard's value for a non-finite y: NaN → 0, ±inf → ±GUARD (selects, so a loop stays vectorised)."""
    big = typed(y, GUARD)
    return typed(y, 0.0) if y != y else (big if y > 0 else -big)


@njit(cache=True, error_model="numpy")
def _fire_rows(x, centre, scale, shift, threshold, count_non_finite, s):
    """s[i, j] = H(y − θ) for y = (x − centre)·scale + shift; returns the number of NaN in y, or of
    non-finite values when count_non_finite (a guarded forward, which then fixes those up)."""
    one, zero = typed(threshold, 1.0), typed(threshold, 0.0)
    n_bad = 0
    for i in range(x.shape[0]):
        xi, si = x[i], s[i]
        for j in range(x.shape[1]):
            y = (xi[j] - centre[j]) * scale[j] + shift[j]
            si[j] = one if _fires(y, threshold) else zero
            if count_non_finite:
                n_bad += 0 if math.isfinite(y) else 1
            else:
                n_bad += 1 if y != y else 0
    return n_bad


@njit(cache=True, error_model="numpy")
def _fire_guarded(x, centre, scale, shift, threshold, s):
    """Where y is not finite, s = H(guard(y) − θ): NaN → 0, ±inf → ±GUARD (a guarded forward's rare second pass)."""
    one, zero = typed(threshold, 1.0), typed(threshold, 0.0)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            y = (x[i, j] - centre[j]) * scale[j] + shift[j]
            if not math.isfinite(y):
                s[i, j] = one if _fires(_guard_value(y), threshold) else zero


def bn_spike_forward(x: np.ndarray, centre: np.ndarray, scale: np.ndarray, shift: np.ndarray,
                     threshold: float, nan_guard: bool):
    """(s, n_nan, n_replaced); same contract as the reference.  One vectorised pass makes the spikes of y
    and counts the values the guard would replace; only when there are some does a second pass fix their
    spikes."""
    s = np.empty_like(x)
    th = x.dtype.type(threshold)
    n_bad = _fire_rows(x, centre, scale, shift, th, bool(nan_guard), s)
    if nan_guard:
        if n_bad:
            _fire_guarded(x, centre, scale, shift, th, s)
        return s, 0, int(n_bad)
    return s, int(n_bad), 0


@njit(cache=True, error_model="numpy", fastmath=_SUMS_FAST)
def _add_row_sums(d, xi, mean, a1, a2):
    """a1 += d, a2 += d·(x − mean), per column in float64 (BatchNorm statistics code: the BatchNorm
    kernels' fastmath flags, re-association and contraction, let LLVM vectorise it; no threshold here)."""
    for j in range(d.shape[0]):
        dj = np.float64(d[j])
        a1[j] += dj
        a2[j] += dj * (np.float64(xi[j]) - mean[j])


@njit(cache=True, error_model="numpy", inline="always")
def _grad_block(b, rows, ops, g, x, centre, scale, shift, mean, threshold, alpha, nan_guard, need_alpha,
                du, p1, p2, ga):
    """Rows [b·rows, …): du and its partial sums Σ du, Σ du·(x − mean) into p1[b], p2[b], and with
    need_alpha each row's slope gradient ga[i].  Per row, one loop makes du (0 where the guard
    replaces y: a select, so the loop vectorises) and the slope terms g·∂p/∂α at the guarded u; the
    terms are summed in float64 in a fixed order (`sum_f64`), and `_add_row_sums` adds the row to the
    channel sums while it is still in cache.  alpha holds one slope for all rows or one per row."""
    a1 = p1[b]
    a2 = p2[b]
    a1[:] = 0.0
    a2[:] = 0.0
    zero = typed(threshold, 0.0)
    per_row = alpha.shape[0] > 1
    terms = np.empty(x.shape[1] if need_alpha else 0, dtype=x.dtype)
    lanes = np.empty(LANES, dtype=np.float64)
    for i in range(b * rows, min(x.shape[0], (b + 1) * rows)):
        xi, gi, di = x[i], g[i], du[i]
        a = alpha[i] if per_row else alpha[0]
        if need_alpha:
            for j in range(x.shape[1]):
                y = (xi[j] - centre[j]) * scale[j] + shift[j]
                kept = math.isfinite(y) or not nan_guard
                u = y if kept else _guard_value(y)
                di[j] = gi[j] * derivative(ops, u - threshold, a) if kept else zero
                terms[j] = gi[j] * d_alpha(ops, u - threshold, a)
            ga[i] = sum_f64(terms, lanes)
        else:
            for j in range(x.shape[1]):
                y = (xi[j] - centre[j]) * scale[j] + shift[j]
                d = gi[j] * derivative(ops, y - threshold, a)
                di[j] = d if math.isfinite(y) or not nan_guard else zero
        _add_row_sums(di, xi, mean, a1, a2)


@njit(cache=True, error_model="numpy", parallel=True)
def _grad_parallel(rows, ops, g, x, centre, scale, shift, mean, threshold, alpha, nan_guard, need_alpha,
                   du, p1, p2, ga):
    for b in prange(p1.shape[0]):
        _grad_block(b, rows, ops, g, x, centre, scale, shift, mean, threshold, alpha, nan_guard, need_alpha,
                    du, p1, p2, ga)


@njit(cache=True, error_model="numpy")
def _grad_serial(rows, ops, g, x, centre, scale, shift, mean, threshold, alpha, nan_guard, need_alpha,
                 du, p1, p2, ga):
    for b in range(p1.shape[0]):
        _grad_block(b, rows, ops, g, x, centre, scale, shift, mean, threshold, alpha, nan_guard, need_alpha,
                    du, p1, p2, ga)


def bn_spike_backward(g: np.ndarray, x: np.ndarray, centre: np.ndarray, scale: np.ndarray, shift: np.ndarray,
                      mean: np.ndarray, threshold: float, alpha: np.ndarray, kind: int, nan_guard: bool,
                      need_alpha: bool):
    """(du, Σ du, Σ du·(x − mean), dα); same contract as the reference."""
    m, c = x.shape
    rows, blocks = row_blocks(m, c)                   # the BatchNorm kernels' blocks of rows
    p1, p2 = np.empty((blocks, c)), np.empty((blocks, c))
    du = np.empty_like(g)
    ga = np.empty(m if need_alpha else 0, dtype=x.dtype)
    run = _grad_serial if x.size < SERIAL_BELOW else _grad_parallel
    dt = x.dtype.type
    run(rows, family_ops(kind), g, x, centre, scale, shift, mean.astype(np.float64), dt(threshold),
        np.ascontiguousarray(alpha, dtype=x.dtype).reshape(-1), bool(nan_guard), bool(need_alpha),
        du, p1, p2, ga)
    return du, p1.sum(axis=0), p2.sum(axis=0), ga
