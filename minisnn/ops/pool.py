"""2-D max pooling (floor mode, padding counts as −∞), exactly as PyTorch.

    y[n, c, i, j] = max_{p<kh, q<kw} x_pad[n, c, i·sh + p, j·sw + q]

The forward pass walks the kh·kw kernel offsets; each offset is one strided view
of the padded input covering every window at once.  A value replaces the running
maximum only when it is strictly larger (or NaN), so ties keep the first offset
in row-major order — PyTorch's rule.  The winning offset per window is stored, and
the backward pass routes each gradient to it: one strided add per offset of the
gradients whose window chose that offset (windows overlap when stride < kernel,
so contributions add up).

Speed: the work happens in a channels-last copy [N, Hp, Wp, C] of the padded input.
A window view is then [N, Ho, Wo, C] with the C channels contiguous innermost, so
NumPy's inner loops run over long contiguous vectors instead of short strided rows.
"""
from __future__ import annotations

import numpy as np

from ..autograd.function import Function


def _pair(value, name: str) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    value = tuple(int(v) for v in value)
    if len(value) != 2:
        raise ValueError(f"max_pool2d: {name} must be an int or a pair of ints, got {value}")
    return value


def _window(a: np.ndarray, offset: int, kw: int, sh: int, sw: int, ho: int, wo: int) -> np.ndarray:
    """View of the padded channels-last array a [N, Hp, Wp, C] at kernel offset (p, q) = divmod(offset, kw):
    element [n, i, j, c] is a[n, i·sh + p, j·sw + q, c]."""
    p, q = divmod(offset, kw)
    return a[:, p:p + sh * (ho - 1) + 1:sh, q:q + sw * (wo - 1) + 1:sw]


class MaxPool2d(Function):
    """y = max over kh×kw windows;  x [N, C, H, W] → [N, C, Ho, Wo], Ho = ⌊(H + 2p − kh)/sh⌋ + 1."""

    @staticmethod
    def forward(ctx, x, kernel_size=2, stride=None, padding=0):
        kh, kw = _pair(kernel_size, "kernel_size")
        sh, sw = _pair(kernel_size if stride is None else stride, "stride")
        ph, pw = _pair(padding, "padding")
        if x.ndim != 4:
            raise ValueError(f"max_pool2d: expected input of shape [N, C, H, W], got shape {x.shape}")
        if min(kh, kw, sh, sw) < 1:
            raise ValueError(f"max_pool2d: kernel_size and stride must be >= 1, got {(kh, kw)} and {(sh, sw)}")
        if not (0 <= ph <= kh // 2 and 0 <= pw <= kw // 2):
            raise ValueError(f"max_pool2d: padding {(ph, pw)} must be between 0 and half the kernel {(kh, kw)}")
        if x.dtype.kind != "f":
            raise TypeError(f"max_pool2d: expected a floating-point input, got dtype {x.dtype}")
        n, c, h, w = x.shape
        ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        if ho < 1 or wo < 1:
            raise ValueError(f"max_pool2d: kernel {(kh, kw)} does not fit the padded input {(h + 2 * ph, w + 2 * pw)}")
        x_pad = np.full((n, h + 2 * ph, w + 2 * pw, c), -np.inf, dtype=x.dtype)  # channels last
        x_pad[:, ph:ph + h, pw:pw + w] = x.transpose(0, 2, 3, 1)
        y = _window(x_pad, 0, kw, sh, sw, ho, wo).copy()
        argmax = np.zeros(y.shape, dtype=np.int16 if kh * kw > 127 else np.int8)
        take = np.empty(y.shape, dtype=bool)
        for offset in range(1, kh * kw):
            v = _window(x_pad, offset, kw, sh, sw, ho, wo)
            np.greater(v, y, out=take)
            take |= np.isnan(v)
            np.maximum(y, v, out=y)  # = v where take (NaN wins, as in PyTorch), else y
            # offsets grow, so "argmax = offset where take" is a running maximum
            np.maximum(argmax, take.view(np.int8) * argmax.dtype.type(offset), out=argmax)
        ctx.argmax = argmax
        ctx.geometry = (x.shape, x.dtype, kh, kw, sh, sw, ph, pw)
        return np.ascontiguousarray(y.transpose(0, 3, 1, 2))

    @staticmethod
    def backward(ctx, g):
        (n, c, h, w), dtype, kh, kw, sh, sw, ph, pw = ctx.geometry
        ho, wo = g.shape[2:]
        g_last = np.ascontiguousarray(g.transpose(0, 2, 3, 1))
        dx_pad = np.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=dtype)
        chosen = np.empty(g_last.shape, dtype=bool)
        routed = np.empty(g_last.shape, dtype=dtype)
        for offset in range(kh * kw):
            np.equal(ctx.argmax, offset, out=chosen)
            np.multiply(g_last, chosen, out=routed)
            _window(dx_pad, offset, kw, sh, sw, ho, wo)[...] += routed
        return np.ascontiguousarray(dx_pad[:, ph:ph + h, pw:pw + w].transpose(0, 3, 1, 2))
