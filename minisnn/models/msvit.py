"""MSViT for CIFAR-10 (upstream `MSViT/cifar10/model.py`, class `MSFormer`; spec upstream_models.md §2).

MSViT is a fork of QKFormer with wider early stages (dims E/2, E/2, E) and a multi-scale
token attention (MSSA) in stages 1 and 2.  Next to the point-wise query Q it computes a
second query P with a 3-tap Conv1d along the row-major flattened token sequence
(n = h·W + w, zero-padded only at the sequence ends, so it wraps across rows):

    Q = LIF(BN(conv1x1(X))),  K = LIF(BN(conv1x1(X))),  P = LIF(BN(conv1d_k3(X)))
    A[t, b, i, n] = attn_lif( Σ_j Q[t, b, i·d + j, n] + Σ_j P[t, b, i·d + j, n] )
    out = proj_lif(BN(conv1x1(A ⊙ K) + b))

Cost is linear in the number of tokens.  Stage 3 uses spiking self-attention.

Upstream quirks, reproduced by default so outputs equal the upstream code's:
* `attn_threshold=1.0`: the upstream neuron builder drops the intended 0.5, so every
  attention neuron fires at 1.0 (pass 0.5 for the paper's design);
* `stage3_proj_lif="merged"`: the stage-3 projection neuron runs over the merged T·B axis
  ("per_sample" gives batch-independent outputs; see blocks.SpikingSelfAttention).
MSViT-C10 (E 384, 8 heads, depth 4, T 4) has 7,558,762 parameters.
"""
from __future__ import annotations

import functools

from ..attention import head_column_sum, head_token_mask
from ..autograd.tensor import Tensor
from ..nn import BatchNorm1d, Conv1d, Module
from .blocks import HierarchicalSpikingTransformer, conv_bn, lif


class TokenMSAttention(Module):
    """MSSA (`Token_MS_Attention`, key prefix `tssa`).  x_seq [T, B, C, H, W] -> same shape."""

    def __init__(self, dim: int, num_heads: int, attn_threshold: float = 1.0):
        super().__init__()
        self.num_heads = num_heads
        self.q_conv, self.q_bn, self.q_lif = Conv1d(dim, dim, 1, bias=False), BatchNorm1d(dim), lif()
        self.k_conv, self.k_bn, self.k_lif = Conv1d(dim, dim, 1, bias=False), BatchNorm1d(dim), lif()
        self.p_conv = Conv1d(dim, dim, 3, padding=1, bias=False)     # 3 neighbouring tokens in raster order
        self.p_bn = BatchNorm1d(dim)
        self.p_lif = lif()
        self.attn_lif = lif(attn_threshold)
        self.proj_conv = Conv1d(dim, dim, 1)
        self.proj_bn = BatchNorm1d(dim)
        self.proj_lif = lif()

    def forward(self, x_seq: Tensor) -> Tensor:
        T, B, C, H, W = x_seq.shape
        h = self.num_heads
        tokens = x_seq.reshape(T, B, C, H * W)
        q = self.q_lif(conv_bn(self.q_conv, self.q_bn, tokens))        # [T, B, C, N]
        k = self.k_lif(conv_bn(self.k_conv, self.k_bn, tokens))
        p = self.p_lif(conv_bn(self.p_conv, self.p_bn, tokens))
        a = self.attn_lif(head_column_sum(q, h) + head_column_sum(p, h))   # [T, B, h, N]
        y = conv_bn(self.proj_conv, self.proj_bn, head_token_mask(a, k, h))
        return self.proj_lif(y).reshape(T, B, C, H, W)


class MSViT(HierarchicalSpikingTransformer):
    """MSViT.  images [B, in_channels, img_size, img_size] (normalised) -> logits [B, num_classes].

    Arguments are the upstream ones (see `HierarchicalSpikingTransformer`).  Defaults reproduce
    the upstream code, quirks included.
    """

    family = "msvit"
    token_attention = TokenMSAttention
    stage_divisors = (2, 2)
    # The upstream quirk: the attention neurons fire at 1.0, not the intended 0.5 (see the module doc).
    __init__ = functools.partialmethod(HierarchicalSpikingTransformer.__init__, attn_threshold=1.0)
