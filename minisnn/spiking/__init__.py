"""The spiking core: neurons, surrogate gradients and the spike function.

    from minisnn.spiking import LIF, IF, ParametricLIF, surrogate, spike, reset_net

    lif = LIF(tau=2.0, v_threshold=1.0, surrogate=surrogate.Sigmoid(alpha=4.0))
    s_seq = lif(x_seq)              # [T, B, ...] -> spikes, one fused (Numba) kernel call
    s = spike(u, slope=k)           # H(u − 1) with a surrogate gradient into u and k
    lif.params                      # its settings as one LIFParams (what the kernels receive)
    class MyNeuron(CustomNeuron):   # your own: write charge(x, state) (docs/neurons_and_surrogates.md);
        ...                         # ALIF and Synaptic (snnTorch's CuBa) are built this way

How backward works through time: `minisnn/spiking/bptt.md`.
"""
from ..kernels.lif_params import LIFParams
from . import surrogate
from .custom_examples import ALIF, Synaptic
from .custom_neurons import CustomNeuron
from .functions import LIFFunction, SpikeFunction, lif_sequence, spike
from .neurons import IF, LIF, BaseNeuron, ParametricLIF
from .norm_spike import BatchNormSpike, batch_norm_spike
from .protocol import Neuron, is_neuron, named_neurons
from .reset import reset_net

__all__ = ["LIF", "IF", "ParametricLIF", "BaseNeuron", "surrogate", "spike", "lif_sequence", "reset_net",
           "SpikeFunction", "LIFFunction", "LIFParams"]
__all__ += ["Neuron", "is_neuron", "named_neurons"]
__all__ += ["CustomNeuron", "ALIF", "Synaptic"]
__all__ += ["batch_norm_spike", "BatchNormSpike"]
