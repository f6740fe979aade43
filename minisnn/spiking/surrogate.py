"""Surrogate-gradient families: named objects around the `surrogate_*` kernels.

    from minisnn.spiking import surrogate
    sg = surrogate.Sigmoid(alpha=4.0)
    sg.primitive(x)            # p(x; α), the smooth stand-in for the step H(x)
    sg.derivative(x)           # ∂p/∂x: what backward uses in place of dH/dx
    sg.d_alpha(x, alpha=2.0)   # ∂p/∂α: the gradient into a learnable slope

Every family is a smooth step p(x; α) of slope α (the formulas are in
`minisnn/kernels/reference/surrogate.py`):

* `Sigmoid(alpha=4.0)`         p = σ(αx)                  (SpikingJelly `Sigmoid`)
* `ATan(alpha=2.0)`            p = atan(π/2·αx)/π + 1/2   (SpikingJelly `ATan`)
* `PiecewiseLinear(alpha=1.0)` triangle derivative α·max(0, 1 − α|x|)
* `Rectangular(alpha=1.0)`     box derivative α on |x| < 1/(2α)
* `FastSigmoid(alpha=25.0)`    snnTorch form: derivative 1/(1 + α|x|)²

The methods take arrays (`x` any shape; `alpha` a number or an array broadcastable to
x) and return arrays of x's float dtype; they are not differentiable Tensor ops.
"""
from __future__ import annotations

import math

import numpy as np

from .. import kernels
from ..kernels.reference import surrogate as _codes


class Surrogate:
    """A surrogate family with a default slope `alpha` (> 0)."""

    kind: int = -1
    name: str = ""
    default_alpha: float = 1.0

    def __init__(self, alpha: float | None = None):
        self.alpha = check_slope_value(self.default_alpha if alpha is None else alpha)

    def _arrays(self, x, alpha):
        x = np.asarray(x)
        if x.dtype.kind != "f":
            x = x.astype(np.float64)
        a = np.asarray(self.alpha if alpha is None else alpha, dtype=x.dtype)
        if a.size != 1:
            try:
                shape = np.broadcast_shapes(a.shape, x.shape)
            except ValueError:
                raise ValueError(f"alpha of shape {a.shape} does not broadcast to x of shape {x.shape}") from None
            x = np.broadcast_to(x, shape)
            a = np.broadcast_to(a, shape)
        check_slope_array(a)
        return np.ascontiguousarray(x), np.ascontiguousarray(a)

    def primitive(self, x, alpha=None) -> np.ndarray:
        """p(x; α).  alpha defaults to self.alpha."""
        x, a = self._arrays(x, alpha)
        return kernels.surrogate_primitive(x, a, self.kind)

    def derivative(self, x, alpha=None) -> np.ndarray:
        """∂p/∂x (x; α)."""
        x, a = self._arrays(x, alpha)
        return kernels.surrogate_derivative(x, a, self.kind)

    def d_alpha(self, x, alpha=None) -> np.ndarray:
        """∂p/∂α (x; α)."""
        x, a = self._arrays(x, alpha)
        return kernels.surrogate_d_alpha(x, a, self.kind)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(alpha={self.alpha})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.alpha == other.alpha

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.alpha))


class Sigmoid(Surrogate):
    """p = σ(αx);  ∂p/∂x = α·σ(αx)(1 − σ(αx));  ∂p/∂α = x·σ(αx)(1 − σ(αx))."""

    kind, name, default_alpha = _codes.SIGMOID, "sigmoid", 4.0


class ATan(Surrogate):
    """p = atan(π/2·αx)/π + 1/2;  ∂p/∂x = α / (2(1 + (π/2·αx)²));  ∂p/∂α = x / (2(1 + (π/2·αx)²))."""

    kind, name, default_alpha = _codes.ATAN, "atan", 2.0


class PiecewiseLinear(Surrogate):
    """Triangle: ∂p/∂x = α·max(0, 1 − α|x|);  p piecewise quadratic from 0 to 1;  ∂p/∂α = x·max(0, 1 − α|x|)."""

    kind, name, default_alpha = _codes.PIECEWISE_LINEAR, "piecewise_linear", 1.0


class Rectangular(Surrogate):
    """Box: ∂p/∂x = α on |αx| < 1/2 (0 outside);  p = clip(αx + 1/2, 0, 1);  ∂p/∂α = x on the box."""

    kind, name, default_alpha = _codes.RECTANGULAR, "rectangular", 1.0


class FastSigmoid(Surrogate):
    """snnTorch form: ∂p/∂x = 1/(1 + α|x|)²;  p = 1/α + x/(1 + α|x|) (0 to 2/α);
    ∂p/∂α = −1/α² − q|q| with q = x/(1 + α|x|)."""

    kind, name, default_alpha = _codes.FAST_SIGMOID, "fast_sigmoid", 25.0


_BY_NAME = {cls.name: cls for cls in (Sigmoid, ATan, PiecewiseLinear, Rectangular, FastSigmoid)}
_BY_NAME.update({"triangle": PiecewiseLinear, "rect": Rectangular})


def get(spec) -> Surrogate:
    """A Surrogate from an instance (returned as is) or a name ('sigmoid', 'atan', ...)."""
    if isinstance(spec, Surrogate):
        return spec
    if isinstance(spec, str) and spec.lower() in _BY_NAME:
        return _BY_NAME[spec.lower()]()
    if isinstance(spec, type) and issubclass(spec, Surrogate):
        return spec()
    names = ", ".join(sorted(_BY_NAME))
    raise ValueError(f"unknown surrogate {spec!r}; expected a Surrogate instance or one of: {names}")


def check_slope_value(alpha) -> float:
    """A scalar slope as float; raises ValueError unless finite and > 0."""
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        raise TypeError(f"surrogate slope alpha must be a number, got {type(alpha).__name__}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"surrogate slope alpha must be finite and > 0, got {value}")
    return value


def check_slope_array(alpha: np.ndarray) -> None:
    """Raise ValueError unless every slope is finite and > 0."""
    if alpha.size and not (np.all(np.isfinite(alpha)) and np.all(alpha > 0)):
        bad = alpha[~(np.isfinite(alpha) & (alpha > 0))].reshape(-1)[0]
        raise ValueError(f"surrogate slopes must be finite and > 0, found {bad}")


__all__ = ["Surrogate", "Sigmoid", "ATan", "PiecewiseLinear", "Rectangular", "FastSigmoid", "get",
           "check_slope_value", "check_slope_array"]
