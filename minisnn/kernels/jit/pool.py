"""2-D max-pooling kernels, Numba version of `reference.pool` (same names, signatures, results).

The N·C input planes are independent.  The forward scans them LANES (16) at a time: a block of
planes is first copied with the plane index innermost (a few tens of KiB, cache-resident), so the
same window of all 16 planes is one vector of values, and every window is scanned with selects over
that vector (the scan of one plane alone is a short, branchy scalar loop: 2.3x slower on
`bench/bench_layers.py`'s max_pool2d row).  Blocks run in parallel (`prange`).  Each window is
visited in row-major order with PyTorch's update rule (strictly larger, or NaN), so values and
indices agree exactly with the reference.  The backward pass zeroes one gradient plane and adds
every output gradient at its recorded index; a plane belongs to one thread, so there are no write
conflicts.

`max_pool2d_values`, for forwards that record no graph, keeps no positions and so needs no order of
visits: for each output row, the window's input rows are first reduced to one (a contiguous loop over
the columns, vectorised), whose windows then give the row's outputs; with stride 2, half the rows of
scalar window scans that reducing each input row first needed. NaN propagates as in the forward
(`_max_or_nan`). `python bench/bench_layers.py --threads 1 --only max_pool2d` ("fwd" runs without a
graph), [32, 192, 32, 32], kernel 3, stride 2, one thread of an AMD EPYC (Zen 4): 6.96 ms median,
against 12.32 ms reducing each input row first and 48.2 ms in PyTorch.
`max_pool2d_values_channels_last` takes channels-last images (`ops/layout.py`): every window is scanned
over whole pixels, the loop over their contiguous channels vectorised; output rows run in parallel.
No `fastmath`: the NaN test must stay.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["max_pool2d_forward", "max_pool2d_values", "max_pool2d_values_channels_last", "max_pool2d_backward"]


LANES = 16  # planes scanned together, one per vector lane


@njit(inline="always")
def _window(out_index, stride, pad, kernel, size):
    """[lo, hi): the inputs along one axis that output `out_index`'s window covers, clipped to the input."""
    start = out_index * stride - pad
    return max(start, 0), min(start + kernel, size)


