"""Autograd Functions of the spiking core, binding the kernel pairs.

* `SpikeFunction`   s = H(u − θ), backward by the straight-through rule s ≈ p(u − θ; α):
                    gradients into the membrane u AND the slope α (dysvit.md §4.3).
* `LIFFunction`     a whole multi-step LIF / IF sequence in one fused kernel call, with
                    gradients into x_seq, τ (when it is a Tensor) and the slope α.

User-facing wrappers: `spike(...)` and `lif_sequence(...)` (used by `neurons.LIF` & co).
A LIF neuron's settings travel as one `LIFParams` (`minisnn/kernels/lif_params.py`), checked
once when it is built and passed unchanged into `LIFFunction` and the kernels.
The slope may be a number, an array or a Tensor from another part of the graph; it must
broadcast to the membrane's shape (e.g. per token [B, N, 1] against [B, N, C]).
"""
from __future__ import annotations

import math

import numpy as np

from .. import kernels
from ..kernels.lif_params import LIFParams
from ..autograd import grad_mode
from ..autograd.broadcast import unbroadcast
from ..autograd.function import Function
from ..autograd.tensor import Tensor
from ..ops import layout
from . import surrogate as surrogate_lib


# ------------------------------------------------------------------ helpers
def _data(x):
    return x.data if isinstance(x, Tensor) else x


def _float_input(x, what: str):
    """x as a Tensor or float array (kept as is); TypeError for non-float input."""
    if not isinstance(x, Tensor):
        x = np.asarray(x)
    if x.dtype.kind != "f":
        raise TypeError(f"{what} must be a floating-point array or Tensor, got dtype {x.dtype}")
    return x


def _slope_input(slope, default: float, target_shape: tuple, what: str):
    """Validate a slope (number / array / Tensor) against the membrane shape.

    Returns a Tensor (kept, so its gradient flows) or a float array; numbers become 0-d arrays.
    """
    if slope is None:
        return np.asarray(default)
    if isinstance(slope, (int, float, np.integer, np.floating)) and not isinstance(slope, bool):
        return np.asarray(surrogate_lib.check_slope_value(slope))
    arr = _data(slope) if isinstance(slope, Tensor) else np.asarray(slope)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{what}: slope must be a number, array or Tensor of floats, got dtype {arr.dtype}")
    try:
        shape = np.broadcast_shapes(arr.shape, target_shape)
    except ValueError:
        shape = None
    if shape != tuple(target_shape):
        raise ValueError(f"{what}: slope of shape {arr.shape} does not broadcast to the membrane shape "
                         f"{tuple(target_shape)} (e.g. use [B, N, 1] for one slope per token)")
    surrogate_lib.check_slope_array(arr)
    return slope if isinstance(slope, Tensor) else arr.astype(np.float64, copy=False)


def _check_not_nan(u: np.ndarray, what: str) -> None:
    if u.size and math.isnan(float(np.min(u))):  # np.min propagates NaN: one pass, no temporary
        refuse_nan(what)


def refuse_nan(what: str):
    raise ValueError(f"{what} contains NaN (clean it upstream, e.g. with np.nan_to_num)")


# ------------------------------------------------------------------ spike
class SpikeFunction(Function):
    """s = H(u − θ) (H(0) = 1), or p(u − θ; α) when smooth.

    Backward (straight-through, dysvit.md §4.3), with x = u − θ and g = dL/ds:
        dL/du = g·∂p/∂x(x; α),    dL/dα = Σ_broadcast g·∂p/∂α(x; α).
    Inputs: u (any shape, no NaN: ValueError), slope (broadcastable to u).  Options: threshold,
    kind, smooth.  The binary forward and the NaN check are one kernel pass (`spike_forward`).

    When the slope does not vary along u's last axis (one slope, or one per token: [B, N, 1]
    against [B, N, C]), u is seen as rows [R, C] with one slope per row and the `*_rows`
    kernels run without broadcasting the slope; they also sum dL/dα over each row.
    """

    @staticmethod
    def forward(ctx, u, slope, *, threshold: float, kind: int, smooth: bool):
        alpha = np.asarray(slope, dtype=u.dtype)
        rows = _row_slopes(alpha, u.shape)
        if rows is not None:
            u = np.ascontiguousarray(u)
        ctx.save_for_backward(u, alpha, rows)
        ctx.threshold, ctx.kind = threshold, kind
        if not smooth:
            s, n_nan = kernels.spike_forward(u, threshold)  # the NaN check comes with the spikes
            if n_nan:
                refuse_nan("spike: membrane u")
            return s
        _check_not_nan(u, "spike: membrane u")
        if rows is not None:
            p = kernels.surrogate_primitive_rows(u.reshape(rows.size, u.shape[-1]), threshold, rows, kind)
            return p.reshape(u.shape)
        x = u - u.dtype.type(threshold)
        return kernels.surrogate_primitive(x, np.ascontiguousarray(np.broadcast_to(alpha, u.shape)), kind)

    @staticmethod
    def backward(ctx, g):
        u, alpha, rows = ctx.saved_tensors
        need_slope = ctx.needs_input_grad[1]
        if rows is not None:
            g2 = np.ascontiguousarray(g, dtype=u.dtype).reshape(rows.size, u.shape[-1])
            gu, ga = kernels.spike_backward_rows(g2, u.reshape(g2.shape), ctx.threshold, rows, ctx.kind, need_slope)
            gu = gu.reshape(u.shape)
            g_slope = unbroadcast(ga.reshape(u.shape[:-1] + (1,)), alpha.shape) if need_slope else None
        else:
            x = u - u.dtype.type(ctx.threshold)
            a = np.ascontiguousarray(np.broadcast_to(alpha, u.shape))
            gu, ga = kernels.spike_backward(np.ascontiguousarray(g), x, a, ctx.kind, need_slope)
            g_slope = unbroadcast(ga, alpha.shape) if need_slope else None
        return (gu if ctx.needs_input_grad[0] else None), g_slope


