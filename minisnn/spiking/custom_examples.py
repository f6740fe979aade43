"""Two neurons defined with `CustomNeuron`: an adaptive-threshold LIF and a current-based LIF.

    from minisnn.spiking import ALIF, Synaptic

    ALIF(tau=2.0, tau_adapt=20.0, beta=1.8, v_threshold=1.0, reset="soft", v_reset=0.0,
         decay_input=True, detach_reset=True, surrogate="sigmoid", smooth=False)
    Synaptic(alpha, beta, v_threshold=1.0, reset_mechanism="subtract", detach_reset=True,
             surrogate="atan", smooth=False)

* `ALIF`: minisnn's LIF charge with the adaptive threshold θ = v_th + β·b of Bellec et al. (2018);
  b decays with its own time constant τ_adapt and jumps on each spike.  State "v", "b".
* `Synaptic`: the current-based LIF (CuBa) of snnTorch's `snn.Synaptic`, same update order,
  threshold, reset and arguments (alpha = synaptic decay, beta = membrane decay).  State "v"
  (snnTorch's `mem`), "syn" (its `syn`) and "last_spike" (the spike its delayed reset uses).

Both run over x_seq [T, B, ...] (`neuron(x_seq)`, from rest) or one step at a time
(`neuron.step(x)`, state in `neuron.state`, `neuron.reset_state()`), like every minisnn neuron.
BPTT is autograd through the steps; `tests/spiking/test_custom_neurons.py` checks both against
PyTorch implementations written independently (and `Synaptic` against snnTorch itself).
"""
from __future__ import annotations

import math

from ..kernels.lif_params import charge as lif_charge
from .custom_neurons import CustomNeuron, _finite


class ALIF(CustomNeuron):
    """Adaptive-threshold LIF (ALIF): each spike raises the threshold, which then relaxes back.

    The threshold adaptation is that of Bellec, Salaj, Subramoney, Legenstein & Maass, "Long
    short-term memory and learning-to-learn in networks of spiking neurons", NeurIPS 2018: the
    threshold is v_th + β·b, b decays with ρ = exp(−1/τ_adapt) per step and grows by 1 − ρ per
    spike.  The charge is minisnn's LIF charge (SpikingJelly form), not the paper's discretisation.
    One step, with V[−1] = v_r and b[−1] = 0:

        charge     H[t] = V[t−1] + (X[t] − (V[t−1] − v_r)) / τ     (decay_input=False: V − (V − v_r)/τ + X)
        threshold  θ[t] = v_th + β·b[t−1]
        fire       S[t] = Θ(H[t] − θ[t])        spike when H[t] >= θ[t]
        reset      V[t] = H[t] − θ[t]·S[t]      reset="soft" (default: subtract the current threshold)
                   V[t] = H[t]·(1 − S[t]) + v_r·S[t]        reset="hard"
        adapt      b[t] = ρ·b[t−1] + (1 − ρ)·S[t],   ρ = exp(−1/τ_adapt)

    v_r is v_reset for the hard reset and 0 for the soft one.  detach_reset=True (default): the
    S in the reset and in b's jump is a constant for backward (the gradient reaches the past only
    through H and the decay of b); detach_reset=False: it flows through them too.
    tau > 0 and tau_adapt > 0 (in time steps), beta >= 0; the other settings are `CustomNeuron`'s.
    """

    extra_state = {"b": 0.0}

    def __init__(self, tau=2.0, tau_adapt=20.0, beta=1.8, v_threshold=1.0, reset="soft", v_reset=0.0,
                 decay_input=True, detach_reset=True, surrogate="sigmoid", smooth=False):
        super().__init__(v_threshold, reset, v_reset, detach_reset, surrogate, smooth)
        self.tau = _finite(tau, "ALIF: tau")
        self.tau_adapt = _finite(tau_adapt, "ALIF: tau_adapt")
        self.beta = _finite(beta, "ALIF: beta")
        if self.tau <= 0 or self.tau_adapt <= 0:
            raise ValueError(f"ALIF: tau and tau_adapt must be > 0 (time steps), got {self.tau} and {self.tau_adapt}")
        if self.beta < 0:
            raise ValueError(f"ALIF: beta (threshold increase per unit of b) must be >= 0, got {self.beta}")
        self.decay_input = bool(decay_input)
        self.rho = math.exp(-1.0 / self.tau_adapt)

    def charge(self, x, state):
        return lif_charge(state["v"], x, self.tau, self.v_rest, self.decay_input, True), state

    def threshold(self, state):
        return self.v_threshold + self.beta * state["b"]

    def after_spike(self, s, state):
        state["b"] = self.rho * state["b"] + (1.0 - self.rho) * s
        return state

    def extra_repr(self) -> str:
        return (f"tau={self.tau}, tau_adapt={self.tau_adapt}, beta={self.beta}, decay_input={self.decay_input}, "
                + super().extra_repr())