@njit(cache=True, parallel=True)
def _forward_planes(x, kh, kw, sh, sw, ph, pw, y, index):
    planes, h, w = x.shape
    ho, wo = y.shape[1], y.shape[2]
    for block in prange((planes + LANES - 1) // LANES):
        p0 = block * LANES
        n = min(LANES, planes - p0)
        lanes = np.empty((h, w, LANES), dtype=x.dtype)      # the block's planes, plane index innermost
        best = np.empty(LANES, dtype=x.dtype)
        at = np.empty(LANES, dtype=np.int32)
        for r in range(h):
            for c in range(w):
                for lane in range(n):
                    lanes[r, c, lane] = x[p0 + lane, r, c]
        for i in range(ho):
            r_lo, r_hi = _window(i, sh, ph, kh, h)
            for j in range(wo):
                c_lo, c_hi = _window(j, sw, pw, kw, w)
                for lane in range(n):
                    best[lane] = -np.inf
                    at[lane] = r_lo * w + c_lo
                for r in range(r_lo, r_hi):
                    for c in range(c_lo, c_hi):
                        for lane in range(n):            # one window of every plane: selects, vectorised
                            v = lanes[r, c, lane]
                            take = (v > best[lane]) | (v != v)
                            best[lane] = v if take else best[lane]
                            at[lane] = r * w + c if take else at[lane]
                for lane in range(n):
                    y[p0 + lane, i, j] = best[lane]
                    index[p0 + lane, i, j] = at[lane]


@njit(inline="always")
def _max_or_nan(a, b):
    """max(a, b), NaN if either is NaN (the value the forward's visiting rule ends on)."""
    return a if (a >= b) | (a != a) else b


@njit(cache=True, parallel=True)
def _values_planes(x, kh, kw, sh, sw, ph, pw, y):
    planes, h, w = x.shape
    ho, wo = y.shape[1], y.shape[2]
    for p in prange(planes):
        col_max = np.empty(w, dtype=x.dtype)      # the window rows of output row i, reduced column by column
        for i in range(ho):
            r_lo, r_hi = _window(i, sh, ph, kh, h)
            for c in range(w):
                col_max[c] = x[p, r_lo, c]
            for r in range(r_lo + 1, r_hi):
                for c in range(w):                  # contiguous: vectorised
                    col_max[c] = _max_or_nan(col_max[c], x[p, r, c])
            for j in range(wo):
                c_lo, c_hi = _window(j, sw, pw, kw, w)
                m = col_max[c_lo]
                for c in range(c_lo + 1, c_hi):
                    m = _max_or_nan(m, col_max[c])
                y[p, i, j] = m


@njit(cache=True, parallel=True)
def _values_channels_last(x, kh, kw, sh, sw, ph, pw, y):
    n_img, h, w, channels = x.shape
    ho, wo = y.shape[1], y.shape[2]
    for t in prange(n_img * ho):
        n, i = t // ho, t % ho
        r_lo, r_hi = _window(i, sh, ph, kh, h)
        for j in range(wo):
            c_lo, c_hi = _window(j, sw, pw, kw, w)
            for ch in range(channels):
                y[n, i, j, ch] = x[n, r_lo, c_lo, ch]
            for r in range(r_lo, r_hi):
                for c in range(c_lo, c_hi):
                    for ch in range(channels):          # contiguous: vectorised
                        y[n, i, j, ch] = _max_or_nan(y[n, i, j, ch], x[n, r, c, ch])


@njit(cache=True, parallel=True)
def _backward_planes(g, index, dx):
    planes, hw = dx.shape
    per_plane = g.shape[1]
    for pl in prange(planes):
        for k in range(hw):
            dx[pl, k] = 0
        for k in range(per_plane):
            dx[pl, index[pl, k]] += g[pl, k]


def max_pool2d_forward(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, ph: int, pw: int):
    """x [N, C, H, W] → (y [N, C, Ho, Wo], index int32 [N, C, Ho, Wo]) with Ho = ⌊(H + 2ph − kh)/sh⌋ + 1.

    Requires 0 <= ph <= kh/2 and 0 <= pw <= kw/2 (every window then holds an input value).
    """
    n, c, h, w = x.shape
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    y = np.empty((n, c, ho, wo), dtype=x.dtype)
    index = np.empty((n, c, ho, wo), dtype=np.int32)
    _forward_planes(np.ascontiguousarray(x).reshape(n * c, h, w), kh, kw, sh, sw, ph, pw,
                    y.reshape(n * c, ho, wo), index.reshape(n * c, ho, wo))
    return y, index


def max_pool2d_values(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, ph: int, pw: int) -> np.ndarray:
    """y of `max_pool2d_forward`, without the positions: the maximum of each window, NaN where it holds one."""
    n, c, h, w = x.shape
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    y = np.empty((n, c, ho, wo), dtype=x.dtype)
    _values_planes(np.ascontiguousarray(x).reshape(n * c, h, w), kh, kw, sh, sw, ph, pw, y.reshape(n * c, ho, wo))
    return y


def max_pool2d_values_channels_last(x_last: np.ndarray, kh: int, kw: int, sh: int, sw: int, ph: int,
                                    pw: int) -> np.ndarray:
    """`max_pool2d_values` for channels-last images: x_last [N, H, W, C] → y_last [N, Ho, Wo, C]."""
    n, h, w, c = x_last.shape
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    y = np.empty((n, ho, wo, c), dtype=x_last.dtype)
    _values_channels_last(np.ascontiguousarray(x_last), kh, kw, sh, sw, ph, pw, y)
    return y


def max_pool2d_backward(g: np.ndarray, index: np.ndarray, h: int, w: int) -> np.ndarray:
    """dx [N, C, H, W]: each g[n, c, i, j] added at position index[n, c, i, j] of plane x[n, c].

    g, index [N, C, Ho, Wo] (index from `max_pool2d_forward`).
    """
    n, c = g.shape[:2]
    dx = np.empty((n, c, h, w), dtype=g.dtype)
    _backward_planes(np.ascontiguousarray(g).reshape(n * c, -1), index.reshape(n * c, -1), dx.reshape(n * c, h * w))
    return dx
