"""The dynamics a PyTorch neuron claims, as a minisnn neuron: the reference side of `verify_neuron`.

    claims = parse_claims("lif tau=2 v_threshold=1 reset=hard surrogate=atan:2 detach_reset=1")
    claims = Claims(LIF(tau=2.0, surrogate=ATan(2.0)), fire="gt")     # the same from a neuron
    run = claims.run(x_seq, g_seq)          # spikes, dL/dx_seq and parameter gradients by minisnn's BPTT

A claim is a minisnn neuron (LIF, IF, ParametricLIF, or a `CustomNeuron`: Synaptic, ALIF, your own) plus the
spike condition:
fire="ge" (H ≥ θ fires: minisnn, SpikingJelly) or fire="gt" (only H > θ: snnTorch).  minisnn's neurons
fire at H ≥ θ, so "gt" runs the neuron with v_threshold θ⁺ = nextafter(θ, +∞) in the run's dtype: for any H
of that dtype, H ≥ θ⁺ exactly when H > θ (a CustomNeuron whose threshold moves, like ALIF's, only
approximately).  The surrogate then sees H − θ⁺, one ulp of θ off.

The string form: a kind (`lif`, `if`, `plif`, `synaptic`, `alif`) and the constructor's settings as
KEY=VALUE words (`plif` also takes tau= for init_tau); `surrogate=NAME[:ALPHA]`, booleans as 0/1, `fire=ge|gt`,
and for lif/if/plif `reset=hard|soft` (soft: v_reset=None).  Everything not given keeps the neuron's default.
"""
from __future__ import annotations

import copy
import dataclasses
import inspect

import numpy as np

from ..autograd.tensor import Tensor
from ..kernels.lif_params import LIFParams, charge, reset
from ..spiking import ALIF, IF, LIF, CustomNeuron, ParametricLIF, Synaptic, surrogate as surrogate_lib

KINDS = {"lif": LIF, "if": IF, "plif": ParametricLIF, "synaptic": Synaptic, "alif": ALIF}
FIRE = {"ge": "H >= θ fires (minisnn, SpikingJelly)", "gt": "only H > θ fires (snnTorch)"}
_SEARCH_ULPS = 32
_BOOLS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


@dataclasses.dataclass
class ClaimedRun:
    """What the claimed dynamics give on one input: spikes, dL/dx_seq and {parameter name: gradient}."""
    s_seq: np.ndarray
    gx_seq: np.ndarray
    param_grads: dict


