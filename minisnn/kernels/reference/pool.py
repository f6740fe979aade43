"""2-D max-pooling kernels, NumPy reference (the specification of `kernels/jit/pool.py`).

Floor mode, padding counts as −∞, exactly as PyTorch:

    y[n, c, i, j] = max_{p<kh, q<kw} x_pad[n, c, i·sh + p, j·sw + q]

Each output also records where its maximum came from, as a flat index r·W + c into its own
input plane x[n, c] (PyTorch's `return_indices` convention).  The rule for choosing it is
PyTorch's: visit the window in row-major order, start from −∞ at the first in-bounds position,
and move to a value that is strictly larger, or NaN.  So ties keep the first position, and a
window holding NaN reports its last NaN.  The backward pass adds each output gradient onto the
input position its index names (windows overlap when stride < kernel, so contributions add up).
"""
from __future__ import annotations

import numpy as np

__all__ = ["max_pool2d_forward", "max_pool2d_values", "max_pool2d_values_channels_last", "max_pool2d_backward"]


def _window_starts(out: int, stride: int, pad: int) -> np.ndarray:
    """Input coordinate of kernel offset 0 for each of the `out` windows along one axis (may be < 0)."""
    return np.arange(out) * stride - pad


def max_pool2d_forward(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, ph: int, pw: int):
    """x [N, C, H, W] → (y [N, C, Ho, Wo], index int32 [N, C, Ho, Wo]) with Ho = ⌊(H + 2ph − kh)/sh⌋ + 1.

    Requires 0 <= ph <= kh/2 and 0 <= pw <= kw/2 (every window then holds an input value).
    """
    n, c, h, w = x.shape
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    rows0 = _window_starts(ho, sh, ph)[:, None]  # [Ho, 1]
    cols0 = _window_starts(wo, sw, pw)[None, :]  # [1, Wo]
    # padded copy: a window view per kernel offset covers every window at once
    x_pad = np.full((n, c, h + 2 * ph, w + 2 * pw), -np.inf, dtype=x.dtype)
    x_pad[:, :, ph:ph + h, pw:pw + w] = x
    y = np.full((n, c, ho, wo), -np.inf, dtype=x.dtype)
    first = np.maximum(rows0, 0) * w + np.maximum(cols0, 0)  # first in-bounds position of each window
    index = np.broadcast_to(first, y.shape).astype(np.int32)
    take = np.empty(y.shape, dtype=bool)
    for p in range(kh):
        for q in range(kw):
            v = x_pad[:, :, p:p + sh * (ho - 1) + 1:sh, q:q + sw * (wo - 1) + 1:sw]
            np.greater(v, y, out=take)
            take |= np.isnan(v)
            np.copyto(y, v, where=take)
            position = np.broadcast_to((rows0 + p) * w + (cols0 + q), y.shape)
            np.copyto(index, position, where=take, casting="unsafe")
    return y, index


def max_pool2d_values(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, ph: int, pw: int) -> np.ndarray:
    """y of `max_pool2d_forward`, without the positions (what a forward that records no graph needs):
    the maximum of each window, NaN where the window holds one."""
    return max_pool2d_forward(x, kh, kw, sh, sw, ph, pw)[0]


def max_pool2d_values_channels_last(x_last: np.ndarray, kh: int, kw: int, sh: int, sw: int, ph: int,
                                    pw: int) -> np.ndarray:
    """`max_pool2d_values` for channels-last images: x_last [N, H, W, C] → y_last [N, Ho, Wo, C]."""
    y = max_pool2d_values(np.ascontiguousarray(x_last.transpose(0, 3, 1, 2)), kh, kw, sh, sw, ph, pw)
    return np.ascontiguousarray(y.transpose(0, 2, 3, 1))


def max_pool2d_backward(g: np.ndarray, index: np.ndarray, h: int, w: int) -> np.ndarray:
    """dx [N, C, H, W]: each g[n, c, i, j] added at position index[n, c, i, j] of plane x[n, c].

    g, index [N, C, Ho, Wo] (index from `max_pool2d_forward`).  Sums are formed in float64.
    """
    n, c = g.shape[:2]
    planes = n * c
    flat = index.reshape(planes, -1) + (np.arange(planes, dtype=np.int64) * (h * w))[:, None]
    dx = np.bincount(flat.ravel(), weights=g.reshape(-1), minlength=planes * h * w)
    return dx.astype(g.dtype).reshape(n, c, h, w)
