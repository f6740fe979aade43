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

The kernels find a family by its code in the surrogate table (`minisnn.kernels.surrogates`),
where `minisnn.spiking.surrogate.define` enters the built-ins and any family a user defines.
Here the built-ins run on the array versions below (`*_ARRAYS`, which `define` receives as
`on_arrays`); a family without array versions is evaluated element by element with its scalar
Python functions, on float64 numbers (or the array's dtype when it asked for `same_dtype`), its
missing derivatives as the float64 central differences of `surrogates.central_dx` / `central_da`.

Kernel contract (shared with `minisnn.kernels.jit.surrogate`): `x` is a float32/float64
array of any shape; `alpha` is an array of the same dtype with `alpha.size == 1` (one
slope for everything) or `alpha.shape == x.shape` (one slope per element); `kind` is the
code of a registered family (the built-ins' codes are below).  Results have x's shape and dtype.

The kernels of `spike()` itself (its forward, and these maps for one slope per token) are in
`reference.spike`.
"""
from __future__ import annotations

import numpy as np

from ..surrogates import SurrogateFunctions, central_da, central_dx, lookup

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


def _scaled_derivatives(unit_dp):
    """(∂p/∂x, ∂p/∂α) = (α·P'(αx), x·P'(αx)) of a family p(x; α) = P(αx) with unit derivative P'."""
    return (lambda x, a: a * unit_dp(a * x)), (lambda x, a: x * unit_dp(a * x))


def sigmoid_primitive(x, a):
    return _sigmoid_parts(a * x)[0]


def atan_primitive(x, a):
    dt = x.dtype.type
    return np.arctan(dt(np.pi / 2) * (a * x)) / dt(np.pi) + dt(0.5)


def triangle_primitive(x, a):
    dt = x.dtype.type
    yc = np.clip(a * x, dt(-1), dt(1))
    return np.where(yc < 0, dt(0.5) * (dt(1) + yc) ** 2, dt(1) - dt(0.5) * (dt(1) - yc) ** 2)


def rect_primitive(x, a):
    dt = x.dtype.type
    return np.clip(a * x + dt(0.5), dt(0), dt(1))


def fast_sigmoid_primitive(x, a):
    dt = x.dtype.type
    return dt(1) / a + x / (dt(1) + a * np.abs(x))


def fast_sigmoid_derivative(x, a):
    d = x.dtype.type(1) + a * np.abs(x)
    return x.dtype.type(1) / (d * d)


def fast_sigmoid_d_alpha(x, a):
    q = x / (x.dtype.type(1) + a * np.abs(x))  # |q| < 1/α: no overflow for huge x
    return -(x.dtype.type(1) / (a * a)) - q * np.abs(q)


# The array versions of the built-in families, (primitive, derivative, d_alpha) each f(x, α) with α a
# 0-d array or broadcastable to x: what `minisnn.spiking.surrogate` registers them with.
SIGMOID_ARRAYS = (sigmoid_primitive, *_scaled_derivatives(lambda y: _sigmoid_parts(y)[1]))
ATAN_ARRAYS = (atan_primitive, *_scaled_derivatives(_atan_dp))
TRIANGLE_ARRAYS = (triangle_primitive, *_scaled_derivatives(_triangle_dp))
RECT_ARRAYS = (rect_primitive, *_scaled_derivatives(_rect_dp))
FAST_SIGMOID_ARRAYS = (fast_sigmoid_primitive, fast_sigmoid_derivative, fast_sigmoid_d_alpha)


def _elementwise(fn, x: np.ndarray, a: np.ndarray, same_dtype: bool) -> np.ndarray:
    """fn(x_i, α_i) for every element, on NumPy scalars of x's dtype (same_dtype) or of float64."""
    work = x.dtype if same_dtype else np.dtype(np.float64)
    xs, as_ = np.broadcast_arrays(x.astype(work, copy=False), a.astype(work, copy=False))
    values = np.fromiter((fn(xi, ai) for xi, ai in zip(xs.flat, as_.flat)), dtype=work, count=xs.size)
    return values.reshape(xs.shape)


def _evaluate(which: int, x: np.ndarray, alpha: np.ndarray, kind: int) -> np.ndarray:
    """Function `which` (0 primitive, 1 ∂p/∂x, 2 ∂p/∂α) of family `kind` at x, in x's shape and dtype."""
    family = lookup(kind)
    a = _slope(x, alpha)
    if family.on_arrays is not None:
        out = family.on_arrays[which](x, a)
    else:
        out = _elementwise(scalar_function(family, which), x, a, family.same_dtype)
    return np.asarray(out).astype(x.dtype, copy=False)


def scalar_function(family: SurrogateFunctions, which: int):
    """The scalar f(x, a) that computes function `which` of a family: the one it was given, or the
    central difference of its primitive (`surrogates.central_dx` / `central_da`) in float64."""
    given = (family.primitive, family.derivative, family.d_alpha)[which]
    if given is not None:
        return given
    derive = central_dx if which == 1 else central_da
    return lambda x, a: derive(family.primitive, np.float64(x), np.float64(a))


def surrogate_primitive(x: np.ndarray, alpha: np.ndarray, kind: int) -> np.ndarray:
    """p(x; α), the smooth stand-in for H(x).  x: any shape; returns x's shape."""
    return _evaluate(0, x, alpha, kind)


def surrogate_derivative(x: np.ndarray, alpha: np.ndarray, kind: int) -> np.ndarray:
    """∂p/∂x (x; α).  x: any shape; returns x's shape."""
    return _evaluate(1, x, alpha, kind)


def surrogate_d_alpha(x: np.ndarray, alpha: np.ndarray, kind: int) -> np.ndarray:
    """∂p/∂α (x; α).  x: any shape; returns x's shape."""
    return _evaluate(2, x, alpha, kind)


def spike_backward(g: np.ndarray, x: np.ndarray, alpha: np.ndarray, kind: int, need_alpha: bool):
    """Backward of s = H(x) under the straight-through rule s ≈ p(x; α).

    g: dL/ds, x's shape.  Returns (g·∂p/∂x, g·∂p/∂α) — the second element-wise (x's
    shape; the caller sums it over broadcast axes) or an empty array when not needed.
    """
    gx = g * surrogate_derivative(x, alpha, kind)
    ga = g * surrogate_d_alpha(x, alpha, kind) if need_alpha else np.empty((0,), x.dtype)
    return gx, ga

