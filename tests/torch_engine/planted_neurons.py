"""A small PyTorch LIF with switchable bugs, for the tests of `minisnn verify-neuron`.

`PlantedLIF()` is a correct LIF: x_seq [T, B, ...] -> spikes, H = V + (X − V)/2, spike when H >= 1, hard
reset to 0, detached, ATan(alpha=2) surrogate, i.e. the claim "lif tau=2 surrogate=atan:2".  Each flag
plants one bug of a class seen in real libraries:

    surrogate="wrong"     the ATan derivative without its factor 1/2
    surrogate="nan_at_0"  a derivative that divides 0 by 0 where H = θ
    detach_reset=False    the reset lets the gradient through S although the claim says detached
    merge_batch=True      the batch axis merged into time (T·B steps), so samples share a membrane
    keep_state=True       the membrane survives the call (in `self.v`) and there is no reset method
"""
from __future__ import annotations

import math

import torch

ALPHA = 2.0


def atan_derivative(u):
    return ALPHA / 2 / (1 + (math.pi / 2 * ALPHA * u) ** 2)


DERIVATIVES = {
    "atan": atan_derivative,
    "wrong": lambda u: ALPHA / (1 + (math.pi / 2 * ALPHA * u) ** 2),
    "nan_at_0": lambda u: atan_derivative(u) * (u / u),
}


class _Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, derivative):
        ctx.save_for_backward(u)
        ctx.derivative = derivative
        return (u >= 0).to(u)

    @staticmethod
    def backward(ctx, g):
        (u,) = ctx.saved_tensors
        return g * ctx.derivative(u), None


class PlantedLIF(torch.nn.Module):
    def __init__(self, surrogate: str = "atan", detach_reset: bool = True, merge_batch: bool = False,
                 keep_state: bool = False):
        super().__init__()
        self.derivative = DERIVATIVES[surrogate]
        self.detach_reset = detach_reset
        self.merge_batch = merge_batch
        self.keep_state = keep_state
        self.v = None

    def forward(self, x_seq):
        shape = x_seq.shape
        if self.merge_batch:
            x_seq = x_seq.reshape(shape[0] * shape[1], 1, *shape[2:])
        v = torch.zeros_like(x_seq[0]) if self.v is None else self.v
        out = []
        for x in x_seq:
            h = v + (x - v) / 2.0
            s = _Spike.apply(h - 1.0, self.derivative)
            v = h * (1 - (s.detach() if self.detach_reset else s))
            out.append(s)
        if self.keep_state:
            self.v = v.detach()
        return torch.stack(out).reshape(shape)
