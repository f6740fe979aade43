"""Checkers for notebooks 13 and 14: the round trip to PyTorch, your own neuron and surrogate.

PyTorch is optional for minisnn, so the checkers that need it import it when they run.
"""
from __future__ import annotations

import math

import numpy as np

import minisnn
from minisnn import models
from minisnn.nn import init

from .verdict import Wrong, checker, close


# ----------------------------------------------------------------------------- 13 round trip to PyTorch

@checker
def check_13_largest_difference(largest_difference):
    """`largest_difference(model, module)`: max |difference| over the state_dicts; KeyError when the keys differ."""
    import torch  # optional dependency: only this checker needs it

    from minisnn.torch import to_torch

    init.manual_seed(3)
    model = models.create("dysvit-tiny", dim=16, depth=1, heads=2).to_dtype(np.float64)
    module = to_torch(model)
    got = float(largest_difference(model, module))
    if got != 0.0:
        raise Wrong(f"a fresh to_torch copy is equal bit for bit, you found a difference of {got}")
    with torch.no_grad():
        module.state_dict()["blocks.0.mlp.fc2.bias"][5] += 0.25
        module.state_dict()["norm.num_batches_tracked"] += 3
    got = float(largest_difference(model, module))
    if got != 3.0:
        raise Wrong(f"after changing one bias by 0.25 and num_batches_tracked by 3 the answer is 3.0, you gave {got}")
    partial = torch.nn.Module()
    partial.state_dict = lambda: {k: v for k, v in module.state_dict().items() if k != "head.bias"}
    try:
        largest_difference(model, partial)
    except KeyError as err:
        if "head.bias" not in str(err):
            raise Wrong(f"the KeyError should name the missing key 'head.bias', it says {err}") from None
    else:
        raise Wrong("a module without 'head.bias' should raise a KeyError naming it")
    return "0 for a fresh copy, the largest change otherwise, integer buffers included; missing keys named"


@checker
def check_13_buffer_count(count):
    """`count`: the number of buffers (state_dict entries that are not parameters) of dysvit-tiny."""
    model = models.create("dysvit-tiny")
    expected = len(model.state_dict()) - len(list(model.named_parameters()))
    if int(count) != expected:
        raise Wrong(f"{count}: count the state_dict entries that named_parameters() does not list")
    return f"{expected}: running_mean, running_var and num_batches_tracked of each of its {expected // 3} BatchNorms"


# ----------------------------------------------------------------------------- 14 your own neuron and surrogate

@checker
def check_14_tanh_derivatives(tanh_derivatives):
    """`tanh_derivatives(x, alpha)` -> (∂p/∂x, ∂p/∂α) of p = (1 + tanh(αx))/2, against central differences."""
    x = np.linspace(-3.0, 3.0, 121)
    h = 1e-6
    for alpha in (1.0, 2.5, 6.0):
        p = lambda x, a: 0.5 * (1.0 + np.tanh(a * x))  # noqa: E731
        dx, da = tanh_derivatives(x, alpha)
        close(f"dp/dx at alpha = {alpha}", dx, (p(x + h, alpha) - p(x - h, alpha)) / (2 * h), rtol=1e-6, atol=1e-8)
        close(f"dp/dalpha at alpha = {alpha}", da, (p(x, alpha + h) - p(x, alpha - h)) / (2 * h), rtol=1e-6, atol=1e-8)
    return "α/2·(1 − tanh²αx) and x/2·(1 − tanh²αx): the sigmoid family at twice the slope"


def _resonate_and_fire_spikes(x_seq, period, rho, v_threshold=1.0):
    """Spike counts [B] of notebook 14's resonate-and-fire neuron on x_seq [T, B], in NumPy."""
    c, s = np.cos(2 * np.pi / period), np.sin(2 * np.pi / period)
    v, w = np.zeros(x_seq.shape[1]), np.zeros(x_seq.shape[1])
    count = np.zeros(x_seq.shape[1])
    for x in x_seq:
        h = rho * (c * v - s * w) + x
        w = rho * (s * v + c * w)
        fired = h >= v_threshold
        v, w = np.where(fired, 0.0, h), np.where(fired, 0.0, w)
        count += fired
    return count


@checker
def check_14_firing_gaps(firing_gaps):
    """`firing_gaps(period, rho, amplitude)`: the sorted gaps in 1..12 at which four pulses make the neuron fire."""
    gaps = np.arange(1, 13)
    for period, rho, amplitude in ((6.0, 0.95, 0.4), (8.0, 0.98, 0.35), (5.0, 0.7, 0.6), (10.0, 0.9, 0.45)):
        pulses = np.zeros((40, len(gaps)))
        for i, gap in enumerate(gaps):
            pulses[1:1 + 4 * gap:gap, i] = amplitude
        expected = gaps[_resonate_and_fire_spikes(pulses, period, rho) > 0].tolist()
        got = sorted(int(g) for g in firing_gaps(period, rho, amplitude))
        if got != expected:
            raise Wrong(f"period {period}, rho {rho}, amplitude {amplitude}: expected gaps {expected}, got {got}")
    return "the pulses add up when they arrive as the oscillation comes back to its peak"


@checker
def check_14_failing_checks(failing):
    """`failing`: the names of verify_neuron's checks that a LIF with an undetached reset (claimed detached) fails."""
    import torch  # optional dependency: only this checker needs it

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
                v = h * (1 - s)
                s_seq.append(s)
            return torch.stack(s_seq)

    expected = set(minisnn.verify_neuron(UndetachedLIF(), "lif tau=2 surrogate=atan:2 detach_reset=1").failed)
    if set(failing) != expected:
        raise Wrong(f"the report fails {sorted(expected)}, you said {sorted(set(failing))}")
    return f"{sorted(expected)}: the spikes and the one-step surrogate cannot see the reset, gradients through time can"
