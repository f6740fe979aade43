"""Batch-normalisation kernels, NumPy reference (the specification of `kernels/jit/norm.py`).

Every kernel works on x [N, C, L]: channel c's statistics pool the N·L values x[:, c, :]
(BatchNorm1d on [N, C] is L = 1, on [N, C, L] as is; BatchNorm2d is [N, C, H·W]).
With M = N·L values per channel:

    μ = Σ x / M,   σ² = Σ (x − μ)² / M          (biased; statistics in float64)
    x̂ = (x − μ)·invstd,   invstd = 1/√(σ² + ε),   y = γ·x̂ + β

Backward of the training-mode normalisation (μ, σ² depend on x; derivation: `ops/norm.md`):

    dx = γ·invstd·(g − Σg/M − (x − μ)·invstd²·Σ g·(x − μ)/M),   dγ = Σ g·x̂,   dβ = Σ g

In eval mode μ, σ² are constants (running statistics) and the layer is y = a·x + b with
a = γ·invstd, b = β − μ·a, so dx = a·g.

Dtypes: x, g, γ, β share a float dtype (float32 or float64) and y, dx keep it; per-channel sums
are accumulated in float64 (as PyTorch does on the CPU), so μ, σ², invstd, dγ, dβ come back as
float64 [C] and the caller casts what it stores.  Arrays must be C-contiguous.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "batch_norm_moments",
    "batch_norm_train_forward",
    "batch_norm_train_backward",
    "batch_norm_train_dx",
    "batch_norm_eval_forward",
    "batch_norm_eval_backward",
]


def channel_sum(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Σ a (or Σ a·b) per channel for a, b [N, C, L] → float64 [C].

    Each row of L values is summed in the input precision (BLAS / einsum); the N row sums
    are then accumulated in float64.  A helper, not a kernel (not in `__all__`).
    """
    if a.shape[2] == 1:
        a2 = a[:, :, 0]
        return (a2 if b is None else a2 * b[:, :, 0]).sum(axis=0, dtype=np.float64)
    if b is None:
        rows = a @ np.ones(a.shape[2], dtype=a.dtype)
    else:
        rows = np.einsum("ncl,ncl->nc", a, b)
    return rows.sum(axis=0, dtype=np.float64)


def _per_channel(v: np.ndarray, dtype) -> np.ndarray:
    """A float64 [C] vector cast to `dtype` and shaped [C, 1] to broadcast over x [N, C, L]."""
    return v.astype(dtype)[:, None]


def batch_norm_moments(x: np.ndarray):
    """(μ, σ²) per channel of x [N, C, L]: float64 [C], σ² biased."""
    m = x.shape[0] * x.shape[2]
    mean = channel_sum(x) / m
    centred = x - _per_channel(mean, x.dtype)
    return mean, channel_sum(centred, centred) / m


def batch_norm_train_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float):
    """Training-mode BatchNorm with batch statistics.

    x [N, C, L], weight γ [C], bias β [C] (x's dtype) →
    (y [N, C, L] = γ·(x − μ)·invstd + β,  μ [C],  σ² [C] (biased),  invstd [C]), the last three float64.
    """
    mean, var = batch_norm_moments(x)
    invstd = 1.0 / np.sqrt(var + eps)
    y = (x - _per_channel(mean, x.dtype)) * _per_channel(weight * invstd, x.dtype)
    y += bias[:, None]
    return y, mean, var, invstd


def batch_norm_train_backward(g: np.ndarray, x: np.ndarray, mean: np.ndarray, invstd: np.ndarray,
                              weight: np.ndarray):
    """Gradients of `batch_norm_train_forward` for the cotangent g [N, C, L].

    mean, invstd: float64 [C] from the forward; weight γ [C].
    Returns (dx [N, C, L] in g's dtype, dγ = Σ g·x̂ float64 [C], dβ = Σ g float64 [C]).
    """
    sum_g = channel_sum(g)
    sum_gc = channel_sum(g, x - _per_channel(mean, x.dtype))
    return batch_norm_train_dx(g, x, mean, invstd, weight, sum_g, sum_gc), sum_gc * invstd, sum_g


def batch_norm_train_dx(g: np.ndarray, x: np.ndarray, mean: np.ndarray, invstd: np.ndarray, weight: np.ndarray,
                        sum_g: np.ndarray, sum_gc: np.ndarray) -> np.ndarray:
    """dx of training-mode BatchNorm [N, C, L] (g's dtype) from the cotangent g, the forward's μ and
    invstd, γ, and the sums Σ g and Σ g·(x − μ) (float64 [C]) that a caller may have taken already."""
    m = x.shape[0] * x.shape[2]
    k = weight * invstd  # γ·invstd, float64
    dx = g * _per_channel(k, g.dtype)
    dx -= _per_channel(k * sum_g / m, g.dtype)
    dx -= (x - _per_channel(mean, x.dtype)) * _per_channel(k * invstd * invstd * sum_gc / m, g.dtype)
    return dx


def batch_norm_eval_forward(x: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Eval-mode BatchNorm as a per-channel affine map: y = scale[c]·x + shift[c].

    x [N, C, L]; scale = γ·invstd and shift = β − μ·scale [C] in x's dtype.
    """
    y = x * scale[:, None]
    y += shift[:, None]
    return y


def batch_norm_eval_backward(g: np.ndarray, x: np.ndarray, mean: np.ndarray, invstd: np.ndarray,
                             weight: np.ndarray):
    """Gradients of eval-mode BatchNorm (fixed μ, invstd float64 [C]) for the cotangent g [N, C, L].

    Returns (dx = γ·invstd·g [N, C, L], dγ = Σ g·(x − μ)·invstd float64 [C], dβ = Σ g float64 [C]).
    """
    centred = x - _per_channel(mean, x.dtype)
    dx = g * _per_channel(weight * invstd, g.dtype)
    return dx, channel_sum(g, centred) * invstd, channel_sum(g)
