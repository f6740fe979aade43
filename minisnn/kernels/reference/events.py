"""Event-driven products with a sparse left operand, NumPy reference.

A layer that reads spikes multiplies a matrix that is mostly zeros: x₂ [M, K] (M rows of K inputs,
a few percent to a few tens of percent of them 1) by the weights.  Listing the nonzero inputs, the
events, once turns both products that involve x₂ into sums over the events only:

    y  = x₂ Wt:    y[t]   = Σ_{events (t, j, v)} v · Wt[j]       (Wt = Wᵀ [K, N])
    dWt = x₂ᵀ g:   dWt[j] = Σ_{events (t, j, v)} v · g[t]

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

__all__ = ["event_row_pointers", "gather_events", "event_matmul", "event_weight_grad"]


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
