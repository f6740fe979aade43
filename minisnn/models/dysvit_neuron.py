"""Dy-SViT's spiking neuron: a single-step IF neuron whose surrogate slope comes from a hypernetwork.

Reconstruction (docs/models.md, section Dy-SViT, says which parts are documented; the model
card documents only "bounded dynamic slope in [1, 5], meta-learned per token"):

    charge:  u = input current                  [B, N, C]   (T = 1: no membrane memory)
    fire:    s = H(u − θ),  H(0) = 1              θ = 1 (0.5 for the attention neuron)
    reset:   none needed at T = 1 (the state is discarded after the step)

    slope:   k = 1 + 4·σ(w2ᵀ ReLU(W1ᵀ u_tok + b1) + b2)      per token, [B, N, 1], k ∈ (1, 5)

The spike is the two-input `minisnn.spiking.spike(u, slope=k)`: forward H(u − θ); backward
differentiates the primitive σ(k·(u − θ)) in both u (backbone surrogate gradient) and
k (the hypernetwork's learning signal).  The hypernetwork reads u detached, so the
backbone gradient stays a pure surrogate gradient.  At initialisation w2 = 0 and
b2 = ln(1/3), so every token starts at k = 2: Dy-SViT starts as the static k = 2 network.
"""
from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from .. import kernels
from ..autograd.function import Function
from ..autograd.grad_mode import is_grad_enabled
from ..kernels.reference.bn_spike import GUARD, membrane  # NaN guard: NaN → 0, ±inf → ±GUARD (1e4)
from ..nn import Linear, Module, TokenBatchNorm, init
from ..spiking import batch_norm_spike, spike, surrogate
from ..spiking.norm_spike import batch_norm_fire, batch_norm_grads, batch_norm_rows

SLOPE_MIN, SLOPE_MAX, SLOPE_INIT = 1.0, 5.0, 2.0


def guard(x):
    """The model's NaN guard: replace NaN by 0 and ±inf by ±1e4 (gradient 0 there)."""
    return F.nan_to_num(x, nan=0.0, posinf=GUARD, neginf=-GUARD)


class SlopeHypernetFunction(Function):
    """k = low + span·σ(guard(ReLU(u W1ᵀ + b1)·w2 + b2)) per token.

    u [..., C], W1 [H, C], b1 [H], W2 [1, H], b2 [1] → k [..., 1].  Forward: one GEMM (pre = u W1ᵀ)
    and one fused pass (`kernels.slope_hypernet_forward`); backward: one fused pass
    (`kernels.slope_hypernet_backward`: dh and the sums db1, dw2, db2) and one GEMM, dW1 = dhᵀ u
    (du = dh W1 when u wants a gradient; the model's hypernetworks read u detached).
    """

    @staticmethod
    def forward(ctx, u, w1, b1, w2, b2, *, low, span):
        u2 = u.reshape(-1, w1.shape[1])
        h, z, k = kernels.slope_hypernet_forward(u2 @ w1.T, b1, w2.reshape(-1), b2[0], low, span)
        ctx.save_for_backward(u2, w1, w2, h, z)
        ctx.u_shape, ctx.span = u.shape, span
        return k.reshape(u.shape[:-1] + (1,))

    @staticmethod
    def backward(ctx, dk):
        u2, w1, w2, h, z = ctx.saved_tensors
        dk = np.ascontiguousarray(dk, dtype=h.dtype).reshape(-1)
        dh, db1, dw2, db2 = kernels.slope_hypernet_backward(dk, h, z, w2.reshape(-1), ctx.span)
        need_u, need_w1 = ctx.needs_input_grad[:2]
        du = (dh @ w1).reshape(ctx.u_shape) if need_u else None
        dw1 = np.ascontiguousarray((u2.T @ dh).T) if need_w1 else None   # uᵀ dh: BLAS's faster orientation
        return du, dw1, db1, dw2.reshape(w2.shape), db2.reshape(1)


