"""Solutions to the exercises of notebook 00 (quickstart)."""
import numpy as np

import minisnn
from minisnn import Tensor, models
from minisnn.data import load_sample, normalization_stats, normalize


# Exercise 1: channels first, then (x/255 − μ)/σ per channel, in float32.
def model_input(images, normalization):
    mean, std = normalization_stats(normalization)
    x = np.asarray(images).transpose(0, 3, 1, 2).astype(np.float32) / 255
    return ((x - mean.reshape(1, 3, 1, 1)) / std.reshape(1, 3, 1, 1)).astype(np.float32)


# Exercise 2: the monitor's rates on the first 16 validation images; the smallest is an MLP hidden layer.
def quietest_layer():
    model = minisnn.pretrained("dysvit-tiny-cifar10")
    x = normalize(load_sample()["val"][0][:16], model.pretrained_info["normalization"])
    with models.FiringRateMonitor(model) as monitor, minisnn.no_grad():
        model(Tensor(x))
    rates = monitor.rates()
    name = min(rates, key=rates.get)
    return name, rates[name]


# Exercise 3: one backward from the sum of the logit column k.
def logit_gradient(model, x, k):
    leaf = Tensor(x, requires_grad=True)
    model(leaf)[:, k].sum().backward()
    return leaf.grad


CHECKED = {
    "check_00_model_input": (model_input,),
    "check_00_quietest_layer": (quietest_layer(),),
    "check_00_logit_gradient": (logit_gradient,),
}
