"""im2col / col2im and the layout swap for convolution, NumPy reference (the specification of `jit.conv`).

Channels-last, pixel-major ("rows") layout: the images come as x [m, H, W, C], and there is
one row per output pixel and one column per (tap, channel),

    cols[(n·Ho + i)·Wo + j, (p·kw + q)·C + c] = x[n, i·sh + p − ph, j·sw + q − pw, c]   (0 outside x)

so a convolution is one GEMM with pixels as the long dimension, y_rows = cols @ W₂ᵀ with
W₂ = W [O, C, kh, kw] permuted to [O, kh, kw, C].  Each (row, tap) is a copy of C
contiguous numbers.  `col2im_rows` is the adjoint: every entry of dcols is added back onto
the pixel it was copied from (overlapping windows sum), taps that fell into the padding are
dropped.  Derivation and measurements: `ops/conv.md`.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["im2col_rows", "col2im_rows", "swap_last_axes"]


def im2col_rows(x, kh, kw, sh, sw, ph, pw, out):
    """x [m, H, W, C] -> out [m·Ho·Wo, kh·kw·C] (written in place and returned), zero padding fused."""
    m, c = x.shape[0], x.shape[3]
    x_pad = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    windows = sliding_window_view(x_pad, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]  # [m, Ho, Wo, C, kh, kw]
    ho, wo = windows.shape[1], windows.shape[2]
    out[...] = windows.transpose(0, 1, 2, 4, 5, 3).reshape(m * ho * wo, kh * kw * c)
    return out


def col2im_rows(dcols, kh, kw, sh, sw, ph, pw, dx):
    """dcols [m·Ho·Wo, kh·kw·C] -> dx [m, H, W, C] (overwritten and returned): the adjoint of im2col_rows."""
    m, h, w, c = dx.shape
    ho = (h + 2 * ph - kh) // sh + 1
    wo = (w + 2 * pw - kw) // sw + 1
    d = dcols.reshape(m, ho, wo, kh, kw, c)
    dx_pad = np.zeros((m, h + 2 * ph, w + 2 * pw, c), dtype=dx.dtype)
    for p in range(kh):
        for q in range(kw):
            dx_pad[:, p:p + sh * (ho - 1) + 1:sh, q:q + sw * (wo - 1) + 1:sw] += d[:, :, :, p, q]
    dx[...] = dx_pad[:, ph:ph + h, pw:pw + w]
    return dx


def swap_last_axes(a, out):
    """a [m, A, B] -> out [m, B, A] (written in place and returned): out[n, j, i] = a[n, i, j].

    Moves a chunk between the channels-first layout of the layers ([m, C, H·W]) and the
    channels-last / pixel-major layout of the GEMMs ([m, H·W, C]), in either direction.
    """
    out[...] = a.transpose(0, 2, 1)
    return out
