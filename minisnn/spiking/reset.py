"""`reset_net`: put every neuron of a model back to rest."""
from __future__ import annotations

from ..nn.module import Module


def reset_net(model: Module) -> int:
    """Call `reset_state()` on every module of `model` (itself included) that has one.

    Needed between independent inputs only when neurons are driven step by step
    (`neuron.step`); the fused `neuron(x_seq)` always starts from rest.
    Returns how many modules were reset.
    """
    if not isinstance(model, Module):
        raise TypeError(f"reset_net expects a minisnn Module, got {type(model).__name__}")
    count = 0
    for module in model.modules():
        reset = getattr(module, "reset_state", None)
        if callable(reset):
            reset()
            count += 1
    return count


__all__ = ["reset_net"]
