"""`CustomNeuron`: define your own spiking neuron by its charge equation and its extra state.

    from minisnn.spiking import CustomNeuron

    class MyLIF(CustomNeuron):
        '''LIF written by hand.  Spike when H >= v_threshold; hard reset to v_reset,
        detached when detach_reset=True (the constructor's defaults).'''

        def __init__(self, tau=2.0, **settings):
            super().__init__(**settings)
            self.tau = tau

        def charge(self, x, state):
            v = state["v"]
            return v + (x - (v - self.v_reset)) / self.tau, state

    neuron = MyLIF(v_threshold=1.0, reset="hard")
    s_seq = neuron(x_seq)       # [T, B, ...] -> spikes, starting from rest (neuron.state is not used)
    s = neuron.step(x)          # one step; the state in neuron.state carries over to the next call
    neuron.reset_state()        # back to rest (reset_net(model) does this for every neuron)

One step is the built-in neurons' charge → fire → reset, with the pieces you write in the
middle (`minisnn/spiking/bptt.md` has the recursion):

    charge     H, state = charge(X, state)          yours: the membrane before firing, and the
                                                    extra state (synaptic current, ...) updated
    threshold  θ = threshold(state)                 yours if it moves (default: v_threshold)
    fire       S = Θ(H − θ)                          Θ(0) = 1: H == θ fires; smooth=True: S = p(H − θ; α)
    reset      V = H·(1 − S) + v_reset·S             reset="hard"
               V = H − θ·S                           reset="soft"
               V = H                                 reset="none" (a reset of your own in `charge`)
    after      state = after_spike(S, state)         yours if the spike changes the extra state
                                                     (default: unchanged); then state["v"] = V

`state` is a dict: "v", the membrane after the last reset, plus the names in `extra_state`
(a class attribute {name: rest value}).  At rest its values are those numbers; after a step
they are Tensors of the input's shape.  `charge` must return a dict with the same names.

detach_reset=True: the S that feeds back into the neuron, in the reset and in `after_spike`,
is `S.detach()`, a constant for backward; the output spikes keep their surrogate gradient.
detach_reset=False: the gradient also flows through those S (finite differences in smooth
mode see this full dependence, so gradchecks use it).

BPTT comes from the definition: every step is built from Tensor operations and `spike`, so
autograd differentiates through all T steps.  There is no fused kernel for custom neurons:
the built-in LIF / IF keep theirs, a custom neuron runs step by step at NumPy speed.
"""
from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from ..autograd.tensor import Tensor
from ..kernels.lif_params import reset as reset_membrane
from ..nn.module import Module
from . import surrogate as surrogate_lib
from .functions import _data, _float_input, spike

RESETS = ("hard", "soft", "none")