@dataclasses.dataclass
class Claims:
    """A minisnn neuron (LIF / IF / ParametricLIF, or a `CustomNeuron` such as Synaptic or ALIF) and the spike
    condition `fire` ("ge" or "gt")."""
    neuron: object
    fire: str = "ge"

    def __post_init__(self):
        if not (self.lif or isinstance(self.neuron, CustomNeuron)):
            raise TypeError(f"claims must be a minisnn neuron (LIF, IF, ParametricLIF or a CustomNeuron such as "
                            f"Synaptic) or a string such as 'lif tau=2', got {type(self.neuron).__name__}")
        if self.fire not in FIRE:
            raise ValueError(f"fire must be one of {sorted(FIRE)} (H >= θ or H > θ fires), got {self.fire!r}")

    @property
    def lif(self) -> bool:
        """Whether the neuron is built on LIFParams (its membrane equations are `kernels/lif_params.py`'s)."""
        return isinstance(getattr(self.neuron, "params", None), LIFParams)

    @property
    def params(self) -> LIFParams:
        """A LIF / IF neuron's settings with its current τ (a ParametricLIF's learnable one)."""
        p = self.neuron.params
        return p.with_tau(float(self.neuron.tau)) if p.leaky else p

    @property
    def theta(self) -> float:
        return float(self.neuron.v_threshold)

    @property
    def detach_reset(self) -> bool:
        return bool(self.neuron.detach_reset)

    def describe(self) -> str:
        return f"{self.neuron!r}; {FIRE[self.fire]}"

    def _with(self, dtype=None, v_threshold=None, detach_reset=None):
        """A copy of the neuron in `dtype` with another threshold or reset detachment."""
        neuron = copy.deepcopy(self.neuron)
        if dtype is not None:
            neuron.to_dtype(dtype)
        changes = {k: v for k, v in (("v_threshold", v_threshold), ("detach_reset", detach_reset)) if v is not None}
        if self.lif:
            neuron.params = neuron.params._replace(**changes)
        else:
            for key, value in changes.items():
                setattr(neuron, key, value)
        return neuron

    def with_detach_reset(self, detach: bool) -> Claims:
        """The same claim with the reset detached or not."""
        return Claims(self._with(detach_reset=bool(detach)), self.fire)

    def run(self, x_seq: np.ndarray, g_seq: np.ndarray) -> ClaimedRun:
        """Spikes of x_seq [T, ...] (in its dtype) and the gradients of <g_seq, spikes> by minisnn's BPTT."""
        dt = x_seq.dtype.type
        above = float(np.nextafter(dt(self.theta), dt(np.inf))) if self.fire == "gt" else None
        neuron = self._with(x_seq.dtype, v_threshold=above)
        x = Tensor(x_seq, requires_grad=True)
        s = neuron(x)
        s.backward(np.asarray(g_seq, dtype=x_seq.dtype))
        grads = {name: np.array(p.grad) for name, p in neuron.named_parameters() if p.grad is not None}
        return ClaimedRun(np.array(s.data), np.array(x.grad), grads)

    def first_membrane(self, x: np.ndarray) -> np.ndarray:
        """H of the first step from rest for the inputs x, computed as the claim computes it, in x's dtype."""
        if self.lif:
            p = self.params.in_dtype(x.dtype)
            return charge(np.full_like(x, p.v_rest), x, p.tau, p.v_rest, p.decay_input, p.leaky)
        neuron = self._with(x.dtype)
        return np.asarray(neuron.charge(Tensor(x), neuron.rest_state())[0].data, dtype=x.dtype)

    def _alternative_membrane(self, x: np.ndarray) -> np.ndarray:
        """The first-step H of a LIF computed as V + (X − (V − v_r))·(1/τ) (SpikingJelly's ParametricLIF)."""
        if not (self.lif and self.params.leaky and self.params.decay_input):
            return self.first_membrane(x)
        p = self.params.in_dtype(x.dtype)
        v = np.full_like(x, p.v_rest)
        return v + (x - (v - p.v_rest)) * (x.dtype.type(1) / p.tau)

    def inputs_for_membranes(self, targets, dtype) -> tuple[np.ndarray, np.ndarray]:
        """(X, exact): inputs that charge a neuron at rest to the membranes `targets` in one step.

        exact marks where the membrane lands exactly on the target as the claim computes it and, for a LIF,
        also as V + (X − (V − v_r))·(1/τ) (SpikingJelly's ParametricLIF): the nearest such X within 32 ulps of
        the linear estimate, else the nearest X exact for the claim alone."""
        dt = np.dtype(dtype).type
        targets = np.asarray(targets, dtype=dtype)
        h0, h1 = (float(self.first_membrane(np.asarray([v], dtype=np.float64))[0]) for v in (0.0, 1.0))
        x0 = ((targets.astype(np.float64) - h0) / (h1 - h0)).astype(dtype)
        best, exact = x0.copy(), np.zeros(targets.shape, bool)
        one_way = np.zeros(targets.shape, bool)
        up, down = x0.copy(), x0.copy()
        for _ in range(_SEARCH_ULPS):                 # nearest candidates first: x0, x0 ± 1 ulp, ...
            for x in (up, down):
                h = self.first_membrane(x)
                both = (h == targets) & (self._alternative_membrane(x) == targets) & ~exact
                first = (h == targets) & ~exact & ~one_way
                best[both | first] = x[both | first]
                exact |= both
                one_way |= first
            up, down = np.nextafter(up, dt(np.inf)), np.nextafter(down, dt(-np.inf))
        return best, exact

    def margin(self, x_seq: np.ndarray, s_seq: np.ndarray) -> np.ndarray | None:
        """H − θ in float64 at every element of x_seq [T, ...], the reset following the spikes `s_seq` (the
        module's own), so that it describes the module's decision at each step.  None for a CustomNeuron."""
        if not self.lif:
            return None
        p = self.params
        x = np.asarray(x_seq, dtype=np.float64)
        s = np.asarray(s_seq, dtype=np.float64).reshape(x.shape)
        v = np.full(x.shape[1:], p.v_rest)
        out = np.empty_like(x)
        for t in range(x.shape[0]):
            h = charge(v, x[t], p.tau, p.v_rest, p.decay_input, p.leaky)
            out[t] = h - p.v_threshold
            v = reset(h, s[t], p.v_threshold, p.v_rest, p.soft_reset, 1.0)
        return out


