"""Spikformer for CIFAR (upstream `spikformer/cifar10/model.py`; spec upstream_models.md §3).

    images [B, Cin, S, S] --repeat T--> SPS: four conv3x3-BN-LIF stages (E/8, E/4, E/2, E channels;
        the spikes of the last two are max-pooled /2) plus a relative-position conv; tokens
        X0 = RPE + S3 as [T, B, N = (S/4)², E]
    depth × block:  X ← X + SSA(X);  X ← X + MLP(X)
    mean over tokens, then over T -> Linear head -> logits [B, num_classes]

Spiking self-attention (SSA), per head of d = E/h channels, no softmax:

    Q, K, V = LIF(BN(Linear(X)))                  spikes [T, B, h, N, d]
    A = attn_lif((Q Kᵀ) V · 0.125)                attention neuron threshold 0.5
    out = proj_lif(BN(Linear(A)))

Each block also owns two LayerNorms (`norm1`, `norm2`) that the upstream forward never
uses; they are kept (9,330,874 parameters for Spikformer-4-384 on CIFAR-10, 6,144 of them
in those LayerNorms) so upstream checkpoints load key for key.
"""
from __future__ import annotations

from ..autograd.tensor import Tensor
from ..nn import BatchNorm1d, BatchNorm2d, Conv2d, LayerNorm, Linear, MaxPool2d, Module, ModuleList
from ..attention import ssa
from .blocks import SpikingVisionModel, conv_bn, folded_bn, init_linear_weights, lif, per_frame


def linear_bn(linear: Linear, bn: BatchNorm1d, x_seq: Tensor) -> Tensor:
    """BN(Linear(x)) over the channel axis of tokens [T, B, N, C] (BN statistics over T·B·N; `folded_bn`)."""
    lead = x_seq.shape[:-1]
    y = folded_bn(linear, bn, x_seq.reshape(-1, x_seq.shape[-1]))
    return y.reshape(lead + (y.shape[-1],))


class SpikformerMLP(Module):
    """S = LIF(BN(Linear C→hidden (X))); out = LIF(BN(Linear hidden→C (S))).  x_seq [T, B, N, C]."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1_linear, self.fc1_bn, self.fc1_lif = Linear(dim, hidden), BatchNorm1d(hidden), lif()
        self.fc2_linear, self.fc2_bn, self.fc2_lif = Linear(hidden, dim), BatchNorm1d(dim), lif()

    def forward(self, x_seq: Tensor) -> Tensor:
        h_seq = self.fc1_lif(linear_bn(self.fc1_linear, self.fc1_bn, x_seq))
        return self.fc2_lif(linear_bn(self.fc2_linear, self.fc2_bn, h_seq))


class SpikformerSSA(Module):
    """Spiking self-attention with Linear projections (key prefix `attn`).  x_seq [T, B, N, C] -> same shape."""

    def __init__(self, dim: int, num_heads: int, attn_threshold: float = 0.5):
        super().__init__()
        self.num_heads = num_heads
        self.scale = 0.125
        self.q_linear, self.q_bn, self.q_lif = Linear(dim, dim), BatchNorm1d(dim), lif()
        self.k_linear, self.k_bn, self.k_lif = Linear(dim, dim), BatchNorm1d(dim), lif()
        self.v_linear, self.v_bn, self.v_lif = Linear(dim, dim), BatchNorm1d(dim), lif()
        self.attn_lif = lif(attn_threshold)
        self.proj_linear, self.proj_bn, self.proj_lif = Linear(dim, dim), BatchNorm1d(dim), lif()

    def _heads(self, linear, bn, neuron, x_seq: Tensor) -> Tensor:
        """tokens [T, B, N, C] -> spikes as heads [T, B, h, N, d]."""
        T, B, N, C = x_seq.shape
        s = neuron(linear_bn(linear, bn, x_seq))
        return s.reshape(T, B, N, self.num_heads, C // self.num_heads).permute(0, 1, 3, 2, 4)

    def forward(self, x_seq: Tensor) -> Tensor:
        T, B, N, C = x_seq.shape
        q = self._heads(self.q_linear, self.q_bn, self.q_lif, x_seq)
        k = self._heads(self.k_linear, self.k_bn, self.k_lif, x_seq)
        v = self._heads(self.v_linear, self.v_bn, self.v_lif, x_seq)
        z = ssa(q, k, v, scale=self.scale)                                  # [T, B, h, N, d]
        a_seq = self.attn_lif(z.permute(0, 1, 3, 2, 4).reshape(T, B, N, C))
        return self.proj_lif(linear_bn(self.proj_linear, self.proj_bn, a_seq))


class SpikformerBlock(Module):
    """X ← X + SSA(X); X ← X + MLP(X).  `norm1`/`norm2` exist for the state_dict only."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, attn_threshold: float):
        super().__init__()
        self.norm1 = LayerNorm(dim)
        self.attn = SpikformerSSA(dim, num_heads, attn_threshold)
        self.norm2 = LayerNorm(dim)
        self.mlp = SpikformerMLP(dim, int(dim * mlp_ratio))

    def forward(self, x_seq: Tensor) -> Tensor:
        x_seq = x_seq + self.attn(x_seq)
        return x_seq + self.mlp(x_seq)


