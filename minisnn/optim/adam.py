"""Adam (L2 weight decay added to the gradient) and AdamW (decoupled weight decay).

Per parameter θ with gradient g, step count t = 1, 2, ...:

    g ← g + λ·θ                       Adam only (the decay is rescaled by the moments)
    θ ← θ·(1 − η·λ)                   AdamW only (decay applied directly, before the Adam step)
    m ← β₁·m + (1 − β₁)·g             written as m + (1 − β₁)(g − m), as PyTorch's lerp
    v ← β₂·v + (1 − β₂)·g²
    v̂ ← max(v̂, v)                    amsgrad only; then v̂ replaces v below
    θ ← θ − η/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)

The two bias corrections undo the zero initialisation of m and v.
"""
from __future__ import annotations

import math

import numpy as np

from .optimizer import Optimizer


class Adam(Optimizer):
    """Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False)."""

    decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad))

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        betas = tuple(group["betas"])
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {group['betas']}")
        group["betas"] = betas
        if not group["eps"] >= 0:
            raise ValueError(f"eps must be >= 0, got {group['eps']}")

    def _update(self, data: np.ndarray, grad: np.ndarray, state: dict, group: dict) -> None:
        lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(data)
            state["exp_avg_sq"] = np.zeros_like(data)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(data)
        state["step"] += 1
        t = state["step"]
        if wd != 0:
            if self.decoupled:
                data *= 1 - lr * wd
            else:
                grad = grad + wd * data
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m += (1 - beta1) * (grad - m)
        v *= beta2
        v += (1 - beta2) * (grad * grad)
        if group["amsgrad"]:
            v = np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
        step_size = lr / (1 - beta1 ** t)
        denom = np.sqrt(v) / math.sqrt(1 - beta2 ** t) + eps
        data -= step_size * (m / denom)


class AdamW(Adam):
    """AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False).

    Weight decay shrinks θ by the factor (1 − η·λ) each step, independently of the moments.
    """

    decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
