"""Every model resets its own neurons at the start of forward: callers never need `reset_net`."""
from __future__ import annotations

import numpy as np
import pytest

from minisnn import Tensor, models, no_grad
from minisnn.spiking import BaseNeuron

SMALL = {
    "spikformer-tiny": dict(embed_dim=32, num_heads=2, depth=1, T=2, img_size=16),
    "msvit-tiny": dict(embed_dim=32, num_heads=2, depth=3, T=2, img_size=16),
    "qkformer-tiny": dict(embed_dim=32, num_heads=2, depth=3, T=2, img_size=16),
    "dysvit-tiny": dict(dim=32, depth=1, heads=2, mlp_ratio=2, img_size=16),
}


@pytest.mark.parametrize("name", list(SMALL))
def test_forward_resets_every_neuron_once_before_running(name):
    model = models.create(name, num_classes=3, **SMALL[name]).eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32)
    with no_grad():
        fresh = model(x).data
    calls = []
    for path, neuron in model.neurons():
        reset = neuron.reset_state

        def counted(path=path, reset=reset):
            calls.append(path)
            reset()
        neuron.reset_state = counted
        if isinstance(neuron, BaseNeuron):       # leave a membrane behind, as stepping would
            neuron.step(Tensor(np.ones((1,), np.float32)))
    with no_grad():
        again = model(x).data
    assert sorted(calls) == sorted(path for path, _ in model.neurons())
    assert all(n.v is None for _, n in model.neurons() if isinstance(n, BaseNeuron))
    np.testing.assert_array_equal(again, fresh)
