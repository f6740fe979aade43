"""bench/_firing.py: the benchmarks' fresh networks are set to fire like trained ones."""
from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

from minisnn import models, no_grad
from minisnn.models import FiringRateMonitor
from minisnn.nn import init
from minisnn.spiking import reset_net

_PATH = os.path.join(os.path.dirname(__file__), "..", "..", "bench", "_firing.py")
_spec = importlib.util.spec_from_file_location("bench_firing", _PATH)
firing = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(firing)


def small_net(name: str):
    init.manual_seed(0)
    return models.create(name, embed_dim=32, depth=2 if name.startswith("qkformer") else 1, T=2)


def mean_rate(model, x, train: bool) -> float:
    model.train(train)
    reset_net(model)
    with FiringRateMonitor(model) as monitor, no_grad():
        model(x)
    return monitor.mean_rate()


@pytest.mark.parametrize("name", ["spikformer-tiny", "qkformer-tiny"])
@pytest.mark.parametrize("rate", [0.1, 0.3])
def test_a_fresh_network_is_set_to_fire_at_the_rate_asked(name, rate):
    model = small_net(name)
    x = np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32)
    assert mean_rate(model, x, train=False) < 0.02                 # fresh: it hardly fires in eval mode
    reached = firing.fire_like_trained(model, x, rate)
    assert abs(reached - rate) <= 0.01 and not model.training
    assert abs(mean_rate(model, x, train=False) - reached) < 1e-12   # what it reports is what it does
    assert abs(mean_rate(model, x, train=True) - rate) < 0.05         # a training step fires alike
