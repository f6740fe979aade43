"""Batched, broadcasting matrix product (NumPy `@` semantics, BLAS underneath).

y = a @ b with a: [..., n, k], b: [..., k, m] → [..., n, m];
da = g @ bᵀ, db = aᵀ @ g, then summed over broadcast batch axes.
1-D operands are promoted (a vector a is [1, k], a vector b is [k, 1]) and demoted again.
"""
from __future__ import annotations

import numpy as np

from ..autograd.broadcast import unbroadcast
from ..autograd.function import Function


def check_matmul(a_shape: tuple[int, ...], b_shape: tuple[int, ...]) -> None:
    """Inner sizes agree and the batch axes broadcast."""
    if len(a_shape) == 0 or len(b_shape) == 0:
        raise ValueError("matmul needs tensors of at least one dimension; use * for scalars")
    ka = a_shape[-1]
    kb = b_shape[-2] if len(b_shape) > 1 else b_shape[0]
    if ka != kb:
        raise ValueError(f"matmul shape mismatch: {a_shape} @ {b_shape} (inner sizes {ka} and {kb} differ)")
    try:
        np.broadcast_shapes(a_shape[:-2], b_shape[:-2])
    except ValueError:
        raise ValueError(
            f"matmul batch shapes do not broadcast: {a_shape} @ {b_shape} "
            f"(batch axes {a_shape[:-2]} and {b_shape[:-2]})"
        ) from None


class MatMul(Function):
    """y = a @ b (shapes checked by `check_matmul`)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.matmul(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        # g lacks the m axis when b was a vector and the n axis when a was one
        g2 = g[..., None] if b.ndim == 1 else g
        g2 = g2[..., None, :] if a.ndim == 1 else g2
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = np.matmul(g2, np.swapaxes(b2, -1, -2))
            ga = unbroadcast(ga, a2.shape).reshape(a.shape)
        if ctx.needs_input_grad[1]:
            gb = np.matmul(np.swapaxes(a2, -1, -2), g2)
            gb = unbroadcast(gb, b2.shape).reshape(b.shape)
        return ga, gb
