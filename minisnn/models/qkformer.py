"""QKFormer for CIFAR (upstream `QKFormer/cifar10/model.py`; spec upstream_models.md §4).

A hierarchical spiking transformer: stage dims E/4, E/2, E on 32×32 → 16×16 → 8×8 token
grids.  Stages 1 and 2 use Q-K token attention, linear in the number of tokens:

    Q = LIF(BN(conv1x1(X))), K = LIF(BN(conv1x1(X)))           spikes [T, B, C, N]
    A[t, b, i, n] = attn_lif( Σ_j Q[t, b, i·d + j, n] )          one binary mask per head and token
    out = proj_lif(BN(conv1x1(A ⊙ K) + b))                       A broadcast over the d channels of head i

Stage 3 uses spiking self-attention (blocks.SpikingSelfAttention).  The attention neurons
use threshold 0.5 (really applied in QKFormer's code).  QKFormer-C10 (E 384, 8 heads,
depth 4, T 4) has 6,706,234 parameters.
"""
from __future__ import annotations

import functools

from ..attention import head_column_sum, head_token_mask
from ..autograd.tensor import Tensor
from ..nn import BatchNorm1d, Conv1d, Module
from .blocks import HierarchicalSpikingTransformer, TokenBlock, conv_bn, lif  # TokenBlock: also importable from here


class TokenQKAttention(Module):
    """Q-K token attention (`Token_QK_Attention`, key prefix `tssa`).  x_seq [T, B, C, H, W] -> same shape."""

    def __init__(self, dim: int, num_heads: int, attn_threshold: float = 0.5):
        super().__init__()
        self.num_heads = num_heads
        self.q_conv, self.q_bn, self.q_lif = Conv1d(dim, dim, 1, bias=False), BatchNorm1d(dim), lif()
        self.k_conv, self.k_bn, self.k_lif = Conv1d(dim, dim, 1, bias=False), BatchNorm1d(dim), lif()
        self.attn_lif = lif(attn_threshold)
        self.proj_conv = Conv1d(dim, dim, 1)
        self.proj_bn = BatchNorm1d(dim)
        self.proj_lif = lif()

    def forward(self, x_seq: Tensor) -> Tensor:
        T, B, C, H, W = x_seq.shape
        tokens = x_seq.reshape(T, B, C, H * W)
        q = self.q_lif(conv_bn(self.q_conv, self.q_bn, tokens))        # [T, B, C, N]
        k = self.k_lif(conv_bn(self.k_conv, self.k_bn, tokens))
        a = self.attn_lif(head_column_sum(q, self.num_heads))          # [T, B, h, N] token mask
        y = conv_bn(self.proj_conv, self.proj_bn, head_token_mask(a, k, self.num_heads))
        return self.proj_lif(y).reshape(T, B, C, H, W)


class QKFormer(HierarchicalSpikingTransformer):
    """QKFormer.  images [B, in_channels, img_size, img_size] (normalised) -> logits [B, num_classes].

    Arguments are the upstream ones (see `HierarchicalSpikingTransformer`).  `stage3_proj_lif`:
    "merged" reproduces the upstream stage-3 projection neuron running over the merged T·B axis;
    "per_sample" is the batch-independent variant (see blocks.SpikingSelfAttention).
    """

    family = "qkformer"
    token_attention = TokenQKAttention
    stage_divisors = (4, 2)
    # The attention neurons fire at 0.5 (really applied in QKFormer's code).
    __init__ = functools.partialmethod(HierarchicalSpikingTransformer.__init__, attn_threshold=0.5)
