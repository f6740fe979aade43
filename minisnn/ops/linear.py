"""Fully connected layer over the last axis: y = x Wᵀ + b.

x [..., in], W [out, in], b [out] | None → y [..., out].  All leading axes are
folded into one, so the forward pass and both weight gradients are single GEMMs:

    y₂ = x₂ Wᵀ,   dx₂ = g₂ W,   dW = g₂ᵀ x₂,   db = 1ᵀ g₂ = Σ_rows g₂      (x₂ = x as [rows, in])

(reshaping a contiguous x or g is free; BLAS reads the transposed operands in place).

Inputs that are mostly zeros, as spikes are, take the event-driven path instead: the nonzero inputs
(the events) are listed once, and y₂ and dW become sums over the events alone (`kernels.event_matmul`,
`kernels.event_weight_grad`; the maths in `minisnn.kernels.reference.events`).  Same results to
rounding, for any input; only the speed differs.  An input takes it when at most EVENT_DENSITY of
its values are nonzero (measured break-even and speed-ups: event_linear.md).
"""
from __future__ import annotations

import numpy as np

from .. import kernels
from ..autograd.function import Function
from .norm import folded_weights, scaled_cotangent

EVENT_DENSITY = 0.15  # the largest fraction of nonzero inputs that takes the event-driven path (event_linear.md)


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


def input_events(x2: np.ndarray, density: float = EVENT_DENSITY):
    """The events (indptr, indices, values) of a float32 / float64 x₂ [rows, in] when at most `density` of
    it is nonzero, else None (other dtypes always run dense)."""
    if x2.dtype not in (np.float32, np.float64):
        return None
    x2 = np.ascontiguousarray(x2)
    indptr = kernels.event_row_pointers(x2, int(density * x2.size))
    if indptr is None:
        return None
    return (indptr, *kernels.gather_events(x2, indptr))


class Linear(Function):
    """y = x Wᵀ + b;  x [..., in], W [out, in], b [out] | None → [..., out] (checked by `check_linear`).

    A sparse x (spikes) runs event-driven (`input_events`): ctx keeps its events instead of x.
    affine = (scale, shift), float64 constants [out] (an eval-mode BatchNorm folded in), makes it
    y = scale·(x Wᵀ + b) + shift, computed with W and b folded (`norm.folded_weights`); the gradients are
    then those of x Wᵀ + b for the cotangent scale·g.
    """

    @staticmethod
    def forward(ctx, x, w, b=None, affine=None):
        ctx.scale = None if affine is None else affine[0]
        w_layer = w                      # the backward's dx = (scale·g) W takes the layer's own W
        if affine is not None:
            w, b = folded_weights(w, b, *affine)
        x2 = x.reshape(-1, w.shape[1])
        events = input_events(x2)
        if events is None:
            y = x2 @ w.T
            if b is not None:
                y += b
        else:
            y = kernels.event_matmul(*events, np.ascontiguousarray(w.T), b)
        ctx.events, ctx.x_shape = events, x.shape
        ctx.save_for_backward(x if events is None else None, w_layer)
        return y.reshape(x.shape[:-1] + (w.shape[0],))

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        g2 = scaled_cotangent(g.reshape(-1, w.shape[0]), ctx.scale)
        need_x, need_w, need_b = ctx.needs_input_grad
        dx = (g2 @ w).reshape(ctx.x_shape) if need_x else None
        dw = None
        if need_w and ctx.events is None:
            dw = g2.T @ x.reshape(-1, w.shape[1])
        elif need_w:
            dw = np.ascontiguousarray(kernels.event_weight_grad(*ctx.events, np.ascontiguousarray(g2), w.shape[1]).T)
        db = np.ones(g2.shape[0], dtype=g2.dtype) @ g2 if need_b else None  # column sums as one BLAS GEMV
        return dx, dw, db
