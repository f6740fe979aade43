"""Spiking attention primitives (softmax-free), differentiable in all tensor inputs.

    from minisnn.attention import ssa, head_column_sum, head_token_mask
    z = ssa(q, k, v, scale=0.125)      # Spikformer SSA: scale · (q kᵀ) v        [..., N, d]
    s = head_column_sum(x, heads)      # MSSA / Q-K attention: per-head channel sums [..., heads, N]
    y = head_token_mask(a, k, heads)   # per-head token mask a broadcast over k       [..., C, N]

How they compose into the three attention blocks:

    Spikformer SSA (tokens last-but-one):  A = LIF_attn(ssa(Q, K, V))           Q, K, V [T, B, h, N, d]
    MSViT MSSA (channels last-but-one):    A = LIF_attn(head_column_sum(Q, h) + head_column_sum(P, h))
                                           Y = head_token_mask(A, K, h)          Q, P, K [T, B, C, N]
    QKFormer Q-K attention:                A = LIF_attn(head_column_sum(Q, h));  Y = head_token_mask(A, K, h)

Derivations of the backward passes and the cost of the two SSA product orders: `attention.md`.
"""
from __future__ import annotations

from .functions import (SSA, HeadColumnSum, HeadTokenMask, check_head_column_sum, check_head_token_mask,
                        check_ssa)

__all__ = ["ssa", "head_column_sum", "head_token_mask", "SSA", "HeadColumnSum", "HeadTokenMask"]


def ssa(q, k, v, scale: float = 0.125):
    """z = scale · (q kᵀ) v, no softmax.  q [..., Nq, d], k [..., Nk, d], v [..., Nk, dv] -> [..., Nq, dv].

    Inputs are Tensors (or arrays) of one float dtype; the cheaper product order is chosen
    from the shapes (kᵀ v first when N > d).
    """
    check_ssa(q, k, v, scale)
    return SSA.apply(q, k, v, scale=scale)


def head_column_sum(x, heads: int):
    """s[..., h, n] = Σ_{j<d} x[..., h·d + j, n] with d = C / heads.  x [..., C, N] -> [..., heads, N]."""
    return HeadColumnSum.apply(x, heads=check_head_column_sum(x, heads))


def head_token_mask(a, k, heads: int):
    """y[..., c, n] = a[..., c // d, n] · k[..., c, n] with d = C / heads.  a [..., heads, N], k [..., C, N] -> [..., C, N]."""
    return HeadTokenMask.apply(a, k, heads=check_head_token_mask(a, k, heads))
