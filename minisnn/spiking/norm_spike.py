"""`batch_norm_spike`: the spikes of a BatchNorm'd token matrix, in one fused kernel pair.

    s = batch_norm_spike(x, bn, threshold=1.0, slope=2.0)    # x [..., C], bn a nn.TokenBatchNorm(C)
    # the same spikes and gradients as  spike(bn(x) over the last axis, slope=2.0, threshold=1.0)

BatchNorm → spiking neuron is the most frequent pattern of the T = 1 models.  As two layers it
stores the BatchNorm output, reads it back to fire, and makes two more passes over the surrogate
gradient in the backward pass; the fused pair recomputes the BatchNorm output from x where it
needs it and stores nothing but x (`kernels/reference/bn_spike.py`; measurements: norm_spike.md).
With `nan_guard=True` the membrane first goes through the models' NaN guard (NaN → 0, ±inf → ±1e4,
gradient 0 there), as Dy-SViT's neurons do.
"""
from __future__ import annotations

import numpy as np

from .. import kernels
from ..autograd.function import Function
from ..ops.norm import check_batch_norm, eval_affine, update_running_stats
from . import surrogate as surrogate_lib
from .functions import _float_input, refuse_nan


def batch_norm_vectors(x, weight, bias, *, running_mean, running_var, training, momentum, eps):
    """The BatchNorm of the rows x [M, C] as the `bn_spike_*` kernels take it: y = (x − centre)·scale + shift.

    Returns ((centre, scale, shift) in x's dtype, mean, invstd, γ): training uses the batch's statistics
    and updates the running ones as `ops.norm.BatchNorm` does; eval uses the running ones (centre = 0).
    mean and invstd are what the gradient (`batch_norm_grads`) is centred and scaled by."""
    c = x.shape[1]
    gamma = np.ones(c, dtype=x.dtype) if weight is None else weight
    beta = np.zeros(c, dtype=x.dtype) if bias is None else bias
    if training:
        mean, var = kernels.batch_norm_moments(x.reshape(x.shape[0], c, 1))
        invstd = 1.0 / np.sqrt(var + eps)
        update_running_stats(running_mean, running_var, mean, var, x.shape[0], momentum)
        centre, scale, shift = mean, gamma * invstd, beta
    else:
        mean, invstd, scale, shift = eval_affine(gamma, beta, running_mean, running_var, eps)
        centre = np.zeros(c)
    vectors = tuple(np.asarray(v).astype(x.dtype) for v in (centre, scale, shift))
    return vectors, mean, invstd, gamma


def batch_norm_grads(du, sum_du, sum_dc, x, mean, invstd, gamma, training, needs, has_affine):
    """(dx, dγ, dβ) of y = BatchNorm(x) [M, C] from du = dL/dy and its sums Σ du, Σ du·(x − mean) (float64
    [C], as `kernels.bn_spike_backward` returns them); needs: which of x, γ, β want a gradient (a Function's
    `needs_input_grad`), has_affine: whether γ and β exist.  None for the gradients not computed.

        training: dx = γ·invstd·(du − Σdu/M − (x − μ)·invstd²·Σdu·(x − μ)/M)      eval: dx = γ·invstd·du
        dγ = invstd·Σ du·(x − mean),  dβ = Σ du
    """
    need_x, need_w, need_b = needs[0], needs[1] and has_affine[0], needs[2] and has_affine[1]
    dx = dw = db = None
    if need_x and training:
        m, c = x.shape
        dx = kernels.batch_norm_train_dx(du.reshape(m, c, 1), x.reshape(m, c, 1), mean, invstd, gamma,
                                         sum_du, sum_dc).reshape(m, c)
    elif need_x:
        dx = du * (gamma * invstd).astype(du.dtype)
    if need_w:
        dw = (sum_dc * invstd).astype(du.dtype)
    if need_b:
        db = sum_du.astype(du.dtype)
    return dx, dw, db


def batch_norm_fire(x, weight, bias, *, running_mean, running_var, training, momentum, eps, threshold, nan_guard):
    """The forward of the fused BatchNorm → spike Functions: the statistics (`batch_norm_vectors`), then the
    spikes of the (guarded) BatchNorm output (`kernels.bn_spike_forward`); NaN reaching the spike is refused.
    x [M, C] C-contiguous.  Returns (s, how many values the guard replaced, (vectors, mean, invstd, γ))."""
    norm = batch_norm_vectors(x, weight, bias, running_mean=running_mean, running_var=running_var,
                              training=training, momentum=momentum, eps=eps)
    s, n_nan, n_replaced = kernels.bn_spike_forward(x, *norm[0], threshold, nan_guard)
    if n_nan:
        refuse_nan("spike: membrane u")
    return s, n_replaced, norm


