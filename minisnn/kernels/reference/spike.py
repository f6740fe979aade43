"""The kernels of `spike()`, NumPy reference: the forward s = H(u − θ), and the smooth forward
and straight-through backward for one surrogate slope per row (per token).

    spike_forward(u, θ)                          s = H(u − θ) in u's dtype (H(0) = 1), and the NaN count
    surrogate_primitive_rows(u, θ, α, kind)      p(u − θ; α_r)
    spike_backward_rows(g, u, θ, α, kind, need)  (g·∂p/∂x,  Σ_c g·∂p/∂α per row)

The `*_rows` kernels take the membrane as rows u [R, C] (C channels per row, e.g. the tokens of
[B, N, C] with R = B·N), one slope per row alpha [R] of u's dtype and the threshold θ as a
number: they subtract θ themselves and never broadcast the slope to u's shape.
`spike_backward_rows` returns the slope gradient already summed over each row, accumulated in
float64 (the Numba twin sums each row in a fixed order on one thread, so its result does not
depend on the thread count).  The surrogate families and `kind` codes are those of
`reference.surrogate`; the design and its measurements: `minisnn/spiking/spike_kernels.md`.
"""
from __future__ import annotations

import numpy as np

from ..lif_params import fires
from .surrogate import surrogate_d_alpha, surrogate_derivative, surrogate_primitive

__all__ = ["spike_forward", "surrogate_primitive_rows", "spike_backward_rows"]


def spike_forward(u: np.ndarray, threshold: float):
    """(s, n_nan): s = H(u − θ) as 0/1 in u's dtype (u ≥ θ fires; NaN never does), and the number
    of NaN values in u, which the caller refuses.  u: float array of any shape; s has its shape."""
    s = fires(u, u.dtype.type(threshold)).astype(u.dtype)
    return s, int(np.count_nonzero(np.isnan(u)))


def surrogate_primitive_rows(u: np.ndarray, threshold: float, alpha: np.ndarray, kind: int) -> np.ndarray:
    """p(u − θ; α_r) with one slope per row.  u [R, C], alpha [R]; returns [R, C]."""
    return surrogate_primitive(u - u.dtype.type(threshold), alpha.reshape(-1, 1), kind)


def spike_backward_rows(g: np.ndarray, u: np.ndarray, threshold: float, alpha: np.ndarray, kind: int,
                        need_alpha: bool):
    """Backward of s = H(u − θ) with one slope per row, under s ≈ p(u − θ; α_r).

    g, u [R, C], alpha [R].  Returns (g·∂p/∂x [R, C], Σ_c g·∂p/∂α [R] summed in float64 and
    returned in u's dtype, or an empty array when not needed).
    """
    x = u - u.dtype.type(threshold)
    a = alpha.reshape(-1, 1)
    gu = g * surrogate_derivative(x, a, kind)
    if not need_alpha:
        return gu, np.empty((0,), u.dtype)
    terms = g * surrogate_d_alpha(x, a, kind)
    return gu, terms.sum(axis=1, dtype=np.float64).astype(u.dtype)
