"""Global gradient-norm clipping (PyTorch's `clip_grad_norm_`).

    ‖g‖ = ( Σ over all parameters and elements g² )^(1/2)        (or max |g| for norm_type=inf)
    g ← g · min(1, max_norm / (‖g‖ + 1e-6))

All gradients are scaled by the same factor, so the update direction is kept.
A non-finite norm makes the factor NaN and poisons every gradient, as in
PyTorch; check the returned norm to skip such a step.
"""
from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from ..autograd.tensor import Tensor


def clip_grad_norm_(params: Iterable[Tensor] | Tensor, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> float:
    """Scale the gradients of `params` in place so their global norm is at most `max_norm`.

    Parameters without a gradient are ignored.  Returns the total norm before clipping.
    """
    params = [params] if isinstance(params, Tensor) else list(params)
    grads = [p.grad for p in params if p.grad is not None]
    max_norm = float(max_norm)
    norm_type = float(norm_type)
    if not max_norm >= 0:
        raise ValueError(f"max_norm must be >= 0, got {max_norm}")
    if not norm_type > 0:
        raise ValueError(f"norm_type must be > 0 (or inf), got {norm_type}")
    if not grads:
        return 0.0
    if norm_type == math.inf:
        total = max(float(np.max(np.abs(g), initial=0.0)) for g in grads)
    else:
        # accumulate in float64 whatever the gradient dtype
        total = sum(float(np.sum(np.abs(g.astype(np.float64)) ** norm_type)) for g in grads) ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"the total gradient norm is {total}; gradients cannot be clipped")
    coef = max_norm / (total + 1e-6)  # inf/inf gives NaN, as in PyTorch
    if not coef >= 1.0:  # also true for NaN
        with np.errstate(invalid="ignore", over="ignore"):  # inf·0 and inf·NaN give NaN, as in PyTorch
            for p in params:
                if p.grad is None:
                    continue
                if p.grad.flags.writeable:
                    p.grad *= p.grad.dtype.type(coef)
                else:
                    p.grad = p.grad * p.grad.dtype.type(coef)
    return total
