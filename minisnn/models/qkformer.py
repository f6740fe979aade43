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

from ..attention import head_column_sum, head_token_mask
from ..autograd.tensor import Tensor
from ..nn import BatchNorm1d, Conv1d, Module
from .blocks import ConvMLP, HierarchicalSpikingTransformer, conv_bn, lif


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


class TokenBlock(Module):
    """`TokenSpikingTransformer`: X ← X + TokenAttention(X); X ← X + MLP(X)."""

    def __init__(self, attention: Module, dim: int, mlp_ratio: float):
        super().__init__()
        self.tssa = attention
        self.mlp = ConvMLP(dim, int(dim * mlp_ratio))

    def forward(self, x_seq: Tensor) -> Tensor:
        x_seq = x_seq + self.tssa(x_seq)
        return x_seq + self.mlp(x_seq)


class QKFormer(HierarchicalSpikingTransformer):
    """QKFormer.  images [B, in_channels, img_size, img_size] (normalised) -> logits [B, num_classes].

    Arguments are the upstream ones (E = embed_dim); `num_heads` is one count for all stages
    (upstream hard-codes 8).  `stage3_proj_lif`: "merged" reproduces the upstream stage-3
    projection neuron running over the merged T·B axis; "per_sample" is the batch-independent
    variant (see blocks.SpikingSelfAttention).
    """

    family = "qkformer"

    def __init__(self, img_size: int = 32, in_channels: int = 3, num_classes: int = 10, embed_dim: int = 384,
                 num_heads: int = 8, mlp_ratio: float = 4, depth: int = 4, T: int = 4,
                 attn_threshold: float = 0.5, stage3_proj_lif: str = "merged"):
        super().__init__(dict(img_size=img_size, in_channels=in_channels, num_classes=num_classes,
                              embed_dim=embed_dim, num_heads=num_heads, mlp_ratio=mlp_ratio, depth=depth, T=T,
                              attn_threshold=attn_threshold, stage3_proj_lif=stage3_proj_lif))

    def stage_dims(self, embed_dim: int) -> tuple[int, int]:
        return embed_dim // 4, embed_dim // 2

    def token_block(self, dim: int) -> Module:
        cfg = self.config
        return TokenBlock(TokenQKAttention(dim, cfg["num_heads"], cfg["attn_threshold"]), dim, cfg["mlp_ratio"])