def _surrogate(text: str):
    name, _, alpha = text.partition(":")
    sg = surrogate_lib.get(name)
    return type(sg)(float(alpha)) if alpha else sg


def _value(key: str, text: str, default):
    """A setting's value, read as its default's type: surrogate NAME[:ALPHA], booleans 0/1, words, numbers."""
    if key == "surrogate":
        return _surrogate(text)
    if isinstance(default, bool):
        if text.lower() not in _BOOLS:
            raise ValueError(f"claims: {key}={text!r} is not a boolean; use 1 or 0")
        return _BOOLS[text.lower()]
    if isinstance(default, str):
        return text
    if text.lower() == "none" and (default is None or key == "v_reset"):
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"claims: {key}={text!r} is not a number") from None


def parse_claims(spec: str) -> Claims:
    """Claims from a string such as "lif tau=2 v_threshold=1 reset=hard surrogate=atan:2 detach_reset=1"."""
    words = spec.split()
    if not words or words[0].lower() not in KINDS:
        raise ValueError(f"claims {spec!r}: start with a neuron kind, one of {', '.join(KINDS)} "
                         "(e.g. 'lif tau=2 surrogate=atan:2')")
    cls = KINDS[words[0].lower()]
    defaults = {name: par.default for name, par in inspect.signature(cls).parameters.items()}
    kwargs, fire = {}, "ge"
    for word in words[1:]:
        key, eq, value = word.partition("=")
        key = key.replace("-", "_").lower()
        if not eq:
            raise ValueError(f"claims: expected KEY=VALUE, got {word!r}")
        if key == "fire":
            fire = value.lower()
        elif key == "reset" and "reset" not in defaults:
            if value.lower() not in ("hard", "soft"):
                raise ValueError(f"claims: reset={value!r}; use reset=hard or reset=soft")
            if value.lower() == "soft":
                kwargs["v_reset"] = None
        elif key == "tau" and cls is ParametricLIF:
            kwargs["init_tau"] = float(value)
        elif key not in defaults:
            extra = [] if "reset" in defaults else ["reset"]
            raise ValueError(f"claims: {words[0]} has no setting {key!r}; it takes: "
                             f"{', '.join(list(defaults) + extra + ['fire'])}")
        else:
            kwargs[key] = _value(key, value, defaults[key])
    try:
        neuron = cls(**kwargs)
    except TypeError as exc:
        raise ValueError(f"claims {spec!r}: {exc}") from None
    return Claims(neuron, fire)


def as_claims(claims, fire: str | None = None) -> Claims:
    """Claims from a Claims, a minisnn neuron or a string; `fire` overrides the spike condition."""
    if isinstance(claims, str):
        claims = parse_claims(claims)
    elif not isinstance(claims, Claims):
        claims = Claims(claims)
    return claims if fire is None else Claims(claims.neuron, fire)


__all__ = ["Claims", "ClaimedRun", "FIRE", "KINDS", "as_claims", "parse_claims"]