class BatchNormHypernetSpike(Function):
    """BatchNorm → dynamic-slope neuron as one Function: s = H(u − θ) for u = guard(BatchNorm(x)), whose
    surrogate slope per row, k = low + span·σ(ReLU(u W1ᵀ + b1)·w2 + b2), the hypernetwork computes from u
    (detached: no gradient from k into x, γ, β).

    x [M, C]; γ, β [C] | None; W1 [H, C], b1 [H], W2 [1, H], b2 [1] → s [M, C].  u is never stored.
    Forward: the BatchNorm statistics and the spikes (`norm_spike.batch_norm_fire`), then the hypernetwork
    with the BatchNorm folded into its first layer, u W1ᵀ + b1 = x W1'ᵀ + b1' (W1' = W1·diag(scale),
    b1' = b1 + W1 (shift − centre·scale), folded in float64); where the guard replaced values u is made and
    used instead.  Backward: `kernels.bn_spike_backward` with k per row gives du, the BatchNorm's sums and
    dk; dx, dγ, dβ = the BatchNorm gradient of du (`batch_norm_grads`); `kernels.slope_hypernet_backward`(dk)
    gives dh, db1, dW2, db2; dW1 = (uᵀ dh)ᵀ with uᵀ dh = diag(scale)·xᵀ dh + (shift − centre·scale) ⊗ Σ_r dh_r.
    The same spikes and, to rounding, the same gradients as BatchNorm, the guard, the hypernetwork and
    `spike(u, slope=k)` run one by one (`tests/models/test_dysvit_fused.py`).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, w1, b1, w2, b2, *, running_mean, running_var, training, momentum, eps,
                threshold, kind, nan_guard, low, span):
        x = np.ascontiguousarray(x)
        s, n_replaced, (vectors, mean, invstd, gamma) = batch_norm_fire(
            x, weight, bias, running_mean=running_mean, running_var=running_var, training=training,
            momentum=momentum, eps=eps, threshold=threshold, nan_guard=nan_guard)
        if n_replaced:                    # u where the guard replaced values: the GEMM reads it as it is
            with np.errstate(invalid="ignore", over="ignore"):
                u = membrane(x, *vectors, nan_guard=True)[0]
            pre, bias1 = u @ w1.T, b1
        else:
            u = None
            centre, scale, shift = (v.astype(np.float64) for v in vectors)
            pre = x @ (w1 * scale).astype(x.dtype).T
            bias1 = (b1 + w1.astype(np.float64) @ (shift - centre * scale)).astype(x.dtype)
        h, z, k = kernels.slope_hypernet_forward(pre, bias1, w2.reshape(-1), b2[0], low, span)
        ctx.save_for_backward(x, vectors, mean, invstd, gamma, u, w1, w2, h, z, k)
        ctx.training, ctx.has_affine = training, (weight is not None, bias is not None)
        ctx.spike, ctx.span = (threshold, kind, nan_guard), span
        return s

    @staticmethod
    def backward(ctx, g):
        x, vectors, mean, invstd, gamma, u, w1, w2, h, z, k = ctx.saved_tensors
        threshold, kind, nan_guard = ctx.spike
        g = np.ascontiguousarray(g, dtype=x.dtype)
        du, sum_du, sum_dc, dk = kernels.bn_spike_backward(g, x, *vectors, mean, threshold, k, kind, nan_guard,
                                                            need_alpha=True)
        dx, dgamma, dbeta = batch_norm_grads(du, sum_du, sum_dc, x, mean, invstd, gamma, ctx.training,
                                             ctx.needs_input_grad[:3], ctx.has_affine)
        dh, db1, dw2, db2 = kernels.slope_hypernet_backward(dk, h, z, w2.reshape(-1), ctx.span)
        if u is not None:
            u_dh = u.T @ dh
        else:
            centre, scale, shift = vectors
            u_dh = scale[:, None] * (x.T @ dh) + (shift - centre * scale)[:, None] * db1
        return dx, dgamma, dbeta, np.ascontiguousarray(u_dh.T), db1, dw2.reshape(w2.shape), db2.reshape(1)


def batch_norm_hypernet_spike(x, bn, hyper: "SlopeHypernet", *, threshold: float, nan_guard: bool):
    """The spikes of `spike(u, slope=hyper(u.detach()), surrogate="sigmoid")` for u = guard(bn(x)), x [..., C]
    and bn a `TokenBatchNorm`, as one `BatchNormHypernetSpike`; bn's running statistics are updated as bn(x)
    updates them.  Returns a Tensor of x's shape."""
    x, rows, affine, options = batch_norm_rows(x, bn, "DynamicSlopeNeuron")
    s = BatchNormHypernetSpike.apply(rows, *affine, hyper.fc1.weight, hyper.fc1.bias, hyper.fc2.weight,
                                     hyper.fc2.bias, **options, threshold=float(threshold),
                                     kind=surrogate.get("sigmoid").kind, nan_guard=bool(nan_guard),
                                     low=SLOPE_MIN, span=hyper.span)
    return s.reshape(x.shape)


