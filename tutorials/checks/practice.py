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
