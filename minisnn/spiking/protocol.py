"""What a spiking neuron is: the `Neuron` protocol, and `is_neuron` / `named_neurons` to find them.

    from minisnn.spiking import is_neuron, named_neurons
    [path for path, _ in named_neurons(model)]      # ["patch_embed1.proj_lif", ...] in registration order

A neuron is a Module that has

    forward(x_seq)      spikes for a whole input (its docstring states the spike condition, the reset
                        and whether the reset is detached)
    reset_state()       forget any state carried between calls (`reset_net` calls it)
    record              bool flag: when True, forward keeps its output spikes ...
    last_s_seq          ... here, as an ndarray (None until a recorded call)

`LIF`, `IF`, `ParametricLIF` (through `BaseNeuron`) and Dy-SViT's `DynamicSlopeNeuron` satisfy it
structurally: nothing has to inherit from `Neuron`.  Every "is this a neuron?" test of minisnn
(the firing-rate monitor, `reset_net`, the models' `neurons()`) is `is_neuron`.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from ..nn.module import Module


@runtime_checkable
class Neuron(Protocol):
    """A spiking neuron module (see the module docstring); checked with `is_neuron`."""

    record: bool
    last_s_seq: np.ndarray | None

    def forward(self, x_seq, *args, **kwargs): ...

    def reset_state(self) -> None: ...


_VERDICTS: dict[type, bool] = {}  # the protocol check is slow (one getattr per member): once per class


def is_neuron(module) -> bool:
    """True for a Module that satisfies the `Neuron` protocol (checked once per class)."""
    cls = type(module)
    verdict = _VERDICTS.get(cls)
    if verdict is None:
        verdict = _VERDICTS[cls] = isinstance(module, Module) and isinstance(module, Neuron)
    return verdict


def named_neurons(model: Module) -> list[tuple[str, Module]]:
    """(path, neuron) for every neuron of `model` (itself included), in registration order."""
    return [(path, m) for path, m in model.named_modules() if is_neuron(m)]


__all__ = ["Neuron", "is_neuron", "named_neurons"]
