"""Surrogate gradients of the spike, NumPy reference.

A spike is the Heaviside step s = H(x) with x = u − θ (membrane minus threshold) and
H(0) = 1.  Its derivative is zero almost everywhere, so backward replaces it by the
derivative of a smooth *primitive* p(x; α) that approaches H as the slope α grows.
Every family here is written as p(x; α) and provides three element-wise maps:

    primitive(x, α)   = p(x; α)
    derivative(x, α)  = ∂p/∂x        (the surrogate gradient into the membrane)
    d_alpha(x, α)     = ∂p/∂α        (the gradient into a learnable slope)

Four families are scaled copies p(x; α) = P(α·x) of one unit step P (with ∫P' = 1):
then ∂p/∂x = α·P'(αx) and ∂p/∂α = x·P'(αx).

=================  ==================================  ==============================
kind               P(y)                                P'(y)
=================  ==================================  ==============================
SIGMOID (α=4)      σ(y) = 1 / (1 + e^(−y))             σ(y)·(1 − σ(y))
ATAN (α=2)         atan(π·y/2)/π + 1/2                 1 / (2·(1 + (π·y/2)²))
PIECEWISE_LINEAR   (1+y)²/2 on [−1,0], 1 − (1−y)²/2    max(0, 1 − |y|)   (a triangle)
                   on [0,1], 0 / 1 outside
RECTANGULAR        clip(y + 1/2, 0, 1)                 1 if |y| < 1/2 else 0
=================  ==================================  ==============================

FAST_SIGMOID is the snnTorch form, whose derivative is not normalised:

    ∂p/∂x = 1 / (1 + α|x|)²,   p(x; α) = 1/α + x / (1 + α|x|)   (p runs from 0 to 2/α),
    ∂p/∂α = −1/α² − q·|q|  with q = x / (1 + α|x|).

Sigmoid and ATan match SpikingJelly's `surrogate.Sigmoid` / `surrogate.ATan`.  The sigmoid
derivative is computed as e/(1+e)² with e = exp(−|αx|), which never overflows.

Kernel contract (shared with `minisnn.kernels.jit.surrogate`): `x` is a float32/float64
array of any shape; `alpha` is an array of the same dtype with `alpha.size == 1` (one
slope for everything) or `alpha.shape == x.shape` (one slope per element); `kind` is one
of the integer codes below.  Results have x's shape and dtype.

The kernels of `spike()` itself (its forward, and these maps for one slope per token) are in
`reference.spike`.
"""
from __future__ import annotations

import numpy as np

__all__ = ["surrogate_primitive", "surrogate_derivative", "surrogate_d_alpha", "spike_backward"]

SIGMOID = 0
ATAN = 1
PIECEWISE_LINEAR = 2
RECTANGULAR = 3
FAST_SIGMOID = 4
KIND_NAMES = {SIGMOID: "sigmoid", ATAN: "atan", PIECEWISE_LINEAR: "piecewise_linear",
              RECTANGULAR: "rectangular", FAST_SIGMOID: "fast_sigmoid"}


def _slope(x: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return alpha.reshape(()) if alpha.size == 1 else alpha


def _sigmoid_parts(y: np.ndarray):
    """(σ(y), σ(y)(1 − σ(y))) without overflow, via e = exp(−|y|)."""
    e = np.exp(-np.abs(y))
    one = y.dtype.type(1)
    sig = np.where(y >= 0, one / (one + e), e / (one + e))
    return sig, e / ((one + e) * (one + e))


def _atan_dp(y: np.ndarray) -> np.ndarray:
    half, c = y.dtype.type(0.5), y.dtype.type(np.pi / 2)
    z = c * y
    return half / (y.dtype.type(1) + z * z)


def _triangle_dp(y: np.ndarray) -> np.ndarray:
    return np.maximum(y.dtype.type(0), y.dtype.type(1) - np.abs(y))


def _rect_dp(y: np.ndarray) -> np.ndarray:
    return (np.abs(y) < y.dtype.type(0.5)).astype(y.dtype)


def surrogate_primitive(x: np.ndarray, alpha: np.ndarray, kind: int) -> np.ndarray:
    """p(x; α), the smooth stand-in for H(x).  x: any shape; returns x's shape."""
    a = _slope(x, alpha)
    dt = x.dtype.type
    if kind == FAST_SIGMOID:
        return (dt(1) / a + x / (dt(1) + a * np.abs(x))).astype(x.dtype, copy=False)
    y = a * x
    if kind == SIGMOID:
        return _sigmoid_parts(y)[0]
    if kind == ATAN:
        return np.arctan(dt(np.pi / 2) * y) / dt(np.pi) + dt(0.5)
    if kind == PIECEWISE_LINEAR:
        yc = np.clip(y, dt(-1), dt(1))
        return np.where(yc < 0, dt(0.5) * (dt(1) + yc) ** 2, dt(1) - dt(0.5) * (dt(1) - yc) ** 2)
    if kind == RECTANGULAR:
        return np.clip(y + dt(0.5), dt(0), dt(1))
    raise ValueError(f"unknown surrogate kind {kind!r}; expected one of {sorted(KIND_NAMES)}")


def _unit_dp(y: np.ndarray, kind: int) -> np.ndarray:
    """P'(y) of the four normalised families."""
    if kind == SIGMOID:
        return _sigmoid_parts(y)[1]
    if kind == ATAN:
        return _atan_dp(y)
    if kind == PIECEWISE_LINEAR:
        return _triangle_dp(y)
    if kind == RECTANGULAR:
        return _rect_dp(y)
    raise ValueError(f"unknown surrogate kind {kind!r}; expected one of {sorted(KIND_NAMES)}")


def surrogate_derivative(x: np.ndarray, alpha: np.ndarray, kind: int) -> np.ndarray:
    """∂p/∂x (x; α).  x: any shape; returns x's shape."""
    a = _slope(x, alpha)
    if kind == FAST_SIGMOID:
        d = x.dtype.type(1) + a * np.abs(x)
        return (x.dtype.type(1) / (d * d)).astype(x.dtype, copy=False)
    return (a * _unit_dp(a * x, kind)).astype(x.dtype, copy=False)


def surrogate_d_alpha(x: np.ndarray, alpha: np.ndarray, kind: int) -> np.ndarray:
    """∂p/∂α (x; α).  x: any shape; returns x's shape."""
    a = _slope(x, alpha)
    if kind == FAST_SIGMOID:
        q = x / (x.dtype.type(1) + a * np.abs(x))  # |q| < 1/α: no overflow for huge x
        return (-(x.dtype.type(1) / (a * a)) - q * np.abs(q)).astype(x.dtype, copy=False)
    return (x * _unit_dp(a * x, kind)).astype(x.dtype, copy=False)


def spike_backward(g: np.ndarray, x: np.ndarray, alpha: np.ndarray, kind: int, need_alpha: bool):
    """Backward of s = H(x) under the straight-through rule s ≈ p(x; α).

    g: dL/ds, x's shape.  Returns (g·∂p/∂x, g·∂p/∂α) — the second element-wise (x's
    shape; the caller sums it over broadcast axes) or an empty array when not needed.
    """
    gx = g * surrogate_derivative(x, alpha, kind)
    ga = g * surrogate_d_alpha(x, alpha, kind) if need_alpha else np.empty((0,), x.dtype)
    return gx, ga

