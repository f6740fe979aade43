"""BatchNorm1d/2d and LayerNorm modules (PyTorch names, buffers, defaults and reprs)."""
from __future__ import annotations

import numpy as np

from .. import functional as F
from ..ops.norm import eval_affine
from .layers import float_dtype
from .module import Module, Parameter


class _BatchNorm(Module):
    """Per-channel batch normalisation over axis 1 (train: batch statistics; eval: running statistics).

    Parameters weight (γ = 1) and bias (β = 0, unless bias=False) [C] when affine; buffers running_mean (0),
    running_var (1) [C] and num_batches_tracked (int64, shape ()) when track_running_stats.
    momentum=None uses the cumulative average (factor 1/num_batches_tracked).
    """

    ranks: tuple[int, ...] = ()
    expected = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, dtype=np.float32, *, bias: bool = True):
        super().__init__()
        dtype = float_dtype(dtype)
        self.num_features = int(num_features)
        self.eps, self.momentum = float(eps), momentum
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        self.weight = Parameter(np.ones(self.num_features, dtype=dtype)) if affine else None
        self.bias = Parameter(np.zeros(self.num_features, dtype=dtype)) if affine and bias else None
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(self.num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(self.num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def forward(self, x):
        if x.ndim not in self.ranks:
            raise ValueError(f"{type(self).__name__}: expected {self.expected} input, got shape {tuple(x.shape)}")
        if x.shape[1] != self.num_features:
            raise ValueError(
                f"{type(self).__name__}: input has {x.shape[1]} channels (axis 1), expected {self.num_features}"
            )
        return F.batch_norm(x, **self.batch_norm_args())

    def batch_norm_args(self) -> dict:
        """The keyword arguments of `F.batch_norm` for one call of this layer (a training call counts
        the batch in num_batches_tracked); also what the fused `spiking.batch_norm_spike` takes."""
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked += 1
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked)
        use_batch = self.training or not self.track_running_stats
        track = not self.training or self.track_running_stats
        return dict(running_mean=self.running_mean if track else None, running_var=self.running_var if track else None,
                    weight=self.weight, bias=self.bias, training=use_batch, momentum=factor, eps=self.eps)

    def folded_affine(self):
        """(scale, shift), float64 [C]: what this layer computes, y = scale·x + shift per channel, when it
        normalises with its running statistics (eval mode); None when it uses the batch's statistics.
        `F.conv2d`, `F.conv1d` and `F.linear` take it as `affine` to fold this layer into theirs."""
        if self.training or not self.track_running_stats:
            return None
        gamma = np.ones(self.num_features) if self.weight is None else self.weight.data
        beta = np.zeros(self.num_features) if self.bias is None else self.bias.data
        return eval_affine(gamma, beta, self.running_mean, self.running_var, self.eps)[2:]

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """BatchNorm over x [N, C] or [N, C, L]."""

    ranks = (2, 3)
    expected = "2-d [N, C] or 3-d [N, C, L]"


class TokenBatchNorm(BatchNorm1d):
    """BatchNorm1d over the last axis of x [..., C]: tokens [B, N, C] (statistics over B·N) or channels-last
    pixels [B, H, W, C] (over B·H·W, as BatchNorm2d on [B, C, H, W]).  Same numbers as PyTorch's
    BatchNorm1d on the transposed tensor, without the transposes.  A Dy-SViT neuron's
    `after_norm(bn, x)` runs neuron(bn(x)) as one fused BatchNorm → spike (`spiking.batch_norm_spike`, or
    `models.dysvit_neuron.BatchNormHypernetSpike` for a dynamic slope).
    """

    def forward(self, x):
        if x.ndim < 2:
            raise ValueError(f"TokenBatchNorm: expected input [..., C] with at least 2 axes, got shape "
                             f"{tuple(x.shape)}")
        return super().forward(x.reshape(-1, x.shape[-1])).reshape(x.shape)


class BatchNorm2d(_BatchNorm):
    """BatchNorm over x [N, C, H, W]."""

    ranks = (4,)
    expected = "4-d [N, C, H, W]"


class LayerNorm(Module):
    """Normalise over the trailing `normalized_shape` axes;  weight (1) and bias (0) have that shape."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, dtype=np.float32):
        super().__init__()
        dtype = float_dtype(dtype)
        if isinstance(normalized_shape, (int, np.integer)):
            normalized_shape = (int(normalized_shape),)
        self.normalized_shape = tuple(int(n) for n in normalized_shape)
        self.eps = float(eps)
        self.elementwise_affine = bool(elementwise_affine)
        self.weight = Parameter(np.ones(self.normalized_shape, dtype=dtype)) if elementwise_affine else None
        self.bias = Parameter(np.zeros(self.normalized_shape, dtype=dtype)) if elementwise_affine and bias else None

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")
