"""Firing-rate monitor: per-neuron firing rates and per-layer input rates, outputs unchanged.

    with FiringRateMonitor(model) as mon:
        for images in batches:
            model(images)
    mon.rates()          # {"stage1.0.tssa.q_lif": 0.21, ...}   mean spikes per neuron and step
    mon.input_rates()    # {"stage1.0.tssa.q_conv": 0.87, ...}  mean input value of each conv/linear
    print(mon.table())

How it works, without touching any computation:
* every spiking neuron (`minisnn.spiking.is_neuron`) gets `record = True`; after each forward
  pass of `model` the monitor reads `neuron.last_s_seq` (its output spikes) and accumulates sum
  and count;
* every Conv1d/Conv2d/Linear gets an instance-level `forward` wrapper that adds up its input
  values before calling the original.  An input that is a sum of spike tensors (the residual
  stream, values 0, 1, 2, ...) counts each unit as one spike, which is what the synaptic
  operation count needs.
Rates are averaged over all elements of all recorded passes.  Leaving the `with` block
restores the record flags and removes the wrappers.
"""
from __future__ import annotations

import numpy as np

from ..nn import Conv1d, Conv2d, Linear
from ..spiking.protocol import is_neuron, named_neurons  # is_neuron: also importable from here

SYNAPTIC_LAYERS = (Conv1d, Conv2d, Linear)


class FiringRateMonitor:
    """Collect firing rates of `model`'s neurons and input rates of its synaptic layers (see module doc)."""

    def __init__(self, model):
        self.model = model
        self._spikes: dict[str, list] = {}      # path -> [sum, count]
        self._inputs: dict[str, list] = {}
        self._saved_flags: list = []
        self._wrapped: list = []
        self.passes = 0
        self.active = False

    # ------------------------------------------------------------- install
    def __enter__(self) -> "FiringRateMonitor":
        if self.active:
            raise RuntimeError("this FiringRateMonitor is already active")
        self.active = True
        for name, m in self.model.named_modules():
            if is_neuron(m):
                self._saved_flags.append((m, m.record))
                m.record = True
                m.last_s_seq = None
            elif isinstance(m, SYNAPTIC_LAYERS):
                self._wrap(m, self._input_recorder(name, m.forward))
        self._wrap(self.model, self._pass_recorder(self.model.forward))
        return self

    def __exit__(self, *exc) -> None:
        for m, flag in self._saved_flags:
            m.record = flag
        for m in self._wrapped:
            del m.forward                       # back to the class's method
        self._saved_flags, self._wrapped = [], []
        self.active = False

    def _wrap(self, module, wrapper) -> None:
        module.forward = wrapper
        self._wrapped.append(module)

    def _input_recorder(self, name, forward):
        def recorded_forward(x, *args, **kwargs):
            data = np.asarray(getattr(x, "data", x))
            acc = self._inputs.setdefault(name, [0.0, 0])
            acc[0] += float(data.sum(dtype=np.float64))
            acc[1] += data.size
            return forward(x, *args, **kwargs)
        return recorded_forward

    def _pass_recorder(self, forward):
        def recorded_forward(*args, **kwargs):
            out = forward(*args, **kwargs)
            self._harvest()
            return out
        return recorded_forward

    def _harvest(self) -> None:
        for name, m in named_neurons(self.model):
            s_seq = m.last_s_seq
            if s_seq is not None:
                s_seq = np.asarray(s_seq)
                acc = self._spikes.setdefault(name, [0.0, 0])
                acc[0] += float(s_seq.sum(dtype=np.float64))
                acc[1] += s_seq.size
                m.last_s_seq = None
        self.passes += 1

    # ------------------------------------------------------------- results
    def reset(self) -> None:
        """Forget everything recorded so far."""
        self._spikes.clear()
        self._inputs.clear()
        self.passes = 0

    def rates(self) -> dict[str, float]:
        """Firing rate (mean output) of each neuron that ran, keyed by module path, in model order."""
        return {k: s / n for k, (s, n) in self._spikes.items() if n}

    def input_rates(self) -> dict[str, float]:
        """Mean input value of each Conv1d/Conv2d/Linear that ran, keyed by module path."""
        return {k: s / n for k, (s, n) in self._inputs.items() if n}

    def mean_rate(self) -> float:
        """Firing rate over all neurons and elements together."""
        total = sum(s for s, _ in self._spikes.values())
        count = sum(n for _, n in self._spikes.values())
        if not count:
            raise RuntimeError("no spikes recorded; run the model inside `with FiringRateMonitor(model):` first")
        return total / count

    def table(self) -> str:
        """Plain-text table of the neurons' firing rates."""
        rates = self.rates()
        if not rates:
            return "(no neuron has run inside the monitor yet)"
        width = max(len(k) for k in rates)
        lines = [f"{'neuron':{width}s}  rate", "-" * (width + 8)]
        lines += [f"{k:{width}s}  {v:.4f}" for k, v in rates.items()]
        lines.append(f"{'(all neurons)':{width}s}  {self.mean_rate():.4f}")
        return "\n".join(lines)
