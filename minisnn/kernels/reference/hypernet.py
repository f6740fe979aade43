"""Dy-SViT's slope hypernetwork, the elementwise work around its one GEMM (NumPy reference).

The hypernetwork turns each token's membrane u_r [C] into a surrogate slope k_r.  Its first layer
is a GEMM that BLAS does (pre = u W1ᵀ, [R, H]); everything after it is a few values per token,
which these two kernels do in one pass each instead of a chain of small layers:

    forward:   h_r = ReLU(pre_r + b1)                 [H]   (ReLU(v) = v if v > 0 else 0; NaN → 0)
               z_r = h_r · w2 + b2
               k_r = low + span·σ(guard(z_r))               σ(x) = 1/(1 + e^−x)
    backward:  dz_r = dk_r·span·σ'(guard(z_r))·1[z_r finite]      σ' = σ(1 − σ)
               dh_r = dz_r·w2·1[h_r > 0]              [H]
               db1 = Σ_r dh_r,   dw2 = Σ_r dz_r·h_r,   db2 = Σ_r dz_r     (summed in float64)

guard is the models' NaN guard (NaN → 0, ±inf → ±GUARD, gradient 0 where it replaced a value).
The caller finishes the backward with BLAS: dW1 = dhᵀ u and, if wanted, du = dh W1.

Kernel contract (shared with `minisnn.kernels.jit.hypernet`): pre, h [R, H] and b1, w2 [H] are
C-contiguous arrays of one float dtype; b2, low, span are numbers; z, k, dk are [R].  Results are in
that dtype.
"""
from __future__ import annotations

import numpy as np
from scipy import special

from .bn_spike import GUARD

__all__ = ["slope_hypernet_forward", "slope_hypernet_backward"]


def _guard(z: np.ndarray) -> np.ndarray:
    return np.nan_to_num(z, nan=0.0, posinf=GUARD, neginf=-GUARD)


def slope_hypernet_forward(pre, b1, w2, b2, low, span):
    """(h [R, H], z [R], k [R]) from pre = u W1ᵀ [R, H]: the hidden layer, the logit and the slope."""
    dtype = pre.dtype.type
    v = pre + b1
    h = np.where(v > 0, v, dtype(0))
    z = h @ w2 + dtype(b2)
    k = dtype(low) + dtype(span) * special.expit(_guard(z))
    return h, z, k


def slope_hypernet_backward(dk, h, z, w2, span):
    """(dh [R, H], db1 [H], dw2 [H], db2 0-d) from dk [R], the cotangent of the slopes."""
    dtype = h.dtype.type
    sig = special.expit(_guard(z))
    dz = np.where(np.isfinite(z), dk * dtype(span) * (sig * (1 - sig)), dtype(0))
    dh = np.where(h > 0, dz[:, None] * w2, dtype(0))
    db1 = dh.sum(axis=0, dtype=np.float64).astype(h.dtype)
    dw2 = (dz[:, None] * h).sum(axis=0, dtype=np.float64).astype(h.dtype)
    db2 = np.asarray(dz.sum(dtype=np.float64), dtype=h.dtype)
    return dh, db1, dw2, db2
