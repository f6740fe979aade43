"""Autograd Functions of the spiking attention primitives (maths and costs: `attention.md`).

The public functions (`ssa`, `head_column_sum`, `head_token_mask` in `__init__.py`) check their
inputs with the `check_*` functions here; each Function then flattens the leading (batch, time,
head) axes into one axis G, calls the active kernel backend (`minisnn.kernels`) and restores the
shapes:

    SSA            q [..., Nq, d], k [..., Nk, d], v [..., Nk, dv] -> z = scale · (q kᵀ) v  [..., Nq, dv]
    HeadColumnSum  x [..., C, N] -> s [..., heads, N],          s[h, n] = Σ_{j<d} x[h·d + j, n]
    HeadTokenMask  a [..., heads, N], k [..., C, N] -> [..., C, N],  y[c, n] = a[c // d, n] · k[c, n]

with d = C / heads.  The inputs are usually spikes (0/1 floats), but every formula is exact for
real inputs too, which is what surrogate gradients and finite-difference checks need.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import kernels
from ..autograd.function import Function
from ..autograd.tensor import Tensor

_FLOATS = (np.float32, np.float64)


def _float_array(x, what: str) -> np.ndarray:
    if isinstance(x, Tensor):
        x = x.data
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{what} must be a Tensor or ndarray of float32/float64, got {type(x).__name__}")
    if x.dtype.type not in _FLOATS:
        raise TypeError(f"{what} must be float32 or float64, got dtype {x.dtype}")
    if x.ndim < 2:
        raise ValueError(f"{what} needs at least 2 dimensions, got shape {x.shape}")
    return x


def _same_dtype(op: str, **arrays: np.ndarray) -> None:
    dtypes = {name: a.dtype for name, a in arrays.items()}
    if len(set(dtypes.values())) > 1:
        listed = ", ".join(f"{name} {dt}" for name, dt in dtypes.items())
        raise TypeError(f"{op}: inputs must share one float dtype, got {listed}")


def _heads(heads, op: str) -> int:
    if isinstance(heads, bool) or not isinstance(heads, numbers.Integral):
        raise TypeError(f"{op}: heads must be an int, got {type(heads).__name__}")
    if heads <= 0:
        raise ValueError(f"{op}: heads must be positive, got {heads}")
    return int(heads)


def _flat(x: np.ndarray) -> np.ndarray:
    """[..., A, B] -> [G, A, B] with G the product of the leading sizes (a view when possible)."""
    return x.reshape((math.prod(x.shape[:-2]),) + x.shape[-2:])


def _token_major(x: np.ndarray) -> np.ndarray | None:
    """x [..., h, N, d] as the [G, N, h, d] array behind it when each token's heads lie side by side in its
    memory (the head split of tokens [..., N, h·d], permuted: x.swapaxes(-2, -3) is C-contiguous), else None."""
    if x.ndim < 3 or x.flags.c_contiguous:
        return None
    tokens = x.swapaxes(-2, -3)
    return tokens.reshape((-1,) + tokens.shape[-3:]) if tokens.flags.c_contiguous else None


def _token_rows(x: np.ndarray) -> np.ndarray:
    """x [..., h, N, d] as token rows [G, N, h, d]: the array behind it (`_token_major`), else a copy."""
    tokens = _token_major(x)
    if tokens is not None:
        return tokens
    tokens = np.ascontiguousarray(x.swapaxes(-2, -3))
    return tokens.reshape((-1,) + tokens.shape[-3:])


def _heads_view(x: np.ndarray, lead: tuple) -> np.ndarray:
    """x [G, N, h, d] (token rows) seen as [*lead, N, d] with lead = (..., h): the view `_token_major` undoes."""
    return x.reshape(lead[:-1] + x.shape[1:]).swapaxes(-2, -3)


def check_ssa(q, k, v, scale) -> None:
    """q [..., Nq, d], k [..., Nk, d], v [..., Nk, dv]: one float dtype, the same leading axes; scale a real."""
    q = _float_array(q, "ssa: q")
    k = _float_array(k, "ssa: k")
    v = _float_array(v, "ssa: v")
    _same_dtype("ssa", q=q, k=k, v=v)
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real):
        raise TypeError(f"ssa: scale must be a real number, got {type(scale).__name__}")
    lead = q.shape[:-2]
    if k.shape[:-2] != lead or v.shape[:-2] != lead:
        raise ValueError(
            f"ssa: q, k, v must share their leading axes, got shapes {q.shape}, {k.shape}, {v.shape}"
        )
    if k.shape[-1] != q.shape[-1]:
        raise ValueError(f"ssa: q and k need the same feature size d, got q {q.shape} and k {k.shape}")
    if v.shape[-2] != k.shape[-2]:
        raise ValueError(f"ssa: k and v need the same number of tokens, got k {k.shape} and v {v.shape}")


def check_head_column_sum(x, heads) -> int:
    """x [..., C, N] float with C divisible by `heads` (a positive int, returned as int)."""
    x = _float_array(x, "head_column_sum: x")
    heads = _heads(heads, "head_column_sum")
    channels = x.shape[-2]
    if channels % heads:
        raise ValueError(
            f"head_column_sum: channels C={channels} (axis -2 of x {x.shape}) must be divisible by heads={heads}"
        )
    return heads


def check_head_token_mask(a, k, heads) -> int:
    """a [..., heads, N] and k [..., C, N] of one float dtype, C divisible by `heads` (returned as int)."""
    a = _float_array(a, "head_token_mask: a")
    k = _float_array(k, "head_token_mask: k")
    _same_dtype("head_token_mask", a=a, k=k)
    heads = _heads(heads, "head_token_mask")
    channels = k.shape[-2]
    if channels % heads:
        raise ValueError(
            f"head_token_mask: channels C={channels} (axis -2 of k {k.shape}) must be divisible by heads={heads}"
        )
    expected = k.shape[:-2] + (heads, k.shape[-1])
    if a.shape != expected:
        raise ValueError(f"head_token_mask: a must have shape {expected} for k {k.shape} and heads={heads}, got {a.shape}")
    return heads


class SSA(Function):
    """Spiking self-attention without softmax: z = scale · (q kᵀ) v over the last two axes.

    apply(q [..., Nq, d], k [..., Nk, d], v [..., Nk, dv], scale=0.125) -> [..., Nq, dv].
    The kernel picks the cheaper bracketing (kᵀ v first when N > d); backward reuses the inner
    product the forward formed.  Heads split from token rows and permuted ([..., h, N, d] views of
    [..., N, h, d] memory, `_token_major`) are read where they lie, and z is returned as the same kind of
    view, so the permute back to tokens copies nothing.  Gradients: see `attention.md` §1.
    """

    @staticmethod
    def forward(ctx, q, k, v, *, scale=0.125):
        lead = q.shape[:-2]
        ctx.scale = float(scale)
        ctx.shapes = (q.shape, k.shape, v.shape)
        tokens = [_token_major(x) for x in (q, k, v)]
        ctx.interleaved = all(t is not None for t in tokens)    # heads of token rows, as Spikformer splits them
        if ctx.interleaved:
            z, inner = kernels.ssa_forward_interleaved(*tokens, ctx.scale)             # z [G, Nq, h, dv]
            ctx.save_for_backward(*tokens, inner)
            return _heads_view(z, lead)
        qf, kf, vf = _flat(q), _flat(k), _flat(v)
        z, inner = kernels.ssa_forward(qf, kf, vf, ctx.scale)
        ctx.save_for_backward(qf, kf, vf, inner)
        return z.reshape(lead + z.shape[-2:])

    @staticmethod
    def backward(ctx, grad):
        q, k, v, inner = ctx.saved_tensors
        if ctx.interleaved:
            grads = kernels.ssa_backward_interleaved(q, k, v, inner, _token_rows(grad), ctx.scale)
            grads = [_heads_view(g, shape[:-2]) for g, shape in zip(grads, ctx.shapes)]
        else:
            grads = kernels.ssa_backward(q, k, v, inner, _flat(grad), ctx.scale)
        return tuple(
            g.reshape(shape) if needed else None
            for g, shape, needed in zip(grads, ctx.shapes, ctx.needs_input_grad)
        )


class HeadColumnSum(Function):
    """Per-head column sum: s[..., h, n] = Σ_{j<d} x[..., h·d + j, n], d = C / heads.

    apply(x [..., C, N], heads=h) -> [..., heads, N];  backward: dx[c, n] = ds[c // d, n].
    """

    @staticmethod
    def forward(ctx, x, *, heads):
        ctx.shape = x.shape
        s = kernels.head_column_sum_forward(_flat(x), heads)
        return s.reshape(x.shape[:-2] + s.shape[-2:])

    @staticmethod
    def backward(ctx, grad):
        dx = kernels.head_column_sum_backward(_flat(grad), ctx.shape[-2])
        return dx.reshape(ctx.shape)


class HeadTokenMask(Function):
    """Per-head token mask: y[..., c, n] = a[..., c // d, n] · k[..., c, n], d = C / heads.

    apply(a [..., heads, N], k [..., C, N], heads=h) -> [..., C, N].
    backward: dk[c, n] = a[c // d, n]·dy[c, n],  da[h, n] = Σ_{j<d} dy[h·d+j, n]·k[h·d+j, n].
    """

    @staticmethod
    def forward(ctx, a, k, *, heads):
        af, kf = _flat(a), _flat(k)
        ctx.save_for_backward(af, kf)
        ctx.heads = heads
        ctx.shapes = (a.shape, k.shape)
        return kernels.head_token_mask_forward(af, kf, heads).reshape(k.shape)

    @staticmethod
    def backward(ctx, grad):
        af, kf = ctx.saved_tensors
        need_a, need_k = ctx.needs_input_grad[:2]
        gf = _flat(grad)
        if need_a:
            da, dk = kernels.head_token_mask_backward(af, kf, gf, ctx.heads)
            da = da.reshape(ctx.shapes[0])
        else:  # dk alone is the forward mask applied to the gradient
            da, dk = None, kernels.head_token_mask_forward(af, gf, ctx.heads)
        return da, (dk.reshape(ctx.shapes[1]) if need_k else None)
