"""The dynamics a PyTorch neuron claims, as a minisnn neuron: the reference side of `verify_neuron`.

    claims = parse_claims("lif tau=2 v_threshold=1 reset=hard surrogate=atan:2 detach_reset=1")
    claims = Claims(LIF(tau=2.0, surrogate=ATan(2.0)), fire="gt")     # the same from a neuron
    run = claims.run(x_seq, g_seq)          # spikes, dL/dx_seq and parameter gradients by minisnn's BPTT

A claim is a minisnn neuron built on `LIFParams` (LIF, IF, ParametricLIF) plus the spike condition:
fire="ge" (H ≥ θ fires: minisnn, SpikingJelly) or fire="gt" (only H > θ: snnTorch).  minisnn's kernels
fire at H ≥ θ, so "gt" runs the neuron with the threshold θ⁺ = nextafter(θ, +∞) of the run's dtype:
for any H of that dtype, H ≥ θ⁺ exactly when H > θ.  The surrogate then sees H − θ⁺, one ulp of θ off.

The string form: a kind (`lif`, `if`, `plif`) and KEY=VALUE words; `reset=hard|soft` (soft: v_reset=None),
`surrogate=NAME[:ALPHA]`, booleans as 0/1, `fire=ge|gt`.  Everything not given keeps the neuron's default.
"""
from __future__ import annotations

import copy
import dataclasses
import inspect

import numpy as np

from ..autograd.tensor import Tensor
from ..kernels.lif_params import LIFParams, charge, reset
from ..spiking import IF, LIF, ParametricLIF, surrogate as surrogate_lib

KINDS = {"lif": LIF, "if": IF, "plif": ParametricLIF}
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
    """A minisnn neuron (LIF / IF / ParametricLIF) and the spike condition `fire` ("ge" or "gt")."""
    neuron: object
    fire: str = "ge"

    def __post_init__(self):
        if not isinstance(getattr(self.neuron, "params", None), LIFParams):
            raise TypeError(f"claims must be a minisnn LIF, IF or ParametricLIF (a neuron with LIFParams) or a "
                            f"string such as 'lif tau=2', got {type(self.neuron).__name__}")
        if self.fire not in FIRE:
            raise ValueError(f"fire must be one of {sorted(FIRE)} (H >= θ or H > θ fires), got {self.fire!r}")

    @property
    def params(self) -> LIFParams:
        """The neuron's settings with its current τ (a ParametricLIF's learnable one)."""
        p = self.neuron.params
        return p.with_tau(float(self.neuron.tau)) if p.leaky else p

    def describe(self) -> str:
        return f"{self.neuron!r}; {FIRE[self.fire]}"

    def with_detach_reset(self, detach: bool) -> Claims:
        """The same claim with the reset detached or not."""
        neuron = copy.deepcopy(self.neuron)
        neuron.params = neuron.params._replace(detach_reset=bool(detach))
        return Claims(neuron, self.fire)

    def run(self, x_seq: np.ndarray, g_seq: np.ndarray) -> ClaimedRun:
        """Spikes of x_seq [T, ...] (in its dtype) and the gradients of <g_seq, spikes> by minisnn's BPTT."""
        neuron = copy.deepcopy(self.neuron).to_dtype(x_seq.dtype)
        if self.fire == "gt":
            dt = x_seq.dtype.type
            above = np.nextafter(dt(neuron.params.v_threshold), dt(np.inf))
            neuron.params = neuron.params._replace(v_threshold=float(above))
        x = Tensor(x_seq, requires_grad=True)
        s = neuron(x)
        s.backward(np.asarray(g_seq, dtype=x_seq.dtype))
        grads = {name: np.array(p.grad) for name, p in neuron.named_parameters() if p.grad is not None}
        return ClaimedRun(np.array(s.data), np.array(x.grad), grads)

    def inputs_for_membranes(self, targets, dtype) -> tuple[np.ndarray, np.ndarray]:
        """(X, exact): inputs that charge a neuron at rest to the membranes `targets` in one step, and where
        exact marks where the membrane lands exactly on the target both as the claim computes it,
        V + (X − (V − v_r))/τ, and as V + (X − (V − v_r))·(1/τ) (SpikingJelly's ParametricLIF): the nearest
        such X within 32 ulps of τ·(target − v_r), else the nearest X exact for the claim alone."""
        dt = np.dtype(dtype).type
        p = self.params.in_dtype(dtype)
        targets = np.asarray(targets, dtype=dtype)
        v = np.full_like(targets, p.v_rest)
        scale = p.tau if (p.leaky and p.decay_input) else dt(1)
        x0 = ((targets - v) * scale).astype(dtype)
        best, exact = x0.copy(), np.zeros(targets.shape, bool)
        one_way = np.zeros(targets.shape, bool)
        up, down = x0.copy(), x0.copy()
        for _ in range(_SEARCH_ULPS):                 # nearest candidates first: x0, x0 ± 1 ulp, ...
            for x in (up, down):
                h = charge(v, x, p.tau, p.v_rest, p.decay_input, p.leaky)
                alt = v + (x - (v - p.v_rest)) * (dt(1) / p.tau) if (p.leaky and p.decay_input) else h
                both = (h == targets) & (alt == targets) & ~exact
                first = (h == targets) & ~exact & ~one_way
                best[both | first] = x[both | first]
                exact |= both
                one_way |= first
            up, down = np.nextafter(up, dt(np.inf)), np.nextafter(down, dt(-np.inf))
        return best, exact

    def margin(self, x_seq: np.ndarray, s_seq: np.ndarray) -> np.ndarray:
        """|H − θ| in float64 at every element of x_seq [T, ...], the reset following the spikes `s_seq`
        (the module's own), so that it describes the module's decision at each step."""
        p = self.params
        x = np.asarray(x_seq, dtype=np.float64)
        s = np.asarray(s_seq, dtype=np.float64).reshape(x.shape)
        v = np.full(x.shape[1:], p.v_rest)
        out = np.empty_like(x)
        for t in range(x.shape[0]):
            h = charge(v, x[t], p.tau, p.v_rest, p.decay_input, p.leaky)
            out[t] = np.abs(h - p.v_threshold)
            v = reset(h, s[t], p.v_threshold, p.v_rest, p.soft_reset, 1.0)
        return out


