"""The settings of a LIF / IF neuron (`LIFParams`) and the equations of one time step, written once.

Every implementation of the neuron uses what is here: the NumPy reference kernel
(`reference/lif.py`) calls the step functions on arrays, the Numba kernel (`jit/lif.py`)
compiles these very functions inline for scalars, `BaseNeuron.step` calls them on Tensors
and the parity report on float64 arrays.  They use only `+ − × /` and comparisons, so the
same lines serve all four.

One step (the derivation of the backward pass is in `minisnn/spiking/bptt.md`):

    charge   H = V + (X − (V − v_r)) / τ      LIF, decay_input=True
             H = V − (V − v_r) / τ + X        LIF, decay_input=False
             H = V + X                        IF (leaky=False)
    fire     S = 1 where H ≥ θ, else 0        (H == θ fires)
    reset    V = H·(1 − S) + v_r·S            hard reset
             V = H − θ·S                      soft reset
    with v_r the rest value (`v_rest`): v_reset for a hard reset, 0 for a soft one; V starts at v_r.

The partial derivatives that backward needs sit next to the equation they differentiate.

Numba's on-disk cache only checks the file of the function it compiled: after editing a
formula here, touch `jit/lif.py` (or delete the cached `*.nbi`/`*.nbc` files) so that the
kernels are compiled again with it.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .reference.surrogate import SIGMOID
from .surrogates import lookup


class LIFParams(NamedTuple):
    """Everything that defines a LIF / IF neuron, as one immutable value.

    Build it with `LIFParams.make(...)`, which checks the values; kernels, `lif_sequence` and
    `LIFFunction` pass it along unchanged (Numba takes it as a named tuple).

    tau           membrane time constant τ > 0 (1.0 and unused when not leaky)
    v_threshold   spike threshold θ (finite)
    v_rest        v_r: the hard reset's value, 0 for the soft reset; also the leak target and V[−1]
    soft_reset    V = H − θ·S instead of the hard reset to v_r
    decay_input   charge H = V + (X − (V − v_r))/τ (True) or V − (V − v_r)/τ + X (False)
    leaky         LIF (True) or IF (False: H = V + X)
    detach_reset  the S inside the reset is a constant for backward
    kind          surrogate code (`kernels.surrogates`: SIGMOID, ATAN, ... or a family defined with
                  `minisnn.spiking.surrogate.define`)
    smooth        forward emits p(H − θ; α) instead of the step (for exact gradient checks)
    """

    tau: float
    v_threshold: float
    v_rest: float
    soft_reset: bool
    decay_input: bool
    leaky: bool
    detach_reset: bool
    kind: int
    smooth: bool

    @classmethod
    def make(cls, tau=2.0, v_threshold=1.0, v_reset=0.0, decay_input=True, leaky=True, detach_reset=True,
             kind=SIGMOID, smooth=False) -> LIFParams:
        """Checked settings; `v_reset=None` selects the soft reset.  ValueError for a τ that is not
        finite and > 0 (only checked when leaky), a non-finite threshold or reset value, or an
        unknown surrogate kind."""
        if leaky:
            tau = float(tau)
            if not math.isfinite(tau) or tau <= 0:
                raise ValueError(f"tau must be finite and > 0, got {tau}")
        else:
            tau = 1.0
        if not math.isfinite(float(v_threshold)):
            raise ValueError(f"v_threshold must be finite, got {v_threshold}")
        if v_reset is not None and not math.isfinite(float(v_reset)):
            raise ValueError(f"v_reset must be finite or None (soft reset), got {v_reset}")
        lookup(kind)  # ValueError for a code no surrogate family is registered under
        return cls(tau, float(v_threshold), 0.0 if v_reset is None else float(v_reset), v_reset is None,
                   bool(decay_input), bool(leaky), bool(detach_reset), int(kind), bool(smooth))

    @property
    def v_reset(self) -> float | None:
        """The reset value as the neurons take it: None for the soft reset."""
        return None if self.soft_reset else self.v_rest

    def with_tau(self, tau: float) -> LIFParams:
        """The same neuron with time constant `tau` (checked), e.g. the current value of a learnable τ."""
        if not self.leaky:
            return self
        return LIFParams.make(tau, self.v_threshold, self.v_reset, self.decay_input, self.leaky,
                              self.detach_reset, self.kind, self.smooth)

    def in_dtype(self, dtype) -> LIFParams:
        """τ, θ and v_r as scalars of `dtype`, so that float32 maths stays float32 (the kernels call
        this first; the flags become plain bool / int, so Numba compiles one version per dtype)."""
        dt = np.dtype(dtype).type
        return LIFParams(dt(self.tau), dt(self.v_threshold), dt(self.v_rest), bool(self.soft_reset),
                         bool(self.decay_input), bool(self.leaky), bool(self.detach_reset), int(self.kind),
                         bool(self.smooth))


# ------------------------------------------------------------------ one time step
def charge(v, x, tau, v_rest, decay_input, leaky):
    """H from the membrane V (after the last step) and the input X."""
    if not leaky:
        return v + x
    if decay_input:
        return v + (x - (v - v_rest)) / tau
    return v - (v - v_rest) / tau + x


def charge_slopes(tau, decay_input, leaky, one):
    """(∂H/∂X, ∂H/∂V), constant over time: (1/τ or 1, 1 − 1/τ) for LIF, (1, 1) for IF.
    `one` is 1 in the working dtype."""
    dh_dx = one / tau if leaky and decay_input else one
    dh_dv = one - one / tau if leaky else one
    return dh_dx, dh_dv


def charge_d_tau(v, x, tau, v_rest, decay_input):
    """∂H/∂τ of the LIF charge at membrane V and input X."""
    if decay_input:
        return -(x - (v - v_rest)) / (tau * tau)
    return (v - v_rest) / (tau * tau)


def fires(h, v_threshold):
    """The spike condition H ≥ θ (True / False, element-wise for arrays)."""
    return h >= v_threshold


def reset(h, s, v_threshold, v_rest, soft_reset, one):
    """V after the spike S: H·(1 − S) + v_r·S (hard) or H − θ·S (soft).
    `one` is 1 in the working dtype (a bare 1.0 would turn float32 scalars into float64 in Numba)."""
    if soft_reset:
        return h - v_threshold * s
    return h * (one - s) + v_rest * s


def reset_slopes(h, s, v_threshold, v_rest, soft_reset, one):
    """(∂V/∂H with S held fixed, ∂V/∂S) of the reset: (1 − S, v_r − H) hard, (1, −θ) soft."""
    if soft_reset:
        return one, -v_threshold
    return one - s, v_rest - h


__all__ = ["LIFParams", "charge", "charge_slopes", "charge_d_tau", "fires", "reset", "reset_slopes"]