def _row_slopes(alpha: np.ndarray, shape: tuple):
    """The slope as one value per row of u seen as [R, C] (C = u's last axis), shape [R]; None when
    it varies along the last axis (or u is 0-d).  α's last axis lines up with u's last axis."""
    if len(shape) == 0 or (alpha.ndim > 0 and alpha.shape[-1] != 1):
        return None
    return np.ascontiguousarray(np.broadcast_to(alpha, tuple(shape[:-1]) + (1,))).reshape(-1)


def spike(u, slope=None, threshold: float = 1.0, surrogate="sigmoid", smooth: bool = False) -> Tensor:
    """Spikes H(u − threshold) with a surrogate gradient into u and into the slope.

    u: Tensor/array of any shape (float).  slope: None (the surrogate's alpha), a number,
    an array or a Tensor broadcastable to u (per token: [B, N, 1] for u [B, N, C]).
    surrogate: a `surrogate.Surrogate` or a name.  smooth: forward p(u − θ; α) instead of H.
    Returns a Tensor of u's shape and dtype.  NaN in u raises ValueError (in `SpikeFunction.forward`).
    """
    sg = surrogate_lib.get(surrogate)
    u = _float_input(u, "spike: membrane u")
    slope = _slope_input(slope, sg.alpha, u.shape, "spike")
    return SpikeFunction.apply(u, slope, threshold=float(threshold), kind=sg.kind, smooth=bool(smooth))


# ------------------------------------------------------------------ LIF sequence
def _alpha_layout(slope: np.ndarray, x_shape: tuple, dtype) -> np.ndarray:
    """Slope as the kernels' [A_t, A_m] array (A_t ∈ {1, T}, A_m ∈ {1, M})."""
    T = x_shape[0]
    if slope.size == 1:
        return np.asarray(slope, dtype=dtype).reshape(1, 1)
    full = (1,) * (len(x_shape) - slope.ndim) + slope.shape
    per_step = full[0] != 1
    b = np.broadcast_to(slope.reshape(full), ((T,) if per_step else (1,)) + tuple(x_shape[1:]))
    return np.ascontiguousarray(b, dtype=dtype).reshape(b.shape[0], -1)