class SPS(Module):
    """Spiking patch splitting (key prefix `patch_embed`).  x_seq [T, B, Cin, S, S] -> tokens [T, B, (S/4)², E].

    Unlike MSViT/QKFormer, the max-pools act on spikes (after the neuron).  The output
    RPE + S3 takes values {0, 1, 2}.
    """

    def __init__(self, in_channels: int, embed_dim: int):
        super().__init__()
        E = embed_dim
        self.proj_conv = Conv2d(in_channels, E // 8, 3, padding=1, bias=False)
        self.proj_bn = BatchNorm2d(E // 8)
        self.proj_lif = lif()
        self.proj_conv1 = Conv2d(E // 8, E // 4, 3, padding=1, bias=False)
        self.proj_bn1 = BatchNorm2d(E // 4)
        self.proj_lif1 = lif()
        self.proj_conv2 = Conv2d(E // 4, E // 2, 3, padding=1, bias=False)
        self.proj_bn2 = BatchNorm2d(E // 2)
        self.proj_lif2 = lif()
        self.maxpool2 = MaxPool2d(3, stride=2, padding=1)
        self.proj_conv3 = Conv2d(E // 2, E, 3, padding=1, bias=False)
        self.proj_bn3 = BatchNorm2d(E)
        self.proj_lif3 = lif()
        self.maxpool3 = MaxPool2d(3, stride=2, padding=1)
        self.rpe_conv = Conv2d(E, E, 3, padding=1, bias=False)
        self.rpe_bn = BatchNorm2d(E)
        self.rpe_lif = lif()

    def forward(self, x_seq: Tensor) -> Tensor:
        s = self.proj_lif(conv_bn(self.proj_conv, self.proj_bn, x_seq))
        s = self.proj_lif1(conv_bn(self.proj_conv1, self.proj_bn1, s))
        s = per_frame(self.maxpool2, self.proj_lif2(conv_bn(self.proj_conv2, self.proj_bn2, s)))
        s = per_frame(self.maxpool3, self.proj_lif3(conv_bn(self.proj_conv3, self.proj_bn3, s)))
        x_seq = self.rpe_lif(conv_bn(self.rpe_conv, self.rpe_bn, s)) + s       # [T, B, E, S/4, S/4]
        T, B, E, H, W = x_seq.shape
        return x_seq.reshape(T, B, E, H * W).transpose(-1, -2)                 # [T, B, N, E]


class Spikformer(SpikingVisionModel):
    """Spikformer.  images [B, in_channels, img_size, img_size] (normalised) -> logits [B, num_classes].

    Defaults are Spikformer-4-384 for CIFAR-10 (12 heads, d = 32, T = 4, attention threshold 0.5).
    surrogate: every neuron's surrogate family (`SpikingVisionModel._use_surrogate`); None is upstream's sigmoid.
    """

    family = "spikformer"

    def __init__(self, img_size: int = 32, in_channels: int = 3, num_classes: int = 10, embed_dim: int = 384,
                 num_heads: int = 12, mlp_ratio: float = 4, depth: int = 4, T: int = 4,
                 attn_threshold: float = 0.5, surrogate=None):
        super().__init__()
        self._setup(dict(img_size=img_size, in_channels=in_channels, num_classes=num_classes, embed_dim=embed_dim,
                         num_heads=num_heads, mlp_ratio=mlp_ratio, depth=depth, T=T, attn_threshold=attn_threshold))
        if embed_dim % 8:
            raise ValueError(f"Spikformer: embed_dim must be a multiple of 8 (SPS widths E/8..E), got {embed_dim}")
        self._check_divisible("Spikformer", embed_dim, num_heads)
        self._check_hidden("Spikformer", embed_dim, mlp_ratio)
        if img_size % 4:
            raise ValueError(f"Spikformer: img_size must be a multiple of 4 (two 2× max-pools), got {img_size}")
        self.patch_embed = SPS(in_channels, embed_dim)
        self.block = ModuleList([SpikformerBlock(embed_dim, num_heads, mlp_ratio, attn_threshold)
                                 for _ in range(depth)])
        self.head = Linear(embed_dim, num_classes)
        init_linear_weights(self)
        self._use_surrogate(surrogate)

    def forward_features(self, x_seq: Tensor) -> Tensor:
        x_seq = self.patch_embed(x_seq)
        for blk in self.block:
            x_seq = blk(x_seq)
        return self.head(x_seq.mean(axis=2).mean(axis=0))                      # [B, num_classes]
