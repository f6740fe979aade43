"""Fully connected layer over the last axis: y = x Wᵀ + b.

x [..., in], W [out, in], b [out] | None → y [..., out].  All leading axes are
folded into one, so the forward pass and both weight gradients are single GEMMs:

    y₂ = x₂ Wᵀ,   dx₂ = g₂ W,   dW = g₂ᵀ x₂,   db = 1ᵀ g₂ = Σ_rows g₂      (x₂ = x as [rows, in])

(reshaping a contiguous x or g is free; BLAS reads the transposed operands in place).
"""
from __future__ import annotations

import numpy as np

from ..autograd.function import Function


def check_linear(x, w, b) -> None:
    """x [..., in], W [out, in] of x's dtype, b [out] | None (arrays or Tensors)."""
    if w.ndim != 2:
        raise ValueError(f"linear: weight must be [out, in], got shape {w.shape}")
    if x.ndim == 0 or x.shape[-1] != w.shape[1]:
        raise ValueError(
            f"linear: input of shape {x.shape} does not end in in_features={w.shape[1]} (weight shape {w.shape})"
        )
    if x.dtype != w.dtype:
        raise TypeError(f"linear: input dtype {x.dtype} differs from weight dtype {w.dtype}; cast one of them")
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"linear: bias must have shape ({w.shape[0]},), got {b.shape}")


class Linear(Function):
    """y = x Wᵀ + b;  x [..., in], W [out, in], b [out] | None → [..., out] (checked by `check_linear`)."""

    @staticmethod
    def forward(ctx, x, w, b=None):
        x2 = x.reshape(-1, w.shape[1])
        y = x2 @ w.T
        if b is not None:
            y += b
        ctx.save_for_backward(x, w)
        return y.reshape(x.shape[:-1] + (w.shape[0],))

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        g2 = g.reshape(-1, w.shape[0])
        need_x, need_w, need_b = ctx.needs_input_grad
        dx = (g2 @ w).reshape(x.shape) if need_x else None
        dw = g2.T @ x.reshape(-1, w.shape[1]) if need_w else None
        db = np.ones(g2.shape[0], dtype=g2.dtype) @ g2 if need_b else None  # column sums as one BLAS GEMV
        return dx, dw, db
