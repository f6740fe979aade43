"""Undo NumPy broadcasting on a gradient.

If `y = f(x)` broadcast `x` of shape `shape` up to `grad.shape`, then
dL/dx = sum of `grad` over every broadcast axis:  leading axes that `x` lacks,
and axes where `x` had size 1.
"""
from __future__ import annotations

import numpy as np


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum `grad` down to `shape`.  grad: broadcast shape; returns an array of `shape`."""
    shape = tuple(shape)
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)