class CustomNeuron(Module):
    """Base class of a neuron defined by `charge(x, state)` (see the module docstring).

    Subclass it, write `charge`, and where needed `threshold`, `after_spike` and the class
    attribute `extra_state`; your class's docstring states its spike condition, its reset and
    whether the reset is detached.  Constructor settings:

    v_threshold   θ, the spike threshold (finite); what the default `threshold(state)` returns
    reset         "hard" (V = H·(1 − S) + v_reset·S), "soft" (V = H − θ·S) or "none" (V = H)
    v_reset       the hard reset's value and the membrane's rest value; a soft / no reset rests at 0
    detach_reset  S is a constant for backward where it feeds back (reset, `after_spike`)
    surrogate     a `surrogate.Surrogate` or a name, as LIF takes it (default: Sigmoid(alpha=4))
    smooth        the forward emits p(H − θ; α) instead of the step (for exact gradient checks)

    x_seq [T, ...] -> spikes [T, ...] of x_seq's dtype.  The neuron satisfies the `Neuron`
    protocol (`forward`, `reset_state`, `record`, `last_s_seq`), so `reset_net` and the
    firing-rate monitor find it.
    """

    extra_state: dict[str, float] = {}
    """Names and rest values of the state besides the membrane "v", e.g. {"b": 0.0}."""

    def __init__(self, v_threshold=1.0, reset="hard", v_reset=0.0, detach_reset=True, surrogate="sigmoid",
                 smooth=False):
        super().__init__()
        name = type(self).__name__
        if type(self).charge is CustomNeuron.charge:
            raise TypeError(f"{name} must define charge(self, x, state) -> (h, state); see CustomNeuron")
        if reset not in RESETS:
            raise ValueError(f"{name}: reset must be one of {', '.join(map(repr, RESETS))}, got {reset!r}")
        self.v_threshold = _finite(v_threshold, f"{name}: v_threshold")
        self.v_reset = _finite(v_reset, f"{name}: v_reset")
        self.reset = reset
        self.detach_reset = bool(detach_reset)
        self.surrogate = surrogate_lib.get(surrogate)
        self.smooth = bool(smooth)
        self._rest = _rest_state(self.extra_state, name, self.v_reset if reset == "hard" else 0.0)
        self.record = False
        self.last_s_seq: np.ndarray | None = None
        self.state: dict | None = None  # after the last `step`; None at rest

    # ------------------------------------------------------------ what a subclass writes
    def charge(self, x: Tensor, state: dict) -> tuple[Tensor, dict]:
        """H[t] from the input X[t] and the state after step t − 1; returns (H, updated state)."""
        raise NotImplementedError  # never reached: __init__ refuses a class without its own charge

    def threshold(self, state: dict):
        """θ[t] for the state returned by `charge`: a number or a Tensor.  Default: v_threshold."""
        return self.v_threshold

    def after_spike(self, s: Tensor, state: dict) -> dict:
        """The extra state after the spike S[t] (detached when detach_reset).  Default: unchanged."""
        return state

    # ------------------------------------------------------------ state
    @property
    def v_rest(self) -> float:
        """The membrane at rest: v_reset for a hard reset, 0 otherwise."""
        return self._rest["v"]

    def rest_state(self) -> dict:
        """A new state at rest: {"v": v_rest, **extra_state}."""
        return dict(self._rest)

    @property
    def v(self) -> Tensor | None:
        """The membrane after the last `step` (None at rest)."""
        return None if self.state is None else self.state["v"]

    def reset_state(self) -> None:
        """Forget the state carried by `step` (back to rest)."""
        self.state = None

    # ------------------------------------------------------------ running
    def forward(self, x_seq) -> Tensor:
        """Spikes of the whole sequence x_seq [T, ...] (T >= 1), starting from rest.

        Stateless like LIF's forward: it neither reads nor changes `self.state`.
        """
        x_seq = _float_tensor(x_seq, f"{type(self).__name__} input x_seq")
        if x_seq.ndim < 1 or x_seq.shape[0] < 1:
            raise ValueError(f"{type(self).__name__} input x_seq must be [T, ...] with T >= 1, "
                             f"got shape {tuple(x_seq.shape)}")
        state = self.rest_state()
        spikes = []
        for t in range(x_seq.shape[0]):
            s, state = self._step(x_seq[t], state)
            spikes.append(s)
        s_seq = F.stack(spikes, 0)
        if self.record:
            self.last_s_seq = s_seq.data
        return s_seq

    def step(self, x) -> Tensor:
        """One time step on x [...] with the state kept in `self.state`: charge, fire, reset."""
        x = _float_tensor(x, f"{type(self).__name__} input x")
        if self.state is not None and self.state["v"].shape != x.shape:
            raise ValueError(f"step input of shape {x.shape} does not match the membrane of shape "
                             f"{self.state['v'].shape}; call reset_state() before changing the input shape")
        s, self.state = self._step(x, self.rest_state() if self.state is None else self.state)
        if self.record:
            self.last_s_seq = s.data
        return s

    def _step(self, x: Tensor, state: dict) -> tuple[Tensor, dict]:
        """Charge, fire, reset and `after_spike` on one step; returns (S, the state after it)."""
        h, state = self._charged(x, state)
        theta = self.threshold(state)
        s = spike(h - theta, threshold=0.0, surrogate=self.surrogate, smooth=self.smooth)  # fire: Θ(H − θ)
        if s.shape != h.shape:
            raise ValueError(f"{type(self).__name__}.threshold returned shape {np.shape(_data(theta))}, which "
                             f"does not broadcast to the membrane's shape {h.shape}")
        s_fed = s.detach() if self.detach_reset else s
        if self.reset == "none":
            v = h
        else:
            v = reset_membrane(h, s_fed, theta, self.v_rest, self.reset == "soft", 1.0)
        state = self._checked_state(self.after_spike(s_fed, state), x.shape, "after_spike")
        state["v"] = v
        return s, state

    def _charged(self, x: Tensor, state: dict) -> tuple[Tensor, dict]:
        """`charge` with its result checked: H a finite Tensor of x's shape, the state's names kept."""
        out = self.charge(x, dict(state))
        name = type(self).__name__
        if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], Tensor)):
            raise TypeError(f"{name}.charge must return (h, state) with h a Tensor built from x and state "
                            f"by Tensor operations, got {type(out).__name__}")
        h, new_state = out
        if h.shape != x.shape:
            raise ValueError(f"{name}.charge returned h of shape {h.shape} for an input of shape {x.shape}; "
                             "the membrane must have the input's shape")
        if not np.all(np.isfinite(h.data)):
            raise ValueError(f"{name}: membrane is not finite: the input contains NaN or inf "
                             "(clean it upstream, e.g. with F.nan_to_num)")
        return h, self._checked_state(new_state, x.shape, "charge")

    def _checked_state(self, state, shape: tuple, where: str) -> dict:
        """state as a new dict, after checking that it holds the declared names (numbers or Tensors of `shape`)."""
        name = type(self).__name__
        if not isinstance(state, dict) or set(state) != set(self._rest):
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"{name}.{where} must return the state dict with exactly the names "
                             f"{sorted(self._rest)} (declare extra names in extra_state), got {got}")
        for key, value in state.items():
            if isinstance(value, Tensor) and value.shape != shape:
                raise ValueError(f"{name}.{where}: state[{key!r}] has shape {value.shape}, "
                                 f"expected the input's shape {shape}")
        return dict(state)

    def extra_repr(self) -> str:
        return (f"v_threshold={self.v_threshold}, reset={self.reset!r}, v_reset={self.v_reset}, "
                f"detach_reset={self.detach_reset}, surrogate={self.surrogate!r}"
                + (", smooth=True" if self.smooth else ""))


