"""Check backward against central finite differences, in float64.

For y = fn(x_1, ..., x_n) and a random cotangent v (same shape as y), the
scalar L = <v, y> has dL/dx_i = vᵀ J_i; its numerical estimate is

    (L(x + eps·e_j) − L(x − eps·e_j)) / (2·eps)      for every element j.

float64 matters: with eps ~ 1e-6 the truncation error is O(eps²) while the
rounding error is O(machine_eps / eps) — ~1e-10 in float64 but ~0.1 in float32.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .grad_mode import no_grad
from .tensor import Tensor


class GradcheckError(AssertionError):
    """Raised when analytic and numerical gradients disagree."""


def _prepare(inputs) -> list:
    prepared = []
    for x in inputs:
        if isinstance(x, Tensor):
            if x.dtype.kind == "f":
                t = Tensor(x.data.astype(np.float64), requires_grad=x.requires_grad)
            else:
                t = x
        elif isinstance(x, np.ndarray) and x.dtype.kind == "f":
            t = Tensor(x.astype(np.float64), requires_grad=True)
        else:
            t = x
        prepared.append(t)
    return prepared


def _scalar(fn, args, v) -> float:
    out = fn(*args)
    return float(np.sum(out.data * v))


def gradcheck(
    fn: Callable[..., Tensor],
    inputs: Sequence,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    seed: int = 0,
    raise_exception: bool = True,
) -> bool:
    """Compare `fn`'s backward with central differences for every input that requires grad.

    fn: takes the inputs (float ones as float64 Tensors) and returns one Tensor.
    inputs: arrays / Tensors / other objects; float arrays require grad, a Tensor
        keeps its own `requires_grad`, anything else is passed through untouched.
    Passes when |analytic − numeric| <= atol + rtol·|numeric| everywhere.
    On failure raises GradcheckError naming the input, the worst element and both values
    (or returns False when `raise_exception=False`).
    """
    args = _prepare(inputs)
    checked = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires a gradient")
    out = fn(*args)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    if out.dtype != np.float64:
        raise TypeError(f"gradcheck: fn returned {out.dtype}; run it in float64")
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(out.shape)
    for i in checked:
        args[i].grad = None
    out.backward(v)

    for i in checked:
        x = args[i]
        analytic = np.zeros(x.shape) if x.grad is None else x.grad
        numeric = np.zeros(x.shape)
        data = x.data  # perturbed in place, element by element (any memory layout)
        with no_grad():
            for j in np.ndindex(*x.shape):
                old = data[j]
                data[j] = old + eps
                plus = _scalar(fn, args, v)
                data[j] = old - eps
                minus = _scalar(fn, args, v)
                data[j] = old
                numeric[j] = (plus - minus) / (2 * eps)
        err = np.abs(analytic - numeric)
        bound = atol + rtol * np.abs(numeric)
        if not np.all(err <= bound):
            worst = np.unravel_index(np.argmax(err - bound), x.shape)
            msg = (
                f"gradcheck failed for input {i} (shape {x.shape}) at index {tuple(int(k) for k in worst)}: "
                f"analytic {analytic[worst]:.10g} vs numeric {numeric[worst]:.10g} "
                f"(|diff| {err[worst]:.3g} > tolerance {bound[worst]:.3g}; atol={atol}, rtol={rtol})"
            )
            if raise_exception:
                raise GradcheckError(msg)
            return False
    return True