class Synaptic(CustomNeuron):
    """Current-based LIF (CuBa), snnTorch's `snn.Synaptic` (1.0, reset_delay=True): a synaptic
    current I that decays with alpha feeds a membrane U that decays with beta.

    One step, with I[−1] = U[−1] = 0 and S[−1] = 0, in snnTorch's order:

        charge     I[t] = α·I[t−1] + X[t]
                   U[t] = β·U[t−1] + I[t] − θ·S[t−1]           reset_mechanism="subtract" (default)
                   U[t] = (β·U[t−1] + I[t])·(1 − S[t−1])       reset_mechanism="zero"
                   U[t] = β·U[t−1] + I[t]                      reset_mechanism="none"
        fire       S[t] = Θ(U[t] − θ)           spike when U[t] >= θ
        reset      none at step t: snnTorch applies the reset of S[t] one step later, inside the
                   charge of step t + 1 (above); "zero" leaves I alone.

    So `state["v"]` is snnTorch's `mem` (it may stay above θ after a spike until the next step)
    and `state["syn"]` its `syn`.  detach_reset=True (default, snnTorch's only behaviour): the
    S[t−1] of the reset is a constant for backward; detach_reset=False lets the gradient through it.
    Surrogate: snnTorch's default `atan()` (α = 2) is minisnn's ATan(2.0), the default here.

    Differences from snnTorch: snnTorch spikes on U > θ, minisnn on U >= θ (they differ only
    where U equals θ exactly); snnTorch clamps alpha and beta into [0, 1] at each step, here
    values outside [0, 1] raise ValueError; v_threshold must be > 0 (snnTorch's first reset
    signal is Θ(0 − θ), which is 0 only then); alpha, beta and θ are numbers, not learnable.
    """

    extra_state = {"syn": 0.0, "last_spike": 0.0}
    RESET_MECHANISMS = ("subtract", "zero", "none")

    def __init__(self, alpha, beta, v_threshold=1.0, reset_mechanism="subtract", detach_reset=True,
                 surrogate="atan", smooth=False):
        super().__init__(v_threshold, "none", 0.0, detach_reset, surrogate, smooth)
        self.alpha = _finite(alpha, "Synaptic: alpha")
        self.beta = _finite(beta, "Synaptic: beta")
        if not (0 <= self.alpha <= 1 and 0 <= self.beta <= 1):
            raise ValueError(f"Synaptic: alpha and beta are decay factors in [0, 1], got {self.alpha} and {self.beta}")
        if self.v_threshold <= 0:
            raise ValueError(f"Synaptic: v_threshold must be > 0, got {self.v_threshold}")
        if reset_mechanism not in self.RESET_MECHANISMS:
            raise ValueError(f"Synaptic: reset_mechanism must be one of "
                             f"{', '.join(map(repr, self.RESET_MECHANISMS))}, got {reset_mechanism!r}")
        self.reset_mechanism = reset_mechanism

    def charge(self, x, state):
        state["syn"] = self.alpha * state["syn"] + x
        u = self.beta * state["v"] + state["syn"]
        if self.reset_mechanism == "subtract":
            u = u - self.v_threshold * state["last_spike"]
        elif self.reset_mechanism == "zero":
            u = u * (1.0 - state["last_spike"])
        return u, state

    def after_spike(self, s, state):
        state["last_spike"] = s
        return state

    def extra_repr(self) -> str:
        return (f"alpha={self.alpha}, beta={self.beta}, v_threshold={self.v_threshold}, "
                f"reset_mechanism={self.reset_mechanism!r}, detach_reset={self.detach_reset}, "
                f"surrogate={self.surrogate!r}" + (", smooth=True" if self.smooth else ""))


__all__ = ["ALIF", "Synaptic"]