class LIFFunction(Function):
    """Multi-step LIF / IF neurons over axis 0 (one fused kernel call each way).

    Inputs: x_seq [T, ...]; tau (number or 0-d Tensor, so that τ can be learned; its value is
    `params.tau`); slope (broadcastable to x_seq).  Option: params, the neuron's `LIFParams`.
    Equations: `kernels/lif_params.py`, backward: `kernels/reference/lif.py`.

    When only x_seq needs a gradient and the reset needs no H (soft, or detached with
    binary spikes), the forward also saves ψ = p'(H − θ) with each spike in its sign bit
    and backward runs `lif_backward_saved` from that one array; otherwise backward
    recomputes everything from x_seq (`lif_backward`).  Without a graph (and with one slope
    for all neurons) the spikes keep x_seq's memory order, a channels-last image's included
    (`ops/layout.py`); with one they are C-contiguous.
    """

    @staticmethod
    def forward(ctx, x_seq, tau, slope, *, params: LIFParams):
        slope = np.asarray(slope)
        order = layout.axes_in_memory_order(x_seq)
        if order is not None and slope.size == 1 and not (grad_mode.is_grad_enabled() and any(ctx.needs_input_grad)):
            # no graph: every neuron runs on its own, so any memory order of the axes after T will do; keep
            # x_seq's (a channels-last image stays one: `ops.layout`)
            x_mem = x_seq.transpose(order)
            alpha = _alpha_layout(slope, x_seq.shape, x_seq.dtype)
            s_mem = kernels.lif_forward(x_mem.reshape(x_seq.shape[0], -1), alpha, params)
            return s_mem.reshape(x_mem.shape).transpose(np.argsort(order))
        x2 = np.ascontiguousarray(x_seq).reshape(x_seq.shape[0], -1)
        alpha = _alpha_layout(slope, x_seq.shape, x_seq.dtype)
        need_x, need_tau, need_slope = ctx.needs_input_grad
        ctx.saved_path = (grad_mode.is_grad_enabled() and need_x and not (need_tau or need_slope)
                          and (params.soft_reset or (params.detach_reset and not params.smooth)))
        ctx.shapes = (x_seq.shape, slope.shape, np.shape(tau), np.asarray(tau).dtype)
        ctx.params = params
        if ctx.saved_path:
            s2, q2 = kernels.lif_forward_with_psi(x2, alpha, params)
            ctx.save_for_backward(q2)
        else:
            s2 = kernels.lif_forward(x2, alpha, params)
            ctx.save_for_backward(x2, alpha)
        return s2.reshape(x_seq.shape)

    @staticmethod
    def backward(ctx, g):
        x_shape, slope_shape, tau_shape, tau_dtype = ctx.shapes
        params = ctx.params
        need_x, need_tau, need_slope = ctx.needs_input_grad
        if ctx.saved_path:
            (q2,) = ctx.saved_tensors
            g2 = np.ascontiguousarray(g, dtype=q2.dtype).reshape(q2.shape)
            return kernels.lif_backward_saved(g2, q2, params).reshape(x_shape), None, None
        x2, alpha = ctx.saved_tensors
        g2 = np.ascontiguousarray(g, dtype=x2.dtype).reshape(x2.shape)
        gx, ga, g_tau = kernels.lif_backward(g2, x2, alpha, params, need_slope, need_tau and params.leaky)
        grad_x = gx.reshape(x_shape) if need_x else None
        grad_tau = np.full(tau_shape, g_tau, dtype=tau_dtype) if need_tau else None
        grad_slope = unbroadcast(ga.reshape(x_shape), slope_shape) if need_slope else None
        return grad_x, grad_tau, grad_slope


def lif_sequence(x_seq, tau=2.0, v_threshold: float = 1.0, v_reset: float | None = 0.0, decay_input: bool = True,
                 detach_reset: bool = True, surrogate="sigmoid", slope=None, smooth: bool = False,
                 leaky: bool = True, *, params: LIFParams | None = None) -> Tensor:
    """Spikes of LIF (leaky=True) or IF (leaky=False) neurons driven by x_seq [T, ...] from rest.

    tau: number > 0 or a 0-d Tensor (learnable).  v_reset=None: soft reset.  slope: None,
    number, array or Tensor broadcastable to x_seq.  Returns a Tensor of x_seq's shape/dtype.

    params: all the settings at once, as a `LIFParams` (a neuron passes its `.params`); then
    tau … leaky are not read, except a Tensor `tau`: a learnable τ whose current value
    replaces params.tau.  `surrogate` (its default slope) must then be of kind params.kind.
    """
    sg = surrogate_lib.get(surrogate)
    x_seq = _float_input(x_seq, "LIF input x_seq")
    if x_seq.ndim < 1 or x_seq.shape[0] < 1:
        raise ValueError(f"LIF input x_seq must be [T, ...] with T >= 1, got shape {tuple(x_seq.shape)}")
    if params is None:
        params = LIFParams.make(_tau_value(tau) if leaky else 1.0, v_threshold, v_reset, decay_input, leaky,
                                detach_reset, sg.kind, smooth)
    else:
        if sg.kind != params.kind:
            raise ValueError(f"surrogate {sg!r} is not of the kind of params (surrogate kind {params.kind})")
        if isinstance(tau, Tensor) and params.leaky:
            params = params.with_tau(_tau_value(tau))
    if not (isinstance(tau, Tensor) and params.leaky):
        tau = np.asarray(params.tau)
    slope = _slope_input(slope, sg.alpha, x_seq.shape, "LIF")
    return LIFFunction.apply(x_seq, tau, slope, params=params)


def _tau_value(tau) -> float:
    """The value of a single-number τ (number, 0-d array or Tensor); checked by LIFParams.make."""
    t = _data(tau)
    if np.size(t) != 1:
        raise ValueError(f"tau must be a single number, got shape {np.shape(t)}")
    return float(np.asarray(t).reshape(()))


__all__ = ["SpikeFunction", "LIFFunction", "spike", "lif_sequence"]
