"""Event-driven products with a sparse left operand, NumPy reference.

A layer that reads spikes multiplies a matrix that is mostly zeros: x₂ [M, K] (M rows of K inputs,
a few percent to a few tens of percent of them 1) by the weights.  Listing the nonzero inputs, the
events, once turns both products that involve x₂ into sums over the events only:

    y  = x₂ Wt:    y[t]   = Σ_{events (t, j, v)} v · Wt[j]       (Wt = Wᵀ [K, N])
    dWt = x₂ᵀ g:   dWt[j] = Σ_{events (t, j, v)} v · g[t]

A convolution's input is listed the same way, as rows of its image planes: x [N, C, H, W] seen as
x₂ [N·C·H, W], so an event (row (n, c, r), column s, value v) is one input pixel, and

    y[n, :, i, j] = bias + Σ_{events, taps (p, q) with r = i + p − ph, s = j + q − pw} v · w[:, c, p, q]

(`event_conv2d`, stride 1: every event adds one weight column per tap whose output lies inside y).

The events are x₂ in compressed-row form (CSR): `indptr` [M + 1] (int64; row t's events are
`indptr[t]:indptr[t + 1]`), `indices` [nnz] (int32 column j, increasing within a row) and `values`
[nnz] (x₂'s dtype).  Any nonzero value is an event, so the products are exact for any input; a spike
is the value 1.  `minisnn.ops.linear` decides when the events pay (ops/event_linear.md).

Kernel contract (shared with `minisnn.kernels.jit.events`): float32 or float64 arrays, x₂ / Wt / g
C-contiguous 2-D, the event arrays as `event_row_pointers` and `gather_events` make them.  The
references below build the dense x₂ back and call BLAS: the plain definition of each result.
"""
from __future__ import annotations

import numpy as np

__all__ = ["event_row_pointers", "gather_events", "event_matmul", "event_weight_grad", "event_conv2d"]


def event_row_pointers(x2: np.ndarray, max_events: int) -> np.ndarray | None:
    """indptr [M + 1] (int64): indptr[0] = 0, indptr[t + 1] − indptr[t] = nonzeros of row t of x2 [M, K];
    None when x2 holds more than max_events nonzeros (too many events to pay)."""
    counts = np.count_nonzero(x2, axis=1)
    if counts.sum() > max_events:
        return None
    indptr = np.zeros(x2.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return indptr


def gather_events(x2: np.ndarray, indptr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(indices int32 [nnz], values [nnz]): the nonzeros of x2 [M, K] row by row, columns increasing."""
    rows, cols = np.nonzero(x2)                       # row-major order: row by row, columns increasing
    return cols.astype(np.int32), x2[rows, cols]


def _dense(indptr, indices, values, shape):
    """x₂ [M, K] back from its events."""
    x2 = np.zeros(shape, dtype=values.dtype)
    rows = np.repeat(np.arange(shape[0]), np.diff(indptr))
    x2[rows, indices] = values
    return x2


def event_matmul(indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, wt: np.ndarray,
                 bias: np.ndarray | None = None) -> np.ndarray:
    """y [M, N] = x₂ Wt (+ bias [N]), x₂ [M, K] given by its events, Wt [K, N]."""
    y = _dense(indptr, indices, values, (indptr.shape[0] - 1, wt.shape[0])) @ wt
    return y if bias is None else y + bias


def event_weight_grad(indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, g: np.ndarray,
                      in_features: int) -> np.ndarray:
    """dWt [K, N] = x₂ᵀ g, x₂ [M, K] (K = in_features) given by its events, g [M, N]."""
    return _dense(indptr, indices, values, (g.shape[0], in_features)).T @ g


def event_conv2d(indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, w_taps: np.ndarray,
                 bias: np.ndarray, ph: int, pw: int, out: np.ndarray) -> np.ndarray:
    """out [N, O, Ho, Wo] = conv2d(x, w, stride 1, padding (ph, pw)) + bias, x [N, C, H, W] given by the events
    of its rows x₂ [N·C·H, W] (H = Ho + kh − 1 − 2·ph, W = Wo + kw − 1 − 2·pw), w_taps [kh, kw, C, O] (the
    weights w [O, C, kh, kw] transposed), bias [O] of w_taps's dtype.

    Sums in w_taps's dtype and rounds once into out's (float64 weights and a float32 out: the float64
    convolution, rounded).  out is C-contiguous or the [N, O, Ho, Wo] view of a channels-last array."""
    kh, kw, c, o = w_taps.shape
    n, _, ho, wo = out.shape
    h, w = ho + kh - 1 - 2 * ph, wo + kw - 1 - 2 * pw
    x = _dense(indptr, indices, values, (n * c * h, w)).reshape(n, c, h, w).astype(w_taps.dtype)
    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    acc = np.broadcast_to(bias, (n, ho, wo, o)).copy()
    for p in range(kh):
        for q in range(kw):
            acc += np.einsum("nchw,co->nhwo", x_pad[:, :, p:p + ho, q:q + wo], w_taps[p, q])
    out[...] = acc.transpose(0, 3, 1, 2)
    return out