class BatchNormSpike(Function):
    """s = H(guard(γ·(x − μ)·invstd + β) − θ) per channel of x [M, C];  γ, β [C] | None.

    Forward: the BatchNorm statistics and the spikes (`batch_norm_fire`).
    Backward, with u the (guarded) BatchNorm output and g = dL/ds:
        du = g·∂p/∂x(u − θ; α)  (0 where the guard replaced u)        `kernels.bn_spike_backward`
        dx, dγ, dβ = the BatchNorm gradient of du                      `batch_norm_grads`
    Options: the BatchNorm's (running_mean, running_var, training, momentum, eps) and the spike's
    (threshold, alpha: one slope, kind: the surrogate family's code, nan_guard).
    """

    @staticmethod
    def forward(ctx, x, weight=None, bias=None, *, running_mean, running_var, training, momentum, eps,
                threshold, alpha, kind, nan_guard):
        x = np.ascontiguousarray(x)
        s, _, norm = batch_norm_fire(x, weight, bias, running_mean=running_mean, running_var=running_var,
                                     training=training, momentum=momentum, eps=eps, threshold=threshold,
                                     nan_guard=nan_guard)
        ctx.save_for_backward(x, *norm)
        ctx.training, ctx.has_affine = training, (weight is not None, bias is not None)
        ctx.spike = (threshold, np.full(1, alpha, dtype=x.dtype), kind, nan_guard)
        return s

    @staticmethod
    def backward(ctx, g):
        x, vectors, mean, invstd, gamma = ctx.saved_tensors
        g = np.ascontiguousarray(g, dtype=x.dtype)
        du, sum_du, sum_dc, _ = kernels.bn_spike_backward(g, x, *vectors, mean, *ctx.spike, need_alpha=False)
        return batch_norm_grads(du, sum_du, sum_dc, x, mean, invstd, gamma, ctx.training,
                                ctx.needs_input_grad[:3], ctx.has_affine)


def batch_norm_rows(x, bn, caller: str):
    """Check x [..., C] against `bn` (a BatchNorm1d of C features applied to the rows of x, as a
    `nn.TokenBatchNorm` does) and return (x, rows [M, C], (γ, β), the options of `batch_norm_vectors`)."""
    x = _float_input(x, f"{caller}: input x")
    c = bn.num_features
    if x.ndim < 1 or x.shape[-1] != c:
        raise ValueError(f"{caller}: input of shape {tuple(x.shape)} does not end in the {c} channels "
                         f"of {type(bn).__name__}({c})")
    args = bn.batch_norm_args()
    rows = x.reshape(-1, c)
    training = args["training"] or args["running_mean"] is None or args["running_var"] is None
    check_batch_norm(rows, args["weight"], args["bias"], args["running_mean"], args["running_var"], training)
    options = dict(running_mean=args["running_mean"], running_var=args["running_var"], training=training,
                   momentum=args["momentum"], eps=args["eps"])
    return x, rows, (args["weight"], args["bias"]), options


def batch_norm_spike(x, bn, *, threshold: float = 1.0, slope=None, surrogate="sigmoid", nan_guard: bool = False):
    """Spikes H(guard(bn(x)) − θ) for x [..., C] normalised over its last axis by `bn`, a BatchNorm1d
    of C features applied to the rows [M, C] of x (a `nn.TokenBatchNorm`: what `spike(bn(x))` computes), with the
    surrogate gradient of `spike` into x and into bn's γ, β.  slope: one number (default: the
    surrogate's α).  A training call updates bn's running statistics and counts the batch, as bn(x) does.
    Returns a Tensor of x's shape and dtype; NaN reaching the spike raises ValueError, as `spike` does.
    """
    sg = surrogate_lib.get(surrogate)
    x, rows, affine, options = batch_norm_rows(x, bn, "batch_norm_spike")
    alpha = sg.alpha if slope is None else surrogate_lib.check_slope_value(slope)
    s = BatchNormSpike.apply(rows, *affine, **options, threshold=float(threshold), alpha=float(alpha),
                             kind=sg.kind, nan_guard=bool(nan_guard))
    return s.reshape(x.shape)
