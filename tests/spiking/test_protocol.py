"""The neuron protocol: which modules are neurons, in what order they are found, what reset_net resets."""
from __future__ import annotations

import numpy as np
import pytest

from minisnn import Tensor, nn
from minisnn.models import create
from minisnn.models.dysvit_neuron import DynamicSlopeNeuron
from minisnn.models.monitor import is_neuron as monitor_is_neuron
from minisnn.spiking import IF, LIF, BaseNeuron, Neuron, ParametricLIF, is_neuron, named_neurons, reset_net


@pytest.mark.parametrize("make", [LIF, IF, ParametricLIF, lambda: DynamicSlopeNeuron(4)],
                         ids=["LIF", "IF", "ParametricLIF", "DynamicSlopeNeuron"])
def test_the_library_neurons_satisfy_the_protocol(make):
    neuron = make()
    assert is_neuron(neuron) and isinstance(neuron, Neuron)
    assert neuron.record is False and neuron.last_s_seq is None


class _StatefulLayer(nn.Module):
    """Has reset_state but no record flag / last_s_seq: not a neuron."""

    def __init__(self):
        super().__init__()
        self.resets = 0

    def forward(self, x):
        return x

    def reset_state(self):
        self.resets += 1


class _NotAModule:
    record = False
    last_s_seq = None

    def forward(self, x_seq):
        return x_seq

    def reset_state(self):
        pass


@pytest.mark.parametrize("obj", [nn.Linear(2, 2), nn.BatchNorm1d(2), nn.Module(), _StatefulLayer(), _NotAModule()],
                         ids=["Linear", "BatchNorm1d", "Module", "stateful layer", "not a Module"])
def test_other_objects_are_not_neurons(obj):
    assert not is_neuron(obj)


def test_the_monitor_uses_the_same_test():
    assert monitor_is_neuron is is_neuron


def test_named_neurons_in_registration_order_and_reset_net_resets_only_them():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = LIF()
            self.fc = nn.Linear(3, 3)
            self.stateful = _StatefulLayer()
            self.inner = nn.Module()
            self.inner.b = IF(v_reset=None)

    net = Net()
    assert [(p, type(m)) for p, m in named_neurons(net)] == [("a", LIF), ("inner.b", IF)]
    x = Tensor(np.full((2, 3), 0.5, np.float32))
    net.a.step(x)
    net.inner.b.step(x)
    assert reset_net(net) == 2
    assert net.a.v is None and net.inner.b.v is None and net.stateful.resets == 0
    assert named_neurons(net.a) == [("", net.a)]                   # a neuron on its own


@pytest.mark.parametrize("name", ["spikformer-tiny", "msvit-tiny", "dysvit-tiny"])
def test_models_list_their_neurons_through_the_protocol(name):
    model = create(name, num_classes=3)
    neurons = model.neurons()
    assert neurons == named_neurons(model) and len(neurons) > 0
    expected = BaseNeuron if name != "dysvit-tiny" else DynamicSlopeNeuron
    assert all(isinstance(m, expected) for _, m in neurons)
    assert len(neurons) == sum(isinstance(m, expected) for m in model.modules())