# ------------------------------------------------------------------ helpers
def _finite(value, what: str) -> float:
    """value as a float; ValueError unless it is a finite number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a number, got {type(value).__name__}") from None
    if not math.isfinite(number):
        raise ValueError(f"{what} must be finite, got {number}")
    return number


def _rest_state(extra_state, name: str, v_rest: float) -> dict:
    """{"v": v_rest, **extra_state} after checking the declared names and rest values."""
    if not isinstance(extra_state, dict):
        raise TypeError(f"{name}.extra_state must be a dict {{name: rest value}}, got {type(extra_state).__name__}")
    for key, value in extra_state.items():
        if not (isinstance(key, str) and key.isidentifier()) or key == "v":
            raise ValueError(f"{name}.extra_state: {key!r} is not a valid name (a Python identifier other than "
                             "'v', which is the membrane)")
        _finite(value, f"{name}.extra_state[{key!r}]")
    return {"v": v_rest, **{key: float(value) for key, value in extra_state.items()}}


def _float_tensor(x, what: str) -> Tensor:
    """x as a Tensor (a Tensor is kept as it is, so its gradient flows); TypeError for non-float input."""
    x = _float_input(x, what)
    return x if isinstance(x, Tensor) else Tensor(x)


__all__ = ["CustomNeuron"]
