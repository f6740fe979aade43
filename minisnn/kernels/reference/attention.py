"""Spiking attention kernels, NumPy reference (the specification of `kernels/jit/attention.py`).

Two families, both softmax-free (derivations and costs: `minisnn/attention/attention.md`).

SSA (Spikformer, MSViT/QKFormer stage 3), one attention problem per leading index g:
    q [G, Nq, d], k [G, Nk, d], v [G, Nk, dv]  ->  z = s · (q kᵀ) v = s · q (kᵀ v)   [G, Nq, dv]
`ssa_forward_interleaved` takes the heads where a token array [G, N, h·d] holds them, side by side
in each token's channels, q [G, Nq, h, d] (k, v alike) -> z [G, Nq, h, dv]: the G·h problems of
`ssa_forward`, without first copying each head's rows together.
The two bracketings cost Nq·Nk·(d + dv) and d·dv·(Nq + Nk) multiply-adds; `ssa_kv_first`
picks the cheaper one (kᵀ v first when N > d for square self-attention).  The forward also
returns the inner product it formed (M = kᵀ v [G, d, dv], or A = q kᵀ [G, Nq, Nk]) so the
backward can reuse it instead of recomputing it.

Column sum and token mask (MSViT's MSSA, QKFormer's Q-K token attention), channels split into
`heads` contiguous blocks of d = C / heads (channel c belongs to head c // d):
    head_column_sum:  x [G, C, N] -> s [G, heads, N],  s[h, n] = Σ_j x[h·d + j, n]
    head_token_mask:  a [G, heads, N], k [G, C, N] -> y [G, C, N],  y[c, n] = a[c // d, n] · k[c, n]

All kernels take 3-D float arrays of one dtype (float32 or float64) and are exact for any real input;
the autograd Functions in `minisnn/attention/functions.py` check shapes before calling them.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "ssa_forward",
    "ssa_forward_interleaved",
    "ssa_backward",
    "ssa_backward_interleaved",
    "head_column_sum_forward",
    "head_column_sum_backward",
    "head_token_mask_forward",
    "head_token_mask_backward",
]


def ssa_kv_first(nq: int, nk: int, d: int, dv: int) -> bool:
    """True when q (kᵀ v) is strictly cheaper than (q kᵀ) v:  d·dv·(Nq + Nk) < Nq·Nk·(d + dv).

    A helper shared by both backends (not a kernel itself, so not in `__all__`).
    """
    return d * dv * (nq + nk) < nq * nk * (d + dv)


def _t(x: np.ndarray) -> np.ndarray:
    """Transpose of the last two axes (a view)."""
    return np.swapaxes(x, -1, -2)


def ssa_forward(q: np.ndarray, k: np.ndarray, v: np.ndarray, scale: float):
    """z = scale · q kᵀ v  [G, Nq, dv], plus the inner product used (kᵀ v [G, d, dv] or q kᵀ [G, Nq, Nk]).

    q [G, Nq, d], k [G, Nk, d], v [G, Nk, dv].
    """
    if ssa_kv_first(q.shape[1], k.shape[1], q.shape[2], v.shape[2]):
        inner = _t(k) @ v  # M = kᵀ v   [G, d, dv]
        z = (q @ inner) * scale
    else:
        inner = q @ _t(k)  # A = q kᵀ   [G, Nq, Nk]
        z = (inner @ v) * scale
    return z.astype(q.dtype, copy=False), inner


def heads_first(x: np.ndarray) -> np.ndarray:
    """x [G, N, h, d] → the problems [G·h, N, d] of its heads (a copy).  A helper, not a kernel."""
    g, n, h, d = x.shape
    return np.ascontiguousarray(x.transpose(0, 2, 1, 3)).reshape(g * h, n, d)


def tokens_of(x: np.ndarray, heads: int) -> np.ndarray:
    """The problems x [G·h, N, d] back in token rows [G, N, h, d] (a copy); `heads_first`'s inverse."""
    gh, n, d = x.shape
    return np.ascontiguousarray(x.reshape(gh // heads, heads, n, d).transpose(0, 2, 1, 3))


def ssa_forward_interleaved(q: np.ndarray, k: np.ndarray, v: np.ndarray, scale: float):
    """`ssa_forward` of every head of q [G, Nq, h, d], k [G, Nk, h, d], v [G, Nk, h, dv] → z [G, Nq, h, dv]
    and the inner product per problem g·h + head ([G·h, d, dv] or [G·h, Nq, Nk], as `ssa_forward` returns
    it for the problems `heads_first` lists)."""
    z, inner = ssa_forward(heads_first(q), heads_first(k), heads_first(v), scale)
    return tokens_of(z, q.shape[2]), inner


def ssa_backward(q, k, v, inner, grad_z, scale: float):
    """(dq, dk, dv) of z = scale · q kᵀ v, given dL/dz [G, Nq, dv] and `inner` from `ssa_forward`.

    kᵀ v first (M = kᵀ v):  dq = s·gz Mᵀ,  dM = s·qᵀ gz,  dk = v dMᵀ,  dv = k dM
    q kᵀ first (A = q kᵀ):  dA = s·gz vᵀ,  dv = s·Aᵀ gz,  dq = dA k,  dk = dAᵀ q
    """
    if ssa_kv_first(q.shape[1], k.shape[1], q.shape[2], v.shape[2]):
        m = inner
        dq = (grad_z @ _t(m)) * scale
        dm = (_t(q) @ grad_z) * scale
        dk = v @ _t(dm)
        dv = k @ dm
    else:
        a = inner
        da = (grad_z @ _t(v)) * scale
        dv = (_t(a) @ grad_z) * scale
        dq = da @ k
        dk = _t(da) @ q
    dt = q.dtype
    return dq.astype(dt, copy=False), dk.astype(dt, copy=False), dv.astype(dt, copy=False)


def ssa_backward_interleaved(q, k, v, inner, grad_z, scale: float):
    """`ssa_backward` of every head, in the layouts of `ssa_forward_interleaved`: q, k, v and grad_z [G, N, h, ·],
    inner [G·h, ...] as it returned it → (dq, dk, dv) shaped as q, k, v."""
    h = q.shape[2]
    grads = ssa_backward(heads_first(q), heads_first(k), heads_first(v), inner, heads_first(grad_z), scale)
    return tuple(tokens_of(grad, h) for grad in grads)


def head_column_sum_forward(x: np.ndarray, heads: int) -> np.ndarray:
    """s[g, h, n] = Σ_j x[g, h·d + j, n].  x [G, C, N] -> [G, heads, N]."""
    g, c, n = x.shape
    return x.reshape(g, heads, c // heads, n).sum(axis=2)


def head_column_sum_backward(grad_s: np.ndarray, channels: int) -> np.ndarray:
    """dx[g, c, n] = gs[g, c // d, n]: each head's gradient copied to its d channels.  [G, heads, N] -> [G, C, N]."""
    heads = grad_s.shape[1]
    return np.repeat(grad_s, channels // heads, axis=1)


def head_token_mask_forward(a: np.ndarray, k: np.ndarray, heads: int) -> np.ndarray:
    """y[g, c, n] = a[g, c // d, n] · k[g, c, n].  a [G, heads, N], k [G, C, N] -> [G, C, N]."""
    g, c, n = k.shape
    y = a[:, :, None, :] * k.reshape(g, heads, c // heads, n)
    return y.reshape(g, c, n)


def head_token_mask_backward(a: np.ndarray, k: np.ndarray, grad_y: np.ndarray, heads: int):
    """(da, dk) of y = a[c // d] · k:  dk[c, n] = a[c // d, n]·gy[c, n],  da[h, n] = Σ_j gy[h·d+j, n]·k[h·d+j, n]."""
    g, c, n = k.shape
    gy = grad_y.reshape(g, heads, c // heads, n)
    da = (gy * k.reshape(g, heads, c // heads, n)).sum(axis=2)
    dk = (gy * a[:, :, None, :]).reshape(g, c, n)
    return da, dk
