"""Spiking neuron modules: LIF, IF and ParametricLIF (time-major, [T, B, ...]).

Each neuron runs two ways:

    s_seq = lif(x_seq)      # a whole sequence [T, ...] in one fused kernel call, from rest;
                            # stateless: it neither reads nor changes lif.v
    s = lif.step(x)         # one step; the membrane lif.v carries over to the next call
    lif.reset_state()       # back to rest (reset_net(model) does this for every neuron)

Both compute, per step, charge → fire → reset (SpikingJelly's MultiStepLIFNode, see
upstream_models.md §1.1 and `minisnn/spiking/bptt.md`):

    charge  H = V + (X − (V − v_reset)) / τ        (decay_input=True; else V − (V − v_reset)/τ + X)
    fire    S = H(H − v_threshold)                 (H(0) = 1: H == v_threshold fires)
    reset   V = H·(1 − S) + v_reset·S              (hard)  or  V = H − v_threshold·S  (v_reset=None)

A neuron's settings are one immutable `LIFParams` (`lif.params`, checked when the neuron is
built), which the fused path hands to the kernels as it is.  `step` applies the kernels' own
step functions (`charge`, `reset` of `minisnn/kernels/lif_params.py`) to Tensors and fires
with `spike`, so BPTT across step calls falls out of autograd; the fused path runs the
Numba kernel and must agree with it exactly.

Bad input: a NaN or ±inf membrane raises ValueError (no silent mapping: clean the input
upstream, e.g. with `F.nan_to_num`); tau <= 0 and slopes that are <= 0 or do not broadcast
raise ValueError.  LIF and IF have no parameters and no state_dict keys.
"""
from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from ..autograd.tensor import Tensor
from ..kernels.lif_params import LIFParams, charge, reset
from ..nn.module import Module, Parameter
from . import surrogate as surrogate_lib
from .functions import lif_sequence, spike

_DEFAULT = object()


def _setting(name: str, doc: str) -> property:
    """A read-only attribute that reads the field `name` of the neuron's LIFParams."""
    return property(lambda self: getattr(self.params, name), doc=doc)


class BaseNeuron(Module):
    """Shared machinery of LIF / IF / ParametricLIF.

    The settings are one immutable `LIFParams`, `self.params`, built (and checked) in
    `__init__`; `v_threshold`, `v_reset`, `detach_reset`, `decay_input`, `smooth` read it.
    Subclasses set `leaky` and may override `_tau` (a learnable τ).
    """

    leaky = True

    def __init__(self, v_threshold=1.0, v_reset=0.0, detach_reset=True, surrogate=_DEFAULT, smooth=False, *,
                 tau=2.0, decay_input=True):
        super().__init__()
        self.surrogate = surrogate_lib.Sigmoid() if surrogate is _DEFAULT else surrogate_lib.get(surrogate)
        self.params = LIFParams.make(tau, v_threshold, v_reset, decay_input, self.leaky, detach_reset,
                                     self.surrogate.kind, smooth)
        self.record = False
        self.last_s_seq: np.ndarray | None = None
        self.v = None  # membrane after the last `step` (Tensor), None at rest

    def set_surrogate(self, surrogate) -> None:
        """Fire with another surrogate family from now on: a `Surrogate`, or a name or spec such as
        "atan" or "gaussian(alpha=2.5)" (`surrogate.get`).  The other settings stay as they are."""
        self.surrogate = surrogate_lib.get(surrogate)
        self.params = self.params._replace(kind=self.surrogate.kind)

    v_threshold = _setting("v_threshold", "Spike threshold θ.")
    v_reset = _setting("v_reset", "Value of the hard reset; None for the soft reset.")
    v_rest = _setting("v_rest", "Membrane at rest: v_reset for a hard reset, 0 for a soft one.")
    detach_reset = _setting("detach_reset", "Whether the S inside the reset is a constant for backward.")
    decay_input = _setting("decay_input", "Whether the input is divided by τ in the charge (LIF).")
    smooth = _setting("smooth", "Whether the forward emits p(H − θ; α) instead of the step.")

    def _tau(self):
        """τ as a number or a 0-d Tensor (ignored when not leaky)."""
        return self.params.tau

    # ------------------------------------------------------------------- state
    def reset_state(self) -> None:
        """Forget the membrane carried by `step` (back to rest)."""
        self.v = None

    # ----------------------------------------------------------------- running
    def forward(self, x_seq, slope=None) -> Tensor:
        """Spikes of the whole sequence x_seq [T, ...] (T >= 1), starting from rest.

        slope: optional override of the surrogate slope (number, array or Tensor that
        broadcasts to x_seq, e.g. from a hypernetwork); its gradient is returned.
        """
        s_seq = lif_sequence(x_seq, tau=self._tau(), surrogate=self.surrogate, slope=slope, params=self.params)
        if self.record:
            self.last_s_seq = s_seq.data
        return s_seq

    def step(self, x, slope=None) -> Tensor:
        """One time step on x [...] with the membrane kept in self.v: charge, fire, reset."""
        if not isinstance(x, Tensor):
            x = Tensor(np.asarray(x))
        if x.dtype.kind != "f":
            raise TypeError(f"neuron input must be floating point, got dtype {x.dtype}")
        if self.v is not None and self.v.shape != x.shape:
            raise ValueError(f"step input of shape {x.shape} does not match the membrane of shape {self.v.shape}; "
                             "call reset_state() before changing the input shape")
        p = self.params
        v = p.v_rest if self.v is None else self.v
        h = charge(v, x, self._tau(), p.v_rest, p.decay_input, p.leaky)
        if not np.all(np.isfinite(h.data)):
            raise ValueError("neuron membrane is not finite: the input contains NaN or inf "
                             "(clean it upstream, e.g. with F.nan_to_num)")
        s = spike(h, slope, threshold=p.v_threshold, surrogate=self.surrogate, smooth=p.smooth)  # fire
        self.v = reset(h, s.detach() if p.detach_reset else s, p.v_threshold, p.v_rest, p.soft_reset, 1.0)
        if self.record:
            self.last_s_seq = s.data
        return s

    def extra_repr(self) -> str:
        reset_value = "None (soft)" if self.v_reset is None else self.v_reset
        return (f"v_threshold={self.v_threshold}, v_reset={reset_value}, detach_reset={self.detach_reset}, "
                f"surrogate={self.surrogate!r}" + (", smooth=True" if self.smooth else ""))


