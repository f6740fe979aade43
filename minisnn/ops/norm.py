"""Batch normalisation (over the channel axis 1) and layer normalisation (over trailing axes).

Both normalise, then scale and shift:  x̂ = (x − μ)/√(σ² + ε),  y = γ·x̂ + β.
With M values per statistic, the gradient of the normalisation is

    dx = (γ/√(σ² + ε)) · (g − mean(g) − x̂ · mean(g·x̂)),   dγ = Σ g·x̂,   dβ = Σ g

(mean and Σ over the M values that share μ and σ).  BatchNorm statistics are
per channel over every other axis; LayerNorm statistics are per row over the
normalised trailing axes.  In eval mode BatchNorm uses fixed running statistics,
so it is the affine map y = a·x + c and dx = a·g.
"""
from __future__ import annotations

import numpy as np

from .. import kernels
from ..autograd.function import Function


def _as_channels(x: np.ndarray) -> np.ndarray:
    """View [N, C, *spatial] as a C-contiguous [N, C, L] (L = 1 for [N, C])."""
    return np.ascontiguousarray(x).reshape(x.shape[0], x.shape[1], -1)


def check_batch_norm(x, weight, bias, running_mean, running_var, training: bool) -> None:
    """x [N, C, ...]; γ, β (x's dtype) and the running statistics [C] | None; > 1 value per channel to train."""
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected input of shape [N, C, ...], got shape {x.shape}")
    c = x.shape[1]
    vectors = {"weight": weight, "bias": bias, "running_mean": running_mean, "running_var": running_var}
    for name, v in vectors.items():
        if v is None:
            continue
        if v.shape != (c,):
            raise ValueError(f"batch_norm: {name} must have shape ({c},) for {c} channels, got {v.shape}")
        if name in ("weight", "bias") and v.dtype != x.dtype:
            raise TypeError(f"batch_norm: {name} dtype {v.dtype} differs from input dtype {x.dtype}")
    if training and x.shape[0] * int(np.prod(x.shape[2:])) < 2:
        raise ValueError(f"batch_norm: need more than 1 value per channel in training mode, got input {x.shape}")


def check_layer_norm(x, normalized_shape: tuple[int, ...], weight, bias) -> None:
    """x ends in `normalized_shape` (at least one axis); γ, β of that shape and x's dtype, or None."""
    if tuple(x.shape[x.ndim - len(normalized_shape):]) != normalized_shape:
        raise ValueError(
            f"layer_norm: input of shape {tuple(x.shape)} does not end in normalized_shape {normalized_shape}"
        )
    if not normalized_shape:
        raise ValueError(f"layer_norm: cannot normalise the last 0 axes of an input of shape {x.shape}")
    for v, name in ((weight, "weight"), (bias, "bias")):
        if v is not None and v.shape != normalized_shape:
            raise ValueError(f"layer_norm: {name} must have shape {normalized_shape}, got {v.shape}")
        if v is not None and v.dtype != x.dtype:
            raise TypeError(f"layer_norm: {name} dtype {v.dtype} differs from input dtype {x.dtype}")


def update_running_stats(running_mean, running_var, mean, var, m: int, momentum: float) -> None:
    """In place: running ← (1 − momentum)·running + momentum·batch, the variance unbiased (σ²·M/(M − 1))
    for M values per channel; a running array that is None is skipped."""
    if running_mean is not None:
        running_mean[...] = (1.0 - momentum) * running_mean.astype(np.float64) + momentum * mean
    if running_var is not None:
        unbiased = var * (m / (m - 1))
        running_var[...] = (1.0 - momentum) * running_var.astype(np.float64) + momentum * unbiased


def eval_affine(gamma, beta, running_mean, running_var, eps: float):
    """(μ, invstd, scale, shift), float64 [C]: eval-mode BatchNorm as y = scale·x + shift."""
    mean = running_mean.astype(np.float64)
    invstd = 1.0 / np.sqrt(running_var.astype(np.float64) + eps)
    scale = gamma * invstd
    return mean, invstd, scale, beta - mean * scale


def check_affine(affine, out_channels: int, op: str) -> None:
    """affine is None or (scale, shift), two float64 arrays of shape (out_channels,)."""
    if affine is None:
        return
    if (not isinstance(affine, tuple) or len(affine) != 2
            or any(not isinstance(a, np.ndarray) or a.shape != (out_channels,) or a.dtype != np.float64 for a in affine)):
        raise ValueError(f"{op}: affine must be a pair (scale, shift) of float64 arrays of shape ({out_channels},), "
                         f"as BatchNorm's folded_affine() returns")


def folded_weights(w, b, scale, shift, dtype=None):
    """(W', b') of one layer computing scale·(W x + b) + shift per output channel (axis 0 of W), the product
    formed in float64 and rounded once into `dtype` (default W's): a layer followed by an eval-mode BatchNorm,
    as one layer.

    w [O, ...], b [O] | None, scale and shift float64 [O].  W'[o] = scale[o]·W[o];  b' = scale·b + shift."""
    dtype = w.dtype if dtype is None else dtype
    w2 = w.astype(np.float64) * scale.reshape((-1,) + (1,) * (w.ndim - 1))
    b2 = shift if b is None else scale * b + shift
    return w2.astype(dtype, copy=False), b2.astype(dtype, copy=False)


