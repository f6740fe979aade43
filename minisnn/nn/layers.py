"""Linear, Identity and Dropout modules (PyTorch names, shapes, defaults and reprs)."""
from __future__ import annotations

import numpy as np

from .. import functional as F
from . import init
from .module import Module, Parameter


def float_dtype(dtype) -> np.dtype:
    """Validate a module's parameter dtype (float32 or float64)."""
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"layer dtype must be float32 or float64, got {dtype}")
    return dtype


class Linear(Module):
    """y = x Wᵀ + b;  x [..., in_features] → [..., out_features].

    weight [out, in] ~ kaiming_uniform(a=√5) = U(±1/√in), bias [out] ~ U(±1/√in).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=np.float32):
        super().__init__()
        dtype = float_dtype(dtype)
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = Parameter(np.empty((self.out_features, self.in_features), dtype=dtype))
        self.bias = Parameter(np.empty(self.out_features, dtype=dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.default_layer_init_(self.weight, self.bias)

    def forward(self, x, affine=None):
        """affine: (scale, shift) of a BatchNorm folded in (`F.linear`)."""
        return F.linear(x, self.weight, self.bias, affine=affine)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Identity(Module):
    """y = x (accepts and ignores constructor arguments, like PyTorch)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class Dropout(Module):
    """Inverted dropout with probability p in training mode; identity in eval mode.

    rng: optional np.random.Generator; default: the global generator (`nn.init.manual_seed`).
    """

    def __init__(self, p: float = 0.5, rng: np.random.Generator | None = None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: probability p must be in [0, 1], got {p}")
        self.p = float(p)
        self.rng = rng

    def forward(self, x):
        return F.dropout(x, self.p, training=self.training, rng=self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace=False"
