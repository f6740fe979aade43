"""Stochastic gradient descent with momentum, Nesterov momentum and L2 weight decay.

Per parameter θ with gradient g (PyTorch's formulation):

    g ← g + λ·θ                                  (weight decay λ, coupled: it enters the momentum)
    b ← g                     on the first step
    b ← μ·b + (1 − τ)·g       afterwards          (momentum μ, dampening τ)
    d ← g + μ·b  (Nesterov)   or   d ← b
    θ ← θ − η·d                                  (learning rate η)
"""
from __future__ import annotations

import numpy as np

from .optimizer import Optimizer


class SGD(Optimizer):
    """SGD(params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False)."""

    def __init__(self, params, lr: float, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        if not group["momentum"] >= 0:
            raise ValueError(f"momentum must be >= 0, got {group['momentum']}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0")

    def _update(self, data: np.ndarray, grad: np.ndarray, state: dict, group: dict) -> None:
        lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
        d = grad + wd * data if wd != 0 else grad
        if mu != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = d.copy()
            else:
                buf *= mu
                buf += (1 - group["dampening"]) * d
            d = d + mu * buf if group["nesterov"] else buf
        data -= lr * d
