"""Run a neuron on x_seq and return (spikes, dL/dx_seq) for the loss <g, spikes>: minisnn's or a PyTorch one."""
from __future__ import annotations

import numpy as np

from minisnn import Tensor
from minisnn import functional as F


def run_minisnn(neuron, x: np.ndarray, g: np.ndarray, step: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The whole sequence in one call, or (step=True) step by step from rest."""
    xt = Tensor(x, requires_grad=True)
    if step:
        neuron.reset_state()
        s = F.stack([neuron.step(xt[t]) for t in range(x.shape[0])], 0)
    else:
        s = neuron(xt)
    s.backward(g)
    return s.data, xt.grad


def run_torch(torch, fn, x: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """fn: a torch function of x_seq returning spikes (torch is passed in: importing it stays optional)."""
    xt = torch.tensor(x, requires_grad=True)
    s = fn(xt)
    s.backward(torch.tensor(g))
    return s.detach().numpy(), xt.grad.numpy()
