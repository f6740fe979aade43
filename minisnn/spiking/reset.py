"""`reset_net`: put every neuron of a model back to rest."""
from __future__ import annotations

from ..nn.module import Module
from .protocol import named_neurons


def reset_net(model: Module) -> int:
    """Call `reset_state()` on every neuron of `model` (itself included; see `spiking.protocol`).

    The models call it at the start of their forward, so each input starts from rest.  On
    its own it is needed between independent inputs only when neurons are driven step by
    step (`neuron.step`); the fused `neuron(x_seq)` always starts from rest.
    Returns how many neurons were reset.
    """
    if not isinstance(model, Module):
        raise TypeError(f"reset_net expects a minisnn Module, got {type(model).__name__}")
    neurons = named_neurons(model)
    for _, neuron in neurons:
        neuron.reset_state()
    return len(neurons)


__all__ = ["reset_net"]
