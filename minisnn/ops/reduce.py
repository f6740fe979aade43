"""Reductions: sum, mean, max, var over one or more axes, with keepdims.

Backward of a reduction re-inserts the reduced axes (size 1) and broadcasts
the gradient back to the input shape.
"""
from __future__ import annotations

import numpy as np

from ..autograd.function import Function


def _norm_axes(axis, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    out = []
    for a in axis:
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of range for an array of {ndim} dimensions")
        out.append(a % ndim)
    return tuple(sorted(set(out)))


def _expand(g: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
    """Give `g` size-1 axes where the reduction removed them."""
    if keepdims:
        return g
    for a in axes:
        g = np.expand_dims(g, a)
    return g


class Sum(Function):
    """y = Σ_axes x;  dy/dx = 1 (broadcast back)."""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.axes = _norm_axes(axis, x.ndim)
        ctx.keepdims = keepdims
        ctx.shape = x.shape
        return np.asarray(x.sum(axis=ctx.axes, keepdims=keepdims))

    @staticmethod
    def backward(ctx, g):
        return np.broadcast_to(_expand(g, ctx.axes, ctx.keepdims), ctx.shape).copy()


class Mean(Function):
    """y = (1/n) Σ_axes x;  dy/dx = 1/n."""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.axes = _norm_axes(axis, x.ndim)
        ctx.keepdims = keepdims
        ctx.shape = x.shape
        ctx.n = int(np.prod([x.shape[a] for a in ctx.axes])) if ctx.axes else 1
        return np.asarray(x.mean(axis=ctx.axes, keepdims=keepdims))

    @staticmethod
    def backward(ctx, g):
        g = _expand(g, ctx.axes, ctx.keepdims) / ctx.n
        return np.broadcast_to(g, ctx.shape).astype(g.dtype, copy=True)


class Max(Function):
    """y = max_axes x;  the gradient is shared equally among tied maxima (as torch's amax)."""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        axes = _norm_axes(axis, x.ndim)
        if any(x.shape[a] == 0 for a in axes):
            raise ValueError("max() of an empty axis")
        y = x.max(axis=axes, keepdims=True)
        ctx.mask = x == y
        ctx.axes = axes
        ctx.keepdims = keepdims
        return np.asarray(y if keepdims else np.squeeze(y, axis=axes))

    @staticmethod
    def backward(ctx, g):
        g = _expand(g, ctx.axes, ctx.keepdims)
        mask = ctx.mask
        count = mask.sum(axis=ctx.axes, keepdims=True)
        return (g * mask / count).astype(g.dtype, copy=False)


class Var(Function):
    """y = Σ (x − mean)² / (n − ddof);  dy/dx = 2 (x − mean)/(n − ddof)."""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False, unbiased=False):
        axes = _norm_axes(axis, x.ndim)
        n = int(np.prod([x.shape[a] for a in axes])) if axes else 1
        ddof = 1 if unbiased else 0
        if n - ddof <= 0:
            raise ValueError(f"var() over {n} element(s) with ddof={ddof} is undefined")
        centred = x - x.mean(axis=axes, keepdims=True)
        ctx.save_for_backward(centred)
        ctx.axes, ctx.keepdims, ctx.denom = axes, keepdims, n - ddof
        return np.asarray((centred * centred).sum(axis=axes, keepdims=keepdims) / ctx.denom)

    @staticmethod
    def backward(ctx, g):
        (centred,) = ctx.saved_tensors
        g = _expand(g, ctx.axes, ctx.keepdims)
        return (g * 2.0 * centred / ctx.denom).astype(centred.dtype, copy=False)
