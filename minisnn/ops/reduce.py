"""Reductions: sum, mean, max, var over one or more axes, with keepdims.

Backward of a reduction re-inserts the reduced axes (size 1) and broadcasts
the gradient back to the input shape.  The Functions take `axes` already checked and
normalised by `reduction_axes` (the wrappers in `functional.py` do that, with `check_*`).
"""
from __future__ import annotations

import numpy as np

from ..autograd.function import Function


def reduction_axes(axis, ndim: int) -> tuple[int, ...]:
    """The axes a reduction runs over (None: all) as a sorted tuple in [0, ndim); checks the range."""
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


def count(shape: tuple[int, ...], axes: tuple[int, ...]) -> int:
    """How many values each output of a reduction over `axes` pools."""
    return int(np.prod([shape[a] for a in axes])) if axes else 1


def check_max(shape: tuple[int, ...], axes: tuple[int, ...]) -> None:
    if any(shape[a] == 0 for a in axes):
        raise ValueError("max() of an empty axis")


def check_var(shape: tuple[int, ...], axes: tuple[int, ...], unbiased: bool) -> None:
    n, ddof = count(shape, axes), (1 if unbiased else 0)
    if n - ddof <= 0:
        raise ValueError(f"var() over {n} element(s) with ddof={ddof} is undefined")


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
    def forward(ctx, x, axes, keepdims=False):
        ctx.axes = axes
        ctx.keepdims = keepdims
        ctx.shape = x.shape
        return np.asarray(x.sum(axis=axes, keepdims=keepdims))

    @staticmethod
    def backward(ctx, g):
        return np.broadcast_to(_expand(g, ctx.axes, ctx.keepdims), ctx.shape).copy()


class Mean(Function):
    """y = (1/n) Σ_axes x;  dy/dx = 1/n."""

    @staticmethod
    def forward(ctx, x, axes, keepdims=False):
        ctx.axes = axes
        ctx.keepdims = keepdims
        ctx.shape = x.shape
        ctx.n = count(x.shape, axes)
        return np.asarray(x.mean(axis=axes, keepdims=keepdims))

    @staticmethod
    def backward(ctx, g):
        g = _expand(g, ctx.axes, ctx.keepdims) / ctx.n
        return np.broadcast_to(g, ctx.shape).astype(g.dtype, copy=True)


class Max(Function):
    """y = max_axes x;  the gradient is shared equally among tied maxima (as torch's amax)."""

    @staticmethod
    def forward(ctx, x, axes, keepdims=False):
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
    def forward(ctx, x, axes, keepdims=False, unbiased=False):
        ddof = 1 if unbiased else 0
        centred = x - x.mean(axis=axes, keepdims=True)
        ctx.save_for_backward(centred)
        ctx.axes, ctx.keepdims, ctx.denom = axes, keepdims, count(x.shape, axes) - ddof
        return np.asarray((centred * centred).sum(axis=axes, keepdims=keepdims) / ctx.denom)

    @staticmethod
    def backward(ctx, g):
        (centred,) = ctx.saved_tensors
        g = _expand(g, ctx.axes, ctx.keepdims)
        return (g * 2.0 * centred / ctx.denom).astype(centred.dtype, copy=False)