def _surrogate(text: str):
    name, _, alpha = text.partition(":")
    sg = surrogate_lib.get(name)
    return type(sg)(float(alpha)) if alpha else sg


def _bool(key: str, text: str) -> bool:
    if text.lower() not in _BOOLS:
        raise ValueError(f"claims: {key}={text!r} is not a boolean; use 1 or 0")
    return _BOOLS[text.lower()]


def parse_claims(spec: str) -> Claims:
    """Claims from a string such as "lif tau=2 v_threshold=1 reset=hard surrogate=atan:2 detach_reset=1"."""
    words = spec.split()
    if not words or words[0].lower() not in KINDS:
        raise ValueError(f"claims {spec!r}: start with a neuron kind, one of {', '.join(KINDS)} "
                         "(e.g. 'lif tau=2 surrogate=atan:2')")
    cls = KINDS[words[0].lower()]
    accepted = list(inspect.signature(cls).parameters)
    kwargs, fire = {}, "ge"
    for word in words[1:]:
        key, eq, value = word.partition("=")
        key = key.replace("-", "_").lower()
        if not eq:
            raise ValueError(f"claims: expected KEY=VALUE, got {word!r}")
        if key == "fire":
            fire = value.lower()
        elif key == "reset":
            if value.lower() not in ("hard", "soft"):
                raise ValueError(f"claims: reset={value!r}; use reset=hard or reset=soft")
            if value.lower() == "soft":
                kwargs["v_reset"] = None
        elif key == "tau" and cls is ParametricLIF:
            kwargs["init_tau"] = float(value)
        elif key not in accepted:
            raise ValueError(f"claims: {words[0]} has no setting {key!r}; it takes: "
                             f"{', '.join(accepted + ['reset', 'fire'])}")
        elif key == "surrogate":
            kwargs[key] = _surrogate(value)
        elif key in ("decay_input", "detach_reset", "smooth"):
            kwargs[key] = _bool(key, value)
        elif key == "v_reset" and value.lower() == "none":
            kwargs[key] = None
        else:
            try:
                kwargs[key] = float(value)
            except ValueError:
                raise ValueError(f"claims: {key}={value!r} is not a number") from None
    return Claims(cls(**kwargs), fire)


def as_claims(claims, fire: str | None = None) -> Claims:
    """Claims from a Claims, a minisnn neuron or a string; `fire` overrides the spike condition."""
    if isinstance(claims, str):
        claims = parse_claims(claims)
    elif not isinstance(claims, Claims):
        claims = Claims(claims)
    return claims if fire is None else Claims(claims.neuron, fire)


__all__ = ["Claims", "ClaimedRun", "FIRE", "KINDS", "as_claims", "parse_claims"]
