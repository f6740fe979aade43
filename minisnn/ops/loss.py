"""Softmax, log-softmax and cross-entropy (integer or soft targets, label smoothing).

log_softmax(x)_i = x_i − logsumexp(x), computed with the max subtracted so it
never overflows.  Cross-entropy with soft targets q (rows summing to 1):

    L = mean_b  −Σ_i q_bi · log_softmax(x_b)_i,      dL/dx_b = (softmax(x_b) − q_b) · Σ_i q_bi / B

Label smoothing ε turns an integer target y into q = (1 − ε)·onehot(y) + ε/K.
"""
from __future__ import annotations

import numpy as np

from ..autograd.function import Function


def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    shifted = x - m
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


class Softmax(Function):
    """y = exp(x) / Σ exp(x) along `axis`;  dx = y ⊙ (g − Σ g ⊙ y)."""

    @staticmethod
    def forward(ctx, x, axis=-1):
        y = np.exp(_log_softmax(x, axis))
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return y * (g - (g * y).sum(axis=ctx.axis, keepdims=True))


class LogSoftmax(Function):
    """y = x − logsumexp(x) along `axis`;  dx = g − softmax(x) · Σ g."""

    @staticmethod
    def forward(ctx, x, axis=-1):
        y = _log_softmax(x, axis)
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g - np.exp(y) * g.sum(axis=ctx.axis, keepdims=True)


def check_cross_entropy(logits_shape: tuple[int, ...], target: np.ndarray, label_smoothing: float,
                        reduction: str) -> None:
    """Logits [B, K]; integer targets [B] in [0, K) or float targets [B, K]; ε in [0, 1]; a known reduction."""
    if len(logits_shape) != 2:
        raise ValueError(f"cross_entropy expects logits of shape [B, K], got {logits_shape}")
    if target.ndim not in (1, 2) or target.shape[0] != logits_shape[0]:
        raise ValueError(
            f"cross_entropy: targets of shape {target.shape} do not match logits {logits_shape} "
            f"(expected integer [B] or soft [B, K] targets with B = {logits_shape[0]})"
        )
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    num_classes = logits_shape[1]
    if target.dtype.kind == "b":
        raise TypeError("targets must be integer class indices or float probabilities, got booleans")
    if target.dtype.kind not in "iuf":
        raise TypeError(f"targets must be integer class indices or float probabilities, got dtype {target.dtype}")
    if target.dtype.kind in "iu":
        if target.ndim != 1:
            raise ValueError(f"integer targets must have shape [B], got {target.shape}")
        if target.size and (target.min() < 0 or target.max() >= num_classes):
            raise ValueError(f"integer targets must lie in [0, {num_classes - 1}], got range [{target.min()}, {target.max()}]")
    elif target.ndim != 2 or target.shape[1] != num_classes:
        raise ValueError(f"soft targets must have shape [B, {num_classes}], got {target.shape}")
    if label_smoothing and not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")


def soft_targets(target: np.ndarray, num_classes: int, label_smoothing: float, dtype) -> np.ndarray:
    """Integer labels [B] or soft targets [B, K] (checked) → smoothed soft targets [B, K]."""
    if target.dtype.kind in "iu":
        q = np.zeros((target.shape[0], num_classes), dtype=dtype)
        q[np.arange(target.shape[0]), target] = 1.0
    else:
        q = target.astype(dtype, copy=False)
    if label_smoothing:
        q = q * (1.0 - label_smoothing) + label_smoothing / num_classes
    return q


class CrossEntropy(Function):
    """Mean (or summed) cross-entropy of logits [B, K] against integer [B] or soft [B, K] targets."""

    @staticmethod
    def forward(ctx, logits, target, label_smoothing=0.0, reduction="mean"):
        q = soft_targets(target, logits.shape[1], label_smoothing, logits.dtype)
        logp = _log_softmax(logits, axis=1)
        per_row = -(q * logp).sum(axis=1)
        ctx.save_for_backward(logp, q)
        ctx.reduction = reduction
        if reduction == "none":
            return per_row
        total = per_row.sum()
        return np.asarray(total / logits.shape[0] if reduction == "mean" else total, dtype=logits.dtype)

    @staticmethod
    def backward(ctx, g):
        logp, q = ctx.saved_tensors
        grad = np.exp(logp) * q.sum(axis=1, keepdims=True) - q
        if ctx.reduction == "none":
            grad = grad * g[:, None]
        else:
            scale = g / logp.shape[0] if ctx.reduction == "mean" else g
            grad = grad * scale
        return grad.astype(logp.dtype, copy=False), None
