"""Inverted dropout: zero each element with probability p, scale the survivors by 1/(1 − p).

    y = x · m,   m = keep / (1 − p),   keep ~ Bernoulli(1 − p) element-wise,   dx = g · m

so E[y] = x and evaluation needs no rescaling (dropout is the identity there).
Randomness comes from an explicit `np.random.Generator` or, when none is given,
from this module's generator (reseed it with `manual_seed`).
"""
from __future__ import annotations

import numpy as np

from ..autograd.function import Function

_generator = np.random.default_rng()


def manual_seed(seed) -> None:
    """Reseed the default dropout generator (any seed `np.random.default_rng` accepts)."""
    global _generator
    _generator = np.random.default_rng(seed)


def default_generator() -> np.random.Generator:
    return _generator


def check_probability(p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability p must be in [0, 1], got {p}")


def check_input(x) -> None:
    if x.dtype.kind != "f":
        raise TypeError(f"dropout: expected a floating-point input, got dtype {x.dtype}")


class Dropout(Function):
    """y = x · keep / (1 − p) with keep ~ Bernoulli(1 − p);  any float x, p in [0, 1] (checked by the wrapper)."""

    @staticmethod
    def forward(ctx, x, p=0.5, rng=None):
        rng = _generator if rng is None else rng
        if p == 1.0:
            mask = np.zeros_like(x)
        else:
            keep = rng.random(x.shape, dtype=x.dtype if x.dtype in (np.float32, np.float64) else np.float64) >= p
            mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))
        ctx.mask = mask
        return x * mask

    @staticmethod
    def backward(ctx, g):
        return g * ctx.mask
