"""Solutions to the exercises of notebook 14 (your own neuron and surrogate)."""
import math

import numpy as np

import minisnn
from minisnn.spiking import CustomNeuron


# Exercise 1: d/dz tanh z = 1 − tanh² z; the chain rule gives α for x and x for α.
def tanh_derivatives(x, alpha):
    sech2 = 1.0 - np.tanh(alpha * np.asarray(x, dtype=np.float64)) ** 2
    return 0.5 * alpha * sech2, 0.5 * np.asarray(x) * sech2


class ResonateAndFire(CustomNeuron):
    """Notebook 14's resonate-and-fire neuron: (V, W) rotates by 2π/period and shrinks by rho per step.
    Spike when H >= v_threshold; hard reset V = v_reset and W = 0, detached when detach_reset=True."""

    extra_state = {"w": 0.0}

    def __init__(self, period=6.0, rho=0.95, **settings):
        super().__init__(**settings)
        self.cos, self.sin, self.rho = math.cos(2 * math.pi / period), math.sin(2 * math.pi / period), rho

    def charge(self, x, state):
        v, w = state["v"], state["w"]
        state["w"] = self.rho * (self.sin * v + self.cos * w)
        return self.rho * (self.cos * v - self.sin * w) + x, state

    def after_spike(self, s, state):
        state["w"] = state["w"] * (1.0 - s)
        return state


# Exercise 2: one sample per gap, 40 steps from rest; keep the gaps whose sample spiked.
def firing_gaps(period, rho, amplitude):
    gaps = np.arange(1, 13)
    pulses = np.zeros((40, len(gaps), 1))
    for i, gap in enumerate(gaps):
        pulses[1:1 + 4 * gap:gap, i] = amplitude
    counts = ResonateAndFire(period=period, rho=rho)(pulses).data.sum(axis=(0, 2))
    return gaps[counts > 0].tolist()


# Exercise 3: an undetached reset changes the gradients through time only.
FAILING = {"input gradient", "reset detachment"}


def undetached_reset_report():
    """Run verify_neuron on a PyTorch LIF whose reset lets the gradient through (needs torch)."""
    import torch  # optional dependency: only this function needs it

    class ATanSpike(torch.autograd.Function):
        @staticmethod
        def forward(ctx, u):
            ctx.save_for_backward(u)
            return (u >= 0).to(u)

        @staticmethod
        def backward(ctx, g):
            (u,) = ctx.saved_tensors
            return g / (1 + (math.pi * u) ** 2)

    class UndetachedLIF(torch.nn.Module):
        def forward(self, x_seq):
            v, s_seq = torch.zeros_like(x_seq[0]), []
            for x in x_seq:
                h = v + (x - v) / 2.0
                s = ATanSpike.apply(h - 1.0)
                v = h * (1 - s)                      # the spike is not detached
                s_seq.append(s)
            return torch.stack(s_seq)

    return minisnn.verify_neuron(UndetachedLIF(), "lif tau=2 surrogate=atan:2 detach_reset=1")


CHECKED = {
    "check_14_tanh_derivatives": (tanh_derivatives,),
    "check_14_firing_gaps": (firing_gaps,),
    "check_14_failing_checks": (FAILING,),
}
