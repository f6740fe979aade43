"""Finiteness checks, NumPy reference.

`all_finite(x)` tells whether an array holds no NaN and no ±inf.  Guards such as Dy-SViT's
`nan_to_num` call it on every activation they see; in the normal case the answer is yes and
the guard passes its input through untouched, so this check is all the guard costs.

Kernel contract (shared with `minisnn.kernels.jit.finite`): `x` is a float32 or float64 array of
any shape.
"""
from __future__ import annotations

import numpy as np

__all__ = ["all_finite"]


def all_finite(x: np.ndarray) -> bool:
    """True when no element of x is NaN, +inf or −inf (an empty x is all finite)."""
    return bool(np.isfinite(x).all())
