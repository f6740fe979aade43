"""Conv1d, Conv2d and MaxPool2d modules (PyTorch names, shapes, defaults and reprs).

Convolutions have groups = 1 and dilation = 1; padding is zeros.
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from . import init
from .layers import float_dtype
from .module import Module, Parameter


def _tuple(value, n: int, name: str) -> tuple[int, ...]:
    if isinstance(value, (int, np.integer)):
        return (int(value),) * n
    value = tuple(int(v) for v in value)
    if len(value) != n:
        raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {value}")
    return value


class _ConvNd(Module):
    """Shared parameters of Conv1d/Conv2d: weight [out, in, *kernel], bias [out] | None."""

    n_dims = 0

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, bias, dtype):
        super().__init__()
        dtype = float_dtype(dtype)
        n = self.n_dims
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _tuple(kernel_size, n, "kernel_size")
        self.stride = _tuple(stride, n, "stride")
        self.padding = _tuple(padding, n, "padding")
        if min(self.in_channels, self.out_channels, *self.kernel_size, *self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(
                f"{type(self).__name__}: channels, kernel_size and stride must be >= 1 and padding >= 0, got "
                f"{self.in_channels}, {self.out_channels}, {self.kernel_size}, {self.stride}, {self.padding}"
            )
        self.weight = Parameter(np.empty((self.out_channels, self.in_channels) + self.kernel_size, dtype=dtype))
        self.bias = Parameter(np.empty(self.out_channels, dtype=dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.default_layer_init_(self.weight, self.bias)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if any(self.padding):
            s += f", padding={self.padding}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv2d(_ConvNd):
    """2-D convolution;  x [N, in, H, W] → [N, out, Ho, Wo], Ho = ⌊(H + 2p − k)/s⌋ + 1."""

    n_dims = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 bias: bool = True, dtype=np.float32):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias, dtype)

    def forward(self, x, affine=None):
        """affine: (scale, shift) of a BatchNorm folded in (`F.conv2d`)."""
        return F.conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding, affine=affine)


class Conv1d(_ConvNd):
    """1-D convolution;  x [N, in, L] → [N, out, Lo], Lo = ⌊(L + 2p − k)/s⌋ + 1."""

    n_dims = 1

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 bias: bool = True, dtype=np.float32):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias, dtype)

    def forward(self, x, affine=None):
        """affine: (scale, shift) of a BatchNorm folded in (`F.conv1d`)."""
        return F.conv1d(x, self.weight, self.bias, stride=self.stride[0], padding=self.padding[0], affine=affine)


class MaxPool2d(Module):
    """Max over kernel windows;  x [N, C, H, W] → [N, C, Ho, Wo]; padding counts as −∞; floor mode."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation=1, ceil_mode=False")
