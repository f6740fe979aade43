"""A fresh network that fires like a trained one, for the benchmarks (`bench_train.py`, `bench_ab.py`).

A freshly initialised network on random images hardly fires.  Its BatchNorms normalise with running
statistics 0 and 1 while their inputs vary far less, so in eval mode almost no neuron reaches its
threshold: spikformer-tiny fires 0.6 % in its first layer and nothing after it, and a training step,
which uses the batch's statistics, fires about 3 %.  Trained networks fire 4-44 % layer by layer (the
Linear inputs of the shipped speedrun-60 model, `minisnn/ops/event_linear.md`), and every kernel whose
work follows the spikes (the event-driven Linear, the attention kernels) would be timed on the wrong input.

`fire_like_trained(model, x, rate)` gives every BatchNorm the statistics of its own input on the batch
x (one train-mode pass with momentum 1), γ = 1, and one β shared by all of them, found by bisection so
that the mean firing rate of all neurons on x, in eval mode, is `rate`.  A training step on x then
fires at about the same rate, since the batch statistics it normalises with are those statistics.
The model's other weights keep their initial values.
"""
from __future__ import annotations

from minisnn import no_grad
from minisnn.models import FiringRateMonitor
from minisnn.nn import BatchNorm1d, BatchNorm2d
from minisnn.spiking import reset_net

BETA_RANGE = (-3.0, 3.0)   # at -3 no neuron fires, at 3 nearly all do


def fire_like_trained(model, x, rate: float, tolerance: float = 0.01, steps: int = 14) -> float:
    """Set model's BatchNorms so that it fires at `rate` (± tolerance) on the batch x; returns the rate
    reached (the closest of `steps` bisection steps).  Leaves the model in eval mode."""
    bns = [m for m in model.modules() if isinstance(m, (BatchNorm1d, BatchNorm2d)) and m.track_running_stats]
    lo, hi = BETA_RANGE
    best = None
    for _ in range(steps):
        beta = (lo + hi) / 2
        reached = _rate_with_beta(model, bns, x, beta)
        if best is None or abs(reached - rate) < abs(best[1] - rate):
            best = (beta, reached)
        if abs(reached - rate) <= tolerance:
            return reached
        lo, hi = (lo, beta) if reached > rate else (beta, hi)
    return _rate_with_beta(model, bns, x, best[0])


def _rate_with_beta(model, bns, x, beta: float) -> float:
    """Every BN: γ = 1, β = beta, running statistics of its input on x; then the eval-mode mean firing rate."""
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        if bn.weight is not None:
            bn.weight.data[...] = 1.0
        if bn.bias is not None:
            bn.bias.data[...] = beta
        bn.momentum = 1.0
    model.train()
    reset_net(model)
    with no_grad():
        model(x)
    for bn, momentum in zip(bns, momenta):
        bn.momentum = momentum
    model.eval()
    reset_net(model)
    with FiringRateMonitor(model) as monitor, no_grad():
        model(x)
    return monitor.mean_rate()
