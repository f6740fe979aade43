"""Event-driven products with a sparse left operand, Numba version (same results as `reference.events`,
to rounding: the sums run over the events in row order instead of BLAS's blocked order).

* `event_row_pointers` counts each row's nonzeros (a vectorised integer sum), rows in parallel, the first
  quarter of the rows first: a dense input is known to be too dense for events after a quarter of the count.
* `gather_events` writes each row's events without a branch per input (a branch taken at the firing
  rate mispredicts often): every input is written to a scratch row and the write position advances
  only past nonzeros; the row's events are then copied out.  Blocks of rows run in parallel; a
  block or a row without events (the row pointers say so) is not read at all.
* `event_matmul`: y[t] = bias + Σ v · Wt[j] over row t's events, rows in parallel; every event is a
  vectorised pass over a contiguous row of Wt, four events to a pass over y[t].  The loops index the
  2-D arrays directly: with row views (`row = y[t]`) Numba's loop ran about 1.6x slower.
* `event_weight_grad`: dWt[j] += v · g[t] for every event.  The rows are cut into a fixed number of
  parts (PARTS), each summed into its own [K, N] buffer, in parallel, and the buffers are then added
  in order: no two threads write the same memory, and the result does not depend on the thread count.
* `event_conv2d`: one output row y[n, :, i, :] per parallel item, summed in a [Wo, O] scratch row of
  w_taps's dtype: for each tap row p and channel c, the events of input row (n, c, i + p − ph) add
  their weight rows w_taps[p, q, c] (contiguous over O: vectorised) to the outputs j = s + pw − q they
  reach.  The finished row is written into out and rounded once: transposed when out is channels first,
  pixel by pixel when it is the [N, O, Ho, Wo] view of a channels-last array (`ops/layout.py`).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["event_row_pointers", "gather_events", "event_matmul", "event_weight_grad", "event_conv2d"]

ROWS_PER_BLOCK = 64   # rows per parallel block of gather_events (one scratch row per block)
PARTS = 8             # row parts of event_weight_grad, each with its own [K, N] buffer


@njit(cache=True, parallel=True)
def _row_counts(x2, first, last, counts):
    """counts[t] = nonzeros of row t, for rows first ≤ t < last (in parallel); returns their sum."""
    total = 0
    for t in prange(first, last):
        c = 0
        for j in range(x2.shape[1]):
            c += x2[t, j] != 0
        counts[t] = c
        total += c
    return total


def event_row_pointers(x2: np.ndarray, max_events: int) -> np.ndarray | None:
    """indptr [M + 1] (int64) of x2 [M, K], or None past max_events nonzeros; same contract as the
    reference.  The first quarter of the rows is counted first, and the count stops there when it
    already passes max_events: a dense input (over 4x the limit's density) costs a quarter of a count,
    a sparse one two launches of the thread pool instead of one."""
    m = x2.shape[0]
    indptr = np.zeros(m + 1, dtype=np.int64)
    first = _row_counts(x2, 0, m // 4, indptr[1:])
    if first > max_events or first + _row_counts(x2, m // 4, m, indptr[1:]) > max_events:
        return None
    np.cumsum(indptr, out=indptr)
    return indptr


@njit(cache=True, parallel=True)
def _gather(x2, indptr, indices, values):
    m, k_in = x2.shape
    for block in prange((m + ROWS_PER_BLOCK - 1) // ROWS_PER_BLOCK):
        if indptr[min(m, (block + 1) * ROWS_PER_BLOCK)] == indptr[block * ROWS_PER_BLOCK]:
            continue                    # no events in these rows (a silent layer): nothing to read
        scratch_j = np.empty(k_in, dtype=np.int32)
        scratch_v = np.empty(k_in, dtype=x2.dtype)
        for t in range(block * ROWS_PER_BLOCK, min(m, (block + 1) * ROWS_PER_BLOCK)):
            start = indptr[t]
            if indptr[t + 1] == start:
                continue                # a silent row
            n = 0
            for j in range(k_in):
                v = x2[t, j]
                scratch_j[n] = j
                scratch_v[n] = v
                n += v != 0
            for e in range(n):
                indices[start + e] = scratch_j[e]
                values[start + e] = scratch_v[e]


def gather_events(x2: np.ndarray, indptr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(indices int32 [nnz], values [nnz]) of x2 [M, K]; same contract as the reference."""
    nnz = int(indptr[-1])
    indices = np.empty(nnz, dtype=np.int32)
    values = np.empty(nnz, dtype=x2.dtype)
    _gather(x2, indptr, indices, values)
    return indices, values


@njit(cache=True, parallel=True)
def _matmul(indptr, indices, values, wt, bias, y):
    n_out = wt.shape[1]
    for t in prange(y.shape[0]):
        for n in range(n_out):
            y[t, n] = bias[n] if bias.size else 0
        e, end = indptr[t], indptr[t + 1]
        while e + 4 <= end:             # four events per pass over y[t]: a quarter of its loads and stores
            v0, v1, v2, v3 = values[e], values[e + 1], values[e + 2], values[e + 3]
            j0, j1, j2, j3 = indices[e], indices[e + 1], indices[e + 2], indices[e + 3]
            for n in range(n_out):
                y[t, n] += (v0 * wt[j0, n] + v1 * wt[j1, n]) + (v2 * wt[j2, n] + v3 * wt[j3, n])
            e += 4
        while e < end:
            v, j = values[e], indices[e]
            for n in range(n_out):
                y[t, n] += v * wt[j, n]
            e += 1


def event_matmul(indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, wt: np.ndarray,
                 bias: np.ndarray | None = None) -> np.ndarray:
    """y [M, N] = x₂ Wt (+ bias), the bias being where each row's sum starts; same contract as the reference."""
    y = np.empty((indptr.shape[0] - 1, wt.shape[1]), dtype=wt.dtype)
    _matmul(indptr, indices, values, wt, np.empty(0, wt.dtype) if bias is None else bias, y)
    return y


@njit(cache=True, parallel=True)
def _weight_grad_parts(indptr, indices, values, g, parts):
    m, n_out = g.shape
    n_parts = parts.shape[0]
    for p in prange(n_parts):
        acc = parts[p]
        for t in range(p * m // n_parts, (p + 1) * m // n_parts):
            for e in range(indptr[t], indptr[t + 1]):
                v, j = values[e], indices[e]
                for n in range(n_out):
                    acc[j, n] += v * g[t, n]


def event_weight_grad(indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, g: np.ndarray,
                      in_features: int) -> np.ndarray:
    """dWt [K, N] = x₂ᵀ g; same contract as the reference."""
    parts = np.zeros((PARTS, in_features, g.shape[1]), dtype=g.dtype)
    _weight_grad_parts(indptr, indices, values, g, parts)
    out = parts[0]
    for p in range(1, PARTS):
        out += parts[p]
    return out


@njit(cache=True, parallel=True)
def _conv_rows(indptr, indices, values, w_taps, bias, ph, pw, out):
    kh, kw, c_in, o_count = w_taps.shape
    n_img, _, ho, wo = out.shape
    h = ho + kh - 1 - 2 * ph
    for t in prange(n_img * ho):
        n, i = t // ho, t % ho
        acc = np.empty((wo, o_count), dtype=w_taps.dtype)   # y[n, :, i, :], channels last
        for j in range(wo):
            for o in range(o_count):
                acc[j, o] = bias[o]
        for p in range(kh):
            r = i + p - ph
            if r < 0 or r >= h:
                continue
            for c in range(c_in):
                row = (n * c_in + c) * h + r
                for e in range(indptr[row], indptr[row + 1]):
                    s, v = indices[e], values[e]
                    for q in range(kw):
                        j = s + pw - q
                        if 0 <= j < wo:
                            for o in range(o_count):
                                acc[j, o] += v * w_taps[p, q, c, o]
        if out.strides[1] < out.strides[3]:        # a channels-last out (ops/layout.py): whole pixels
            for j in range(wo):
                for o in range(o_count):
                    out[n, o, i, j] = acc[j, o]
        else:
            for o in range(o_count):
                for j in range(wo):
                    out[n, o, i, j] = acc[j, o]


def event_conv2d(indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, w_taps: np.ndarray,
                 bias: np.ndarray, ph: int, pw: int, out: np.ndarray) -> np.ndarray:
    """out [N, O, Ho, Wo] = conv2d(x, w, stride 1, padding (ph, pw)) + bias from the events of x's rows;
    same contract as the reference."""
    _conv_rows(indptr, indices, values, w_taps, bias, ph, pw, out)
    return out
