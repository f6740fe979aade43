"""Dy-SViT's slope hypernetwork, Numba version (same names, signatures and maths as `reference.hypernet`).

Each kernel is one pass over the tokens that handles a token's H hidden values together (H = 16 in
Dy-SViT): the forward adds the bias, applies the ReLU, takes the dot product with w2 and the slope; the
backward makes dh and adds the three parameter sums (float64) on the way.  As a chain of layers the same
work is seven graph nodes each way, each a pass of its own (`models/dysvit_hypernet.md` has the
measurements).  Both run on the calling thread: R·H is a few ten thousand values, less work than waking
the thread pool costs.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..reference.bn_spike import GUARD
from .surrogate import typed

__all__ = ["slope_hypernet_forward", "slope_hypernet_backward"]


@njit(cache=True, error_model="numpy", inline="always")
def _guarded_sigmoid(z):
    """σ(guard(z)) in z's float type: guard maps NaN → 0 and ±inf → ±GUARD; σ is taken without
    overflow (e^−|x| is at most 1)."""
    x = z
    if z != z:
        x = typed(z, 0.0)
    elif math.isinf(z):
        x = typed(z, GUARD) if z > 0 else typed(z, -GUARD)
    e = math.exp(-abs(x))
    one = typed(z, 1.0)
    return one / (one + e) if x >= 0 else e / (one + e)


@njit(cache=True, error_model="numpy")
def _forward(pre, b1, w2, b2, low, span, h, z, k):
    zero = typed(b2, 0.0)
    for r in range(pre.shape[0]):
        total = zero
        for j in range(pre.shape[1]):
            v = pre[r, j] + b1[j]
            v = v if v > zero else zero
            h[r, j] = v
            total += v * w2[j]
        zr = total + b2
        z[r] = zr
        k[r] = low + span * _guarded_sigmoid(zr)


def slope_hypernet_forward(pre, b1, w2, b2, low, span):
    """(h [R, H], z [R], k [R]); same contract as the reference."""
    dtype = pre.dtype.type
    h = np.empty_like(pre)
    z = np.empty(pre.shape[0], dtype=pre.dtype)
    k = np.empty_like(z)
    _forward(pre, b1, w2, dtype(b2), dtype(low), dtype(span), h, z, k)
    return h, z, k


@njit(cache=True, error_model="numpy")
def _backward(dk, h, z, w2, span, dh, sums):
    """dh, and sums[0] = Σ dz, sums[1 + j] = Σ dh[:, j] (db1), sums[1 + H + j] = Σ dz·h[:, j] (dw2), in float64."""
    zero = typed(span, 0.0)
    hidden = h.shape[1]
    sums[:] = 0.0
    for r in range(h.shape[0]):
        dz = zero
        if math.isfinite(z[r]):
            sig = _guarded_sigmoid(z[r])
            dz = dk[r] * span * (sig * (typed(sig, 1.0) - sig))
        sums[0] += dz
        for j in range(hidden):
            d = dz * w2[j] if h[r, j] > zero else zero
            dh[r, j] = d
            sums[1 + j] += d
            sums[1 + hidden + j] += np.float64(dz * h[r, j])


def slope_hypernet_backward(dk, h, z, w2, span):
    """(dh [R, H], db1 [H], dw2 [H], db2 0-d); same contract as the reference."""
    hidden = h.shape[1]
    dh = np.empty_like(h)
    sums = np.empty(1 + 2 * hidden, dtype=np.float64)
    _backward(dk, h, z, w2, h.dtype.type(span), dh, sums)
    sums = sums.astype(h.dtype)
    return dh, sums[1:1 + hidden], sums[1 + hidden:], sums[0].reshape(())
