"""Checkers for notebooks 00 and 12: the quickstart, and a task where time matters."""
from __future__ import annotations

import numpy as np

import minisnn
from minisnn import Tensor, models
from minisnn.data import load_sample, normalize
from minisnn.spiking import LIF

from .verdict import Wrong, checker, close


# ----------------------------------------------------------------------------- 00 quickstart

@checker
def check_00_model_input(model_input):
    """`model_input(images, normalization)`: uint8 [N, 32, 32, 3] -> the float32 [N, 3, 32, 32] model input."""
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    for name in ("dysvit", "upstream"):
        got = np.asarray(model_input(images, name))
        if got.dtype != np.float32:
            raise Wrong(f"{name}: the model takes float32, got {got.dtype}")
        close(f"normalization {name!r}", got, normalize(images.transpose(0, 3, 1, 2), name), rtol=0, atol=1e-5)
    return "channels first, /255, minus the mean, over the standard deviation, per channel"


def _quietest_layer():
    model = minisnn.pretrained("dysvit-tiny-cifar10")
    x = normalize(load_sample()["val"][0][:16], model.pretrained_info["normalization"])
    with models.FiringRateMonitor(model) as monitor, minisnn.no_grad():
        model(Tensor(x))
    rates = monitor.rates()
    name = min(rates, key=rates.get)
    return name, rates[name]


@checker
def check_00_quietest_layer(answer):
    """`answer`: (layer name, firing rate) of the neuron layer that fires least on the first 16 validation images."""
    name, rate = _quietest_layer()
    got_name, got_rate = answer
    if got_name != name:
        raise Wrong(f"{got_name!r} is not the quietest layer; look at every entry of monitor.rates()")
    close(f"the firing rate of {name}", got_rate, rate, rtol=1e-6, atol=1e-9)
    return f"{name} fires at {rate:.4f}: its 512 channels per token are the widest layer"


@checker
def check_00_logit_gradient(logit_gradient):
    """`logit_gradient(model, x, k)`: d(sum of logit k over the batch)/dx as an array of x's shape."""
    model = minisnn.pretrained("dysvit-tiny-cifar10")
    x = normalize(load_sample()["val"][0][:4], model.pretrained_info["normalization"])
    for k in (3, 8):
        got = logit_gradient(model, x, k)
        leaf = Tensor(x, requires_grad=True)
        model.zero_grad()
        model(leaf)[:, k].sum().backward()
        close(f"class {k}", got, leaf.grad, rtol=1e-5, atol=1e-8)
    return "one backward from the summed logit column gives the gradient for every image at once"


# ----------------------------------------------------------------------------- 12 when time matters

def _brightness_change(video):
    video = np.asarray(video, dtype=np.float64)
    return video - np.concatenate([np.zeros_like(video[:1]), video[:-1]])


@checker
def check_12_polarity_events(polarity_events):
    """`polarity_events(video, threshold)`: [T, 2, ...] float32, ON events in channel 0, OFF events in channel 1."""
    video = np.random.default_rng(12).random((6, 3, 5, 5)).astype(np.float32)
    for threshold in (0.5, 0.2):
        got = np.asarray(polarity_events(video, threshold))
        change = _brightness_change(video)
        expected = np.stack([change > threshold, -change > threshold], axis=1)
        close(f"threshold {threshold}", got, expected)
    return "ON where I[t] − I[t−1] > θ, OFF where I[t−1] − I[t] > θ; frame 0 is compared with darkness"


@checker
def check_12_gradient_reach(gradient_reach):
    """`gradient_reach(T, k, t)`: bool [T], the input steps that get gradient from the output at step t."""
    rng = np.random.default_rng(5)
    for T, k, t in ((12, 1, 11), (12, 3, 11), (12, 5, 7), (10, 4, 3), (8, 8, 6), (9, 2, 0)):
        x = Tensor(rng.uniform(0.0, 0.4, (T, 1, 3)), requires_grad=True)    # below threshold: no spike cuts the path
        lif, s_seq = LIF(tau=2.0), []
        for step in range(T):
            if step % k == 0 and lif.v is not None:
                lif.v = lif.v.detach()
            s_seq.append(lif.step(x[step]))
        s_seq[t].sum().backward()
        expected = np.abs(x.grad).sum(axis=(1, 2)) > 0
        got = np.asarray(gradient_reach(T, k, t), dtype=bool)
        if got.shape != expected.shape or not np.array_equal(got, expected):
            raise Wrong(f"T={T}, k={k}, t={t}: expected {expected.astype(int)}, got {got.astype(int)}")
    return "the steps ⌊t/k⌋·k .. t: causal, and cut at the start of t's window"


def _summed_frame_ceiling(grid=8, T=12, periods=(1, 2, 3)):
    """Best accuracy of any function of the summed ON-event frame, over every sample of notebook 12's task."""
    steps = ((0, 1), (0, -1), (1, 0), (-1, 0))
    best = {}                                      # summed frame -> {direction: probability}
    for direction, (dr, dc) in enumerate(steps):
        for period in periods:
            for phase in range(period):
                for r0 in range(grid):
                    for c0 in range(grid):
                        video = np.zeros((T, grid, grid))
                        for t in range(T):
                            m = (t + phase) // period
                            video[t, (r0 + m * dr) % grid, (c0 + m * dc) % grid] = 1.0
                        key = (_brightness_change(video) > 0.5).sum(axis=0).tobytes()
                        weight = 1.0 / (len(steps) * grid * grid * len(periods) * period)
                        votes = best.setdefault(key, {})
                        votes[direction] = votes.get(direction, 0.0) + weight
    return sum(max(votes.values()) for votes in best.values())


@checker
def check_12_t1_ceiling(ceiling):
    """`ceiling`: the best accuracy any classifier of the summed event frame can reach on notebook 12's task."""
    expected = _summed_frame_ceiling()
    close("the ceiling", float(ceiling), expected, rtol=0, atol=1e-9)
    return f"{expected:g}: each summed frame of a horizontal motion is shared by right and left, half and half"
