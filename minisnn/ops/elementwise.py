"""Element-wise Functions with NumPy broadcasting.

Binary ops broadcast their inputs; backward sums each gradient back to its
input's shape with `unbroadcast`.  Each docstring gives the local derivative.
"""
from __future__ import annotations

import numpy as np
from scipy import special

from .. import kernels
from ..autograd.broadcast import unbroadcast
from ..autograd.function import Function
from . import layout


class Add(Function):
    """y = a + b;  dy/da = 1, dy/db = 1."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (a.shape, b.shape)
        if a.shape == b.shape and (layout.moved_axis(a) is not None) != (layout.moved_axis(b) is not None):
            a, b = layout.contiguous(a), layout.contiguous(b)   # a channels-last image plus another layout
        return a + b

    @staticmethod
    def backward(ctx, g):
        sa, sb = ctx.shapes
        return unbroadcast(g, sa), unbroadcast(g, sb)


class Sub(Function):
    """y = a − b;  dy/da = 1, dy/db = −1."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (a.shape, b.shape)
        return a - b

    @staticmethod
    def backward(ctx, g):
        sa, sb = ctx.shapes
        return unbroadcast(g, sa), unbroadcast(-g, sb)


class Mul(Function):
    """y = a · b;  dy/da = b, dy/db = a."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        ga = unbroadcast(g * b, a.shape) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(g * a, b.shape) if ctx.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    """y = a / b;  dy/da = 1/b, dy/db = −a/b²."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        ga = unbroadcast(g / b, a.shape) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(-g * a / (b * b), b.shape) if ctx.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    """y = −x."""

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, g):
        return -g


class Pow(Function):
    """y = x^p for a constant exponent p;  dy/dx = p·x^(p−1)."""

    @staticmethod
    def forward(ctx, x, p):
        ctx.save_for_backward(x)
        ctx.p = p
        return np.power(x, p)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        p = ctx.p
        if p == 0:  # x**0 == 1 everywhere, even at x = 0 where x**(p-1) is inf
            return np.zeros_like(g), None
        return g * p * np.power(x, p - 1), None


class PowTensor(Function):
    """y = a^b with both inputs differentiable;  dy/da = b·a^(b−1), dy/db = a^b·ln a.

    Where b == 0 the a-gradient is 0 (a^0 is constant); where a <= 0 the
    b-gradient is taken as 0 (ln a is undefined there).
    """

    @staticmethod
    def forward(ctx, a, b):
        y = np.power(a, b)
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx, g):
        a, b, y = ctx.saved_tensors
        ga = None
        if ctx.needs_input_grad[0]:
            with np.errstate(divide="ignore", invalid="ignore"):
                local = np.where(b == 0, 0, b * np.power(a, b - 1)).astype(g.dtype, copy=False)
            ga = unbroadcast(g * local, a.shape)
        gb = None
        if ctx.needs_input_grad[1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                gb = unbroadcast(np.where(a > 0, g * y * np.log(np.where(a > 0, a, 1)), 0), b.shape)
        return ga, gb


class Exp(Function):
    """y = eˣ;  dy/dx = y."""

    @staticmethod
    def forward(ctx, x):
        y = np.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y


class Log(Function):
    """y = ln x;  dy/dx = 1/x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / x


class Sqrt(Function):
    """y = √x;  dy/dx = 1/(2y)."""

    @staticmethod
    def forward(ctx, x):
        y = np.sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g / (2 * y)


class Tanh(Function):
    """y = tanh x;  dy/dx = 1 − y²."""

    @staticmethod
    def forward(ctx, x):
        y = np.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * (1 - y * y)


class Sigmoid(Function):
    """y = 1/(1+e^−x) (computed as expit, no overflow);  dy/dx = y(1 − y)."""

    @staticmethod
    def forward(ctx, x):
        y = special.expit(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y * (1 - y)


class Relu(Function):
    """y = max(x, 0);  dy/dx = 1[x > 0]."""

    @staticmethod
    def forward(ctx, x):
        mask = x > 0
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, g):
        (mask,) = ctx.saved_tensors
        return g * mask


_SQRT1_2 = 0.7071067811865476
_INV_SQRT_2PI = 0.3989422804014327


class Gelu(Function):
    """y = x·Φ(x) (exact erf form, as torch's default);  dy/dx = Φ(x) + x·φ(x)."""

    @staticmethod
    def forward(ctx, x):
        cdf = 0.5 * (1.0 + special.erf(x * _SQRT1_2))
        ctx.save_for_backward(x, cdf)
        return (x * cdf).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        x, cdf = ctx.saved_tensors
        pdf = _INV_SQRT_2PI * np.exp(-0.5 * x * x)
        return g * (cdf + x * pdf)


class Abs(Function):
    """y = |x|;  dy/dx = sign(x) (0 at 0, as torch)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.abs(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * np.sign(x)


class Maximum(Function):
    """y = max(a, b) element-wise; at ties the gradient is split half/half (as torch)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.maximum(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        wa = ((a > b) + 0.5 * (a == b)).astype(g.dtype, copy=False)
        ga = unbroadcast(g * wa, a.shape) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(g * (1 - wa), b.shape) if ctx.needs_input_grad[1] else None
        return ga, gb


class Where(Function):
    """y = a where cond else b (cond: boolean array, not differentiable)."""

    @staticmethod
    def forward(ctx, cond, a, b):
        cond = np.asarray(cond, dtype=bool)
        ctx.cond = cond
        ctx.shapes = (a.shape, b.shape)
        return np.where(cond, a, b)

    @staticmethod
    def backward(ctx, g):
        sa, sb = ctx.shapes
        zero = np.zeros((), dtype=g.dtype)
        return None, unbroadcast(np.where(ctx.cond, g, zero), sa), unbroadcast(np.where(ctx.cond, zero, g), sb)


class NanToNum(Function):
    """y = x with NaN → nan, +inf → posinf, −inf → neginf;  dy/dx = 1 where x was finite, else 0.

    When x is all finite (the normal case for a guard) y is a view of x and the gradient passes
    unchanged: one read of x (`kernels.all_finite`) and no copy.
    """

    @staticmethod
    def forward(ctx, x, nan=0.0, posinf=None, neginf=None):
        if x.dtype == np.float32 or x.dtype == np.float64:  # the kernels' dtypes
            finite_everywhere = kernels.all_finite(x)
        else:
            finite_everywhere = bool(np.isfinite(x).all())
        if finite_everywhere:
            ctx.save_for_backward(None)
            return x.view()
        finite = np.isfinite(x)
        ctx.save_for_backward(finite)
        return np.nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf)

    @staticmethod
    def backward(ctx, g):
        (finite,) = ctx.saved_tensors
        return g if finite is None else g * finite


class Cast(Function):
    """y = x converted to another float dtype; the gradient is cast back."""

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        return g.astype(ctx.dtype), None
