"""Shape Functions: reshape, permute, broadcast, indexing, concatenate, stack, pad.

None of these change values, so each backward routes the gradient back to where
every element came from: the inverse reshape/permutation, a sum over broadcast
axes, a scatter-add for indexing (repeated indices accumulate).

The wrappers in `functional.py` check their arguments with the `check_*` functions here
and pass them on normalised; a size that does not fit a reshape or broadcast is found by
NumPy itself during the forward, which only rewords its message.
"""
from __future__ import annotations

import numpy as np

from ..autograd.broadcast import unbroadcast
from ..autograd.function import Function
from ..autograd.tensor import Tensor


class Reshape(Function):
    """y = x viewed with a new shape (same number of elements)."""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(f"cannot reshape a tensor of shape {x.shape} ({x.size} elements) into {tuple(shape)}") from None

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape), None


def check_permute(axes, ndim: int) -> tuple[int, ...]:
    """`axes` as a permutation of range(ndim) (negative axes counted from the end); checks it is one."""
    if len(axes) != ndim or any(not -ndim <= int(a) < ndim for a in axes):
        raise ValueError(f"permute axes {tuple(axes)} do not fit a tensor of {ndim} dimensions")
    axes = tuple(int(a) % ndim for a in axes)
    if sorted(axes) != list(range(ndim)):
        raise ValueError(f"permute axes {axes} are not a permutation of range({ndim})")
    return axes


class Permute(Function):
    """y = x with axes reordered: y.shape[i] = x.shape[axes[i]] (axes: a permutation, see `check_permute`)."""

    @staticmethod
    def forward(ctx, x, axes):
        ctx.inverse = tuple(np.argsort(axes))
        return x.transpose(axes)

    @staticmethod
    def backward(ctx, g):
        return g.transpose(ctx.inverse), None


class BroadcastTo(Function):
    """y = x broadcast to `shape` (NumPy rules); backward sums over the broadcast axes."""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        try:
            return np.broadcast_to(x, tuple(shape))
        except ValueError:
            raise ValueError(f"cannot broadcast shape {x.shape} to {tuple(shape)}") from None

    @staticmethod
    def backward(ctx, g):
        return unbroadcast(g, ctx.shape), None


def _index_arrays(index):
    """Unwrap Tensors used as indices."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


def _is_basic(index) -> bool:
    """True for ints, slices, None and Ellipsis only: every element of x is picked at most once."""
    items = index if isinstance(index, tuple) else (index,)
    return all(
        i is None or i is Ellipsis or isinstance(i, slice)
        or (isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_)))
        for i in items
    )


class GetItem(Function):
    """y = x[index] (basic or advanced NumPy indexing); backward scatter-adds into zeros.

    Basic indexing picks each element at most once, so the gradient is a plain
    assignment; integer arrays may repeat an element, so their gradients are
    accumulated with `np.add.at`.
    """

    @staticmethod
    def forward(ctx, x, index):
        index = _index_arrays(index)
        ctx.index = index
        ctx.shape = x.shape
        ctx.dtype = x.dtype
        return np.asarray(x[index])

    @staticmethod
    def backward(ctx, g):
        out = np.zeros(ctx.shape, dtype=ctx.dtype)
        if _is_basic(ctx.index):
            out[ctx.index] = g
        else:
            np.add.at(out, ctx.index, g)
        return out, None


def check_concatenate(xs) -> None:
    if not xs:
        raise ValueError("concatenate needs at least one tensor")
    if xs[0].ndim == 0:
        raise ValueError("concatenate cannot join 0-d tensors; use stack")


def check_stack(xs) -> None:
    if not xs:
        raise ValueError("stack needs at least one tensor")


class Concatenate(Function):
    """y = concat(x_1, ..., x_n) along `axis`; backward splits the gradient."""

    @staticmethod
    def forward(ctx, *xs, axis=0):
        ax = axis % xs[0].ndim
        ctx.axis = ax
        ctx.sizes = [x.shape[ax] for x in xs]
        return np.concatenate(xs, axis=ax)

    @staticmethod
    def backward(ctx, g):
        bounds = np.cumsum(ctx.sizes)[:-1]
        return tuple(np.split(g, bounds, axis=ctx.axis))


class Stack(Function):
    """y = stack(x_1, ..., x_n) along a new `axis`; backward unstacks the gradient."""

    @staticmethod
    def forward(ctx, *xs, axis=0):
        y = np.stack(xs, axis=axis)
        ctx.axis = axis % y.ndim
        return y

    @staticmethod
    def backward(ctx, g):
        return tuple(np.moveaxis(g, ctx.axis, 0))


def check_pad(pad_width, ndim: int) -> tuple[tuple[int, int], ...]:
    """pad_width as ((before, after), ...) ints, one pair per axis, all >= 0."""
    pw = tuple((int(a), int(b)) for a, b in pad_width)
    if len(pw) != ndim:
        raise ValueError(f"pad_width has {len(pw)} entries for a tensor of {ndim} dimensions")
    if any(a < 0 or b < 0 for a, b in pw):
        raise ValueError(f"pad widths must be >= 0, got {pw}")
    return pw


class Pad(Function):
    """y = x padded with a constant; pad_width ((before, after) per axis, see `check_pad`) as np.pad."""

    @staticmethod
    def forward(ctx, x, pw, value=0.0):
        ctx.slices = tuple(slice(a, a + n) for (a, _), n in zip(pw, x.shape))
        return np.pad(x, pw, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx, g):
        return g[ctx.slices].copy(), None