class SlopeHypernet(Module):
    """Per-token slope k = 1 + 4·σ(fc2(ReLU(fc1(u)))) ∈ (1, 5).  u: [B, N, C] → k: [B, N, 1].

    The two layers run as one `SlopeHypernetFunction` (a NaN guard before σ, as everywhere in the model).
    """

    def __init__(self, channels: int, hidden: int = 16, dtype=np.float32):
        super().__init__()
        self.fc1 = Linear(channels, hidden, dtype=dtype)
        self.fc2 = Linear(hidden, 1, dtype=dtype)
        init.trunc_normal_(self.fc1.weight, std=0.02)
        init.zeros_(self.fc1.bias)
        init.zeros_(self.fc2.weight)
        span = SLOPE_MAX - SLOPE_MIN
        init.constant_(self.fc2.bias, math.log((SLOPE_INIT - SLOPE_MIN) / (SLOPE_MAX - SLOPE_INIT)))
        self.span = span

    def forward(self, u):
        return SlopeHypernetFunction.apply(u, self.fc1.weight, self.fc1.bias, self.fc2.weight, self.fc2.bias,
                                           low=SLOPE_MIN, span=self.span)


class DynamicSlopeNeuron(Module):
    """IF neuron at T = 1 with a learned (or fixed) per-token surrogate slope.

    Spike condition u ≥ θ; no reset (single step); nothing to detach.
    `dynamic=False` gives the static-slope ablation (k = 2 everywhere, no hypernetwork).
    With `record = True` the last spikes (`last_s_seq`, [1, B, N, C]) and slopes
    (`last_slope`, [B, N]) are kept for monitors and precision maps; outputs do not change.
    """

    def __init__(self, channels: int, threshold: float = 1.0, dynamic: bool = True, hidden: int = 16,
                 nan_guard: bool = True, dtype=np.float32):
        super().__init__()
        self.threshold = float(threshold)
        self.nan_guard = nan_guard
        self.dynamic = dynamic
        if dynamic:
            self.hyper = SlopeHypernet(channels, hidden, dtype=dtype)
        self.record = False
        self.last_s_seq = None
        self.last_slope = None

    def slope(self, u):
        """Per-token slope [B, N, 1] for membrane u [B, N, C] (a Tensor on the graph of the hypernetwork)."""
        if not self.dynamic:
            return SLOPE_INIT
        return self.hyper(u.detach())

    def _hypernet_needed(self) -> bool:
        """Whether this call evaluates the hypernetwork: the slope only shapes the backward pass, so only
        when something will be differentiated, or when the slopes are recorded."""
        return self.dynamic and (is_grad_enabled() or self.record)

    def forward(self, u):
        if self.nan_guard:
            u = guard(u)
        k = self.slope(u) if self._hypernet_needed() else SLOPE_INIT
        s = spike(u, slope=k, threshold=self.threshold, surrogate="sigmoid")
        if self.record:
            self.last_s_seq = s.data[None].copy()
            kd = k.data if hasattr(k, "data") else np.full(u.shape[:-1] + (1,), k, dtype=u.dtype)
            self.last_slope = np.array(kd[..., 0], copy=True)
        return s

    def after_norm(self, norm, h):
        """self(norm(h)) for any layer `norm`.  When norm is a `TokenBatchNorm` (a BatchNorm over the last
        axis of h [..., C]) and nothing is recorded, this runs fused: as `spiking.batch_norm_spike` when the
        slope is fixed or unused (no graph), else as `BatchNormHypernetSpike`, with the hypernetwork.  The
        same spikes and gradients, fewer passes over memory."""
        if self.record or not isinstance(norm, TokenBatchNorm):  # Identity: no pre-norm
            return self(norm(h))
        if self._hypernet_needed():
            return batch_norm_hypernet_spike(h, norm, self.hyper, threshold=self.threshold, nan_guard=self.nan_guard)
        return batch_norm_spike(h, norm, threshold=self.threshold, slope=SLOPE_INIT, surrogate="sigmoid",
                                nan_guard=self.nan_guard)

    def reset_state(self) -> None:
        """Part of the neuron protocol (`reset_net`).  At T = 1 every call starts from a zero
        membrane, so this neuron carries no state between calls and there is nothing to clear."""

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, dynamic={self.dynamic}, nan_guard={self.nan_guard}"