def scaled_cotangent(g: np.ndarray, scale) -> np.ndarray:
    """g · scale over axis 1 (output channels; None: g): the cotangent that the layer y = f(x) receives when
    it computes scale·f(x) + shift (`folded_weights`) and gets g."""
    return g if scale is None else g * scale.astype(g.dtype).reshape((-1,) + (1,) * (g.ndim - 2))


class BatchNorm(Function):
    """y = γ·(x − μ)/√(σ² + ε) + β per channel;  x [N, C] | [N, C, L] | [N, C, H, W], γ, β [C] | None.

    training=True: μ, σ² are the batch mean and biased variance over every axis but 1,
    and the running statistics (if given) are updated in place:
        running_mean ← (1 − m)·running_mean + m·μ
        running_var  ← (1 − m)·running_var + m·σ²·M/(M − 1)      (unbiased variance)
    training=False: μ, σ² are running_mean, running_var (both required).
    The work is done by the `kernels.batch_norm_*` kernels on the [N, C, L] view of x;
    the call is checked by `check_batch_norm`.
    """

    @staticmethod
    def forward(ctx, x, weight=None, bias=None, running_mean=None, running_var=None,
                training=True, momentum=0.1, eps=1e-5):
        c = x.shape[1]
        x3 = _as_channels(x)
        m = x3.shape[0] * x3.shape[2]
        gamma = np.ones(c, dtype=x.dtype) if weight is None else weight
        beta = np.zeros(c, dtype=x.dtype) if bias is None else bias
        ctx.training = training
        ctx.shape = x.shape
        ctx.has_affine = (weight is not None, bias is not None)
        if training:
            y, mean, var, invstd = kernels.batch_norm_train_forward(x3, gamma, beta, eps)
            update_running_stats(running_mean, running_var, mean, var, m, momentum)
        else:
            mean, invstd, scale, shift = eval_affine(gamma, beta, running_mean, running_var, eps)
            y = kernels.batch_norm_eval_forward(x3, scale.astype(x.dtype), shift.astype(x.dtype))
        ctx.save_for_backward(x3, mean, invstd, gamma)
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, g):
        # training: dx = γ·invstd·(g − Σg/M − (x − μ)·invstd²·Σ g·(x − μ)/M);  eval: dx = γ·invstd·g;
        # both: dγ = invstd·Σ g·(x − μ), dβ = Σ g  (derivation: norm.md)
        x3, mean, invstd, gamma = ctx.saved_tensors
        g3 = np.ascontiguousarray(g).reshape(x3.shape)
        step = kernels.batch_norm_train_backward if ctx.training else kernels.batch_norm_eval_backward
        dx, dw, db = step(g3, x3, mean, invstd, gamma)
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        dx = dx.reshape(ctx.shape) if need_x else None
        dw = dw.astype(g.dtype) if need_w and ctx.has_affine[0] else None
        db = db.astype(g.dtype) if need_b and ctx.has_affine[1] else None
        return dx, dw, db


class LayerNorm(Function):
    """y = γ·(x − μ)/√(σ² + ε) + β, with μ, σ² (biased) over the last `n_axes` axes.

    x [..., *S] with S the normalised shape; γ, β [*S] | None (checked by `check_layer_norm`).
    """

    @staticmethod
    def forward(ctx, x, weight=None, bias=None, n_axes=1, eps=1e-5):
        norm_shape = x.shape[x.ndim - n_axes:]
        d = int(np.prod(norm_shape))
        x2 = x.reshape(-1, d)
        x_hat = x2 - x2.mean(axis=1, keepdims=True)
        var = np.einsum("nd,nd->n", x_hat, x_hat)[:, None] / d
        invstd = 1.0 / np.sqrt(var + eps)
        x_hat *= invstd
        y = x_hat * weight.reshape(1, d) if weight is not None else x_hat.copy()
        if bias is not None:
            y += bias.reshape(1, d)
        ctx.save_for_backward(x_hat, invstd, weight)
        ctx.shape, ctx.norm_shape = x.shape, norm_shape
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, g):
        x_hat, invstd, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        d = x_hat.shape[1]
        g2 = g.reshape(-1, d)
        dx = dw = db = None
        if need_x:
            gx = g2 * weight.reshape(1, d) if weight is not None else g2
            dx = gx - gx.mean(axis=1, keepdims=True)
            dx -= x_hat * (np.einsum("nd,nd->n", gx, x_hat)[:, None] / d)
            dx *= invstd
            dx = dx.reshape(ctx.shape)
        if need_w:
            dw = (g2 * x_hat).sum(axis=0).reshape(ctx.norm_shape)
        if need_b:
            db = g2.sum(axis=0).reshape(ctx.norm_shape)
        return dx, dw, db
