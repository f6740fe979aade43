"""2-D max pooling (floor mode, padding counts as −∞), exactly as PyTorch.

    y[n, c, i, j] = max_{p<kh, q<kw} x_pad[n, c, i·sh + p, j·sw + q]

The forward kernel also records, for every output, the flat position r·W + c in its input
plane that won (ties keep the first position in row-major order, NaN wins: PyTorch's rule);
the backward kernel adds each output gradient at that position (windows overlap when
stride < kernel, so contributions add up).  Kernels: `kernels.max_pool2d_forward/backward`
(NumPy reference in `kernels/reference/pool.py`, Numba version in `kernels/jit/pool.py`); a
forward that records no graph keeps no positions (`kernels.max_pool2d_values`).
"""
from __future__ import annotations

import numpy as np

from .. import kernels
from ..autograd import grad_mode
from ..autograd.function import Function
from . import layout


def _pair(value, name: str) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    value = tuple(int(v) for v in value)
    if len(value) != 2:
        raise ValueError(f"max_pool2d: {name} must be an int or a pair of ints, got {value}")
    return value


def check_max_pool2d(x, kernel_size, stride, padding):
    """((kh, kw), (sh, sw), (ph, pw)) from ints or pairs (stride None: the kernel); checks they fit x [N, C, H, W]."""
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
    h, w = x.shape[2:]
    if (h + 2 * ph - kh) // sh + 1 < 1 or (w + 2 * pw - kw) // sw + 1 < 1:
        raise ValueError(f"max_pool2d: kernel {(kh, kw)} does not fit the padded input {(h + 2 * ph, w + 2 * pw)}")
    return (kh, kw), (sh, sw), (ph, pw)


class MaxPool2d(Function):
    """y = max over kh×kw windows;  x [N, C, H, W] → [N, C, Ho, Wo], Ho = ⌊(H + 2p − kh)/sh⌋ + 1.

    kernel_size, stride, padding: the pairs `check_max_pool2d` returns.
    """

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding):
        (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
        h, w = x.shape[2:]
        if not (grad_mode.is_grad_enabled() and ctx.needs_input_grad[0]):
            x_last = layout.channels_last_only(x)
            if x_last is not None:   # keeps a channels-last image so (ops/layout.py)
                return layout.as_images(kernels.max_pool2d_values_channels_last(x_last, kh, kw, sh, sw, ph, pw))
            return kernels.max_pool2d_values(np.ascontiguousarray(x), kh, kw, sh, sw, ph, pw)
        y, index = kernels.max_pool2d_forward(np.ascontiguousarray(x), kh, kw, sh, sw, ph, pw)
        ctx.index = index
        ctx.size = (h, w)
        return y

    @staticmethod
    def backward(ctx, g):
        return kernels.max_pool2d_backward(np.ascontiguousarray(g), ctx.index, *ctx.size)