class LIF(BaseNeuron):
    """Leaky integrate-and-fire neuron (SpikingJelly MultiStepLIFNode semantics).

    charge: H = V + (X − (V − v_r))/τ  (decay_input)  or  H = V − (V − v_r)/τ + X;
    spike when H >= v_threshold; hard reset to v_reset (v_r = v_reset), or soft reset
    V = H − v_threshold·S when v_reset is None (then v_r = 0).  With detach_reset=True
    the S in the reset is a constant for backward (gradient flows only through H).
    x_seq [T, ...] -> spikes [T, ...], same dtype.
    """

    def __init__(self, tau=2.0, v_threshold=1.0, v_reset=0.0, decay_input=True, detach_reset=True,
                 surrogate=_DEFAULT, smooth=False):
        super().__init__(v_threshold, v_reset, detach_reset, surrogate, smooth, tau=tau, decay_input=decay_input)

    tau = _setting("tau", "Membrane time constant τ.")

    def extra_repr(self) -> str:
        return f"tau={self.tau}, decay_input={self.decay_input}, " + super().extra_repr()


class IF(BaseNeuron):
    """Integrate-and-fire neuron, no leak: H = V + X; spike when H >= v_threshold; hard
    reset to v_reset or soft reset (v_reset=None); reset detached when detach_reset=True."""

    leaky = False

    def __init__(self, v_threshold=1.0, v_reset=0.0, detach_reset=True, surrogate=_DEFAULT, smooth=False):
        super().__init__(v_threshold, v_reset, detach_reset, surrogate, smooth)


class ParametricLIF(LIF):
    """LIF with a learnable time constant (SpikingJelly ParametricLIFNode parameterisation).

    One Parameter `w` (state_dict key "w", shape ()) with 1/τ = sigmoid(w), i.e.
    τ = 1 + exp(−w) > 1; init_tau (> 1) sets w = −ln(init_tau − 1).  The gradient reaches
    w through τ in both the fused and the step path.  Otherwise exactly `LIF`; `params.tau`
    keeps init_tau, and every call uses the current τ instead.
    """

    def __init__(self, init_tau=2.0, v_threshold=1.0, v_reset=0.0, decay_input=True, detach_reset=True,
                 surrogate=_DEFAULT, smooth=False):
        init_tau = float(init_tau)
        if not math.isfinite(init_tau) or init_tau <= 1:
            raise ValueError(f"init_tau must be finite and > 1 (tau = 1 + exp(-w)), got {init_tau}")
        super().__init__(init_tau, v_threshold, v_reset, decay_input, detach_reset, surrogate, smooth)
        self.w = Parameter(np.asarray(-math.log(init_tau - 1.0), dtype=np.float32))

    @property
    def tau(self) -> float:
        """Current τ = 1 + exp(−w) as a number."""
        return 1.0 + math.exp(-float(self.w.data))

    def _tau(self):
        return 1.0 + F.exp(-self.w)  # differentiable in w


__all__ = ["BaseNeuron", "LIF", "IF", "ParametricLIF"]
