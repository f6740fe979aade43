"""Spikformer, MSViT and QKFormer as torch.nn.Modules (SpikingJelly's LIF neuron), written from the spec.

Written after the upstream code's structure (docs/models.md) with the upstream attribute names,
so `module.state_dict()` has exactly the upstream keys, which are also minisnn's: a state_dict
moves 1:1 between these modules and the matching `minisnn.models` model (`minisnn.torch.to_torch`).
They are the PyTorch side of the parity suite (`minisnn.parity`), which proves their spikes,
logits and gradients equal to minisnn's in float64.

    from minisnn.torch.upstream import build_msvit
    module = build_msvit(embed_dim=64, num_heads=2, depth=3, T=2, img_size=16)
    logits = module(x)                       # x: [B, 3, H, W] torch tensor

Build functions take the same keyword arguments as the minisnn constructors
(`model.config` can be passed straight in):

* `build_spikformer(img_size, in_channels, num_classes, embed_dim, num_heads, mlp_ratio, depth, T, attn_threshold)`
* `build_msvit(..., num_heads, depth, T, attn_threshold=1.0, stage3_proj_lif="merged")`
* `build_qkformer(..., attn_threshold=0.5, stage3_proj_lif="merged")`

Every neuron is `spikingjelly.clock_driven.neuron.MultiStepLIFNode(tau=2, detach_reset=True,
backend='torch')` (hard reset to 0, threshold 1 unless stated), as in the upstream
code, so this module needs SpikingJelly (0.0.0.0.14).  Upstream quirks are the defaults:
MSViT's attention neurons use threshold 1.0 (its builder drops the 0.5), and the stage-3
`proj_lif` of MSViT/QKFormer runs over the merged T·B axis (`stage3_proj_lif="merged"`);
`"per_sample"` gives the ordinary LIF over T.  Heads are a parameter here (upstream hard-codes
8 for MSViT/QKFormer).  Every forward starts from reset neurons (upstream calls `reset_net`
after each batch).  Dropout/DropPath are never built upstream, so they are absent here too.
"""
from __future__ import annotations

import torch
from torch import nn
from spikingjelly.clock_driven import functional as sj_functional
from spikingjelly.clock_driven.neuron import MultiStepLIFNode

__all__ = [
    "build_spikformer", "build_msvit", "build_qkformer", "Spikformer", "HierarchicalSpikingTransformer",
]


def _lif(v_threshold: float = 1.0) -> MultiStepLIFNode:
    return MultiStepLIFNode(tau=2.0, v_threshold=v_threshold, detach_reset=True, backend="torch")


def _merge(x: torch.Tensor) -> torch.Tensor:
    """[T, B, ...] -> [T·B, ...]."""
    return x.flatten(0, 1)


def _split(x: torch.Tensor, T: int) -> torch.Tensor:
    """[T·B, ...] -> [T, B, ...]."""
    return x.reshape((T, x.shape[0] // T) + tuple(x.shape[1:]))


def _trunc_normal_init(module: nn.Module) -> None:
    """Upstream `_init_weights`: Linear weights trunc-normal(0.02), biases 0; LayerNorm 1/0."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


# ============================================================================ Spikformer
class SpikformerMLP(nn.Module):
    """Linear -> BN1d (channels) -> LIF, twice; tokens layout [T, B, N, C]."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1_linear, self.fc1_bn, self.fc1_lif = nn.Linear(dim, hidden), nn.BatchNorm1d(hidden), _lif()
        self.fc2_linear, self.fc2_bn, self.fc2_lif = nn.Linear(hidden, dim), nn.BatchNorm1d(dim), _lif()

    @staticmethod
    def _linear_bn(linear, bn, x_seq):
        T = x_seq.shape[0]
        y = linear(_merge(x_seq))                       # [T·B, N, C']
        y = bn(y.transpose(1, 2)).transpose(1, 2)      # BN over channels, stats over T·B·N
        return _split(y, T)

    def forward(self, x_seq):
        h = self.fc1_lif(self._linear_bn(self.fc1_linear, self.fc1_bn, x_seq))
        return self.fc2_lif(self._linear_bn(self.fc2_linear, self.fc2_bn, h))


class SpikformerSSA(nn.Module):
    """Spiking self-attention: Z = (Q Kᵀ)·0.125 V per head, then attn_lif (v_th 0.5), then projection."""

    def __init__(self, dim: int, num_heads: int, attn_threshold: float = 0.5):
        super().__init__()
        self.num_heads = num_heads
        self.scale = 0.125
        for name in ("q", "k", "v"):
            setattr(self, f"{name}_linear", nn.Linear(dim, dim))
            setattr(self, f"{name}_bn", nn.BatchNorm1d(dim))
            setattr(self, f"{name}_lif", _lif())
        self.attn_lif = _lif(attn_threshold)
        self.proj_linear, self.proj_bn, self.proj_lif = nn.Linear(dim, dim), nn.BatchNorm1d(dim), _lif()

    def _heads(self, name, x_seq):
        T, B, N, C = x_seq.shape
        y = SpikformerMLP._linear_bn(getattr(self, f"{name}_linear"), getattr(self, f"{name}_bn"), x_seq)
        s = getattr(self, f"{name}_lif")(y)
        return s.reshape(T, B, N, self.num_heads, C // self.num_heads).permute(0, 1, 3, 2, 4)

    def forward(self, x_seq):
        T, B, N, C = x_seq.shape
        q, k, v = self._heads("q", x_seq), self._heads("k", x_seq), self._heads("v", x_seq)
        z = ((q @ k.transpose(-2, -1)) * self.scale) @ v          # [T, B, h, N, d]
        a = self.attn_lif(z.transpose(2, 3).reshape(T, B, N, C))
        y = SpikformerMLP._linear_bn(self.proj_linear, self.proj_bn, a)
        return self.proj_lif(y)                                   # reshaped before the LIF: per sample


class SpikformerBlock(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio, attn_threshold):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)   # in the state_dict, never used in forward
        self.attn = SpikformerSSA(dim, num_heads, attn_threshold)
        self.norm2 = nn.LayerNorm(dim)   # in the state_dict, never used in forward
        self.mlp = SpikformerMLP(dim, int(dim * mlp_ratio))

    def forward(self, x_seq):
        x_seq = x_seq + self.attn(x_seq)
        return x_seq + self.mlp(x_seq)


class SPS(nn.Module):
    """Spiking patch splitting: 4 conv-BN-LIF stages (pooling the spikes in the last two) + RPE conv."""

    def __init__(self, in_channels: int, embed_dim: int):
        super().__init__()
        widths = [in_channels, embed_dim // 8, embed_dim // 4, embed_dim // 2, embed_dim]
        for i, suffix in enumerate(("", "1", "2", "3")):          # proj_conv, proj_conv1, ... (upstream names)
            setattr(self, f"proj_conv{suffix}", nn.Conv2d(widths[i], widths[i + 1], 3, 1, 1, bias=False))
            setattr(self, f"proj_bn{suffix}", nn.BatchNorm2d(widths[i + 1]))
            setattr(self, f"proj_lif{suffix}", _lif())
            if i >= 2:
                setattr(self, f"maxpool{suffix}", nn.MaxPool2d(3, 2, 1))
        self.rpe_conv = nn.Conv2d(embed_dim, embed_dim, 3, 1, 1, bias=False)
        self.rpe_bn, self.rpe_lif = nn.BatchNorm2d(embed_dim), _lif()

    def forward(self, x_seq):
        T = x_seq.shape[0]

        def stage(conv, bn, lif, z):          # z merged [T·B, C, H, W] -> spikes merged
            return _merge(lif(_split(bn(conv(z)), T)))

        z = _merge(x_seq)
        z = stage(self.proj_conv, self.proj_bn, self.proj_lif, z)
        z = stage(self.proj_conv1, self.proj_bn1, self.proj_lif1, z)
        z = self.maxpool2(stage(self.proj_conv2, self.proj_bn2, self.proj_lif2, z))
        z = self.maxpool3(stage(self.proj_conv3, self.proj_bn3, self.proj_lif3, z))
        rpe = stage(self.rpe_conv, self.rpe_bn, self.rpe_lif, z)
        x = _split(rpe + z, T)                               # [T, B, E, H/4, W/4]
        return x.flatten(3).transpose(2, 3)                  # [T, B, N, E]


class Spikformer(nn.Module):
    def __init__(self, img_size=32, in_channels=3, num_classes=10, embed_dim=384, num_heads=12,
                 mlp_ratio=4, depth=4, T=4, attn_threshold=0.5):
        super().__init__()
        self.T = T
        self.patch_embed = SPS(in_channels, embed_dim)
        self.block = nn.ModuleList(
            [SpikformerBlock(embed_dim, num_heads, mlp_ratio, attn_threshold) for _ in range(depth)])
        self.head = nn.Linear(embed_dim, num_classes)
        self.apply(_trunc_normal_init)

    def forward(self, x):
        sj_functional.reset_net(self)
        x_seq = x.unsqueeze(0).repeat(self.T, 1, 1, 1, 1)
        x_seq = self.patch_embed(x_seq)
        for blk in self.block:
            x_seq = blk(x_seq)
        return self.head(x_seq.mean(2).mean(0))


# ===================================================== MSViT / QKFormer (hierarchical)
def _conv_bn(conv, bn, x_seq):
    """Conv + BN frame by frame on [T, B, ...] (BN statistics over T·B)."""
    return _split(bn(conv(_merge(x_seq))), x_seq.shape[0])


class ConvMLP(nn.Module):
    """1x1 Conv2d (bias) -> BN2d -> LIF, twice; layout [T, B, C, H, W]."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.mlp1_conv, self.mlp1_bn, self.mlp1_lif = nn.Conv2d(dim, hidden, 1), nn.BatchNorm2d(hidden), _lif()
        self.mlp2_conv, self.mlp2_bn, self.mlp2_lif = nn.Conv2d(hidden, dim, 1), nn.BatchNorm2d(dim), _lif()

    def forward(self, x_seq):
        h = self.mlp1_lif(_conv_bn(self.mlp1_conv, self.mlp1_bn, x_seq))
        return self.mlp2_lif(_conv_bn(self.mlp2_conv, self.mlp2_bn, h))


class TokenAttention(nn.Module):
    """QKFormer Q-K token attention; with `multiscale=True` MSViT's MSSA (extra 3-tap P branch).

    A[t,b,i,n] = attn_lif(Σ_j Q[t,b,i,j,n] (+ Σ_j P[t,b,i,j,n])); out = proj_lif(BN(conv1x1(A ⊙ K))).
    """

    def __init__(self, dim, num_heads, attn_threshold, multiscale: bool):
        super().__init__()
        self.num_heads = num_heads
        self.multiscale = multiscale
        self.q_conv, self.q_bn, self.q_lif = nn.Conv1d(dim, dim, 1, bias=False), nn.BatchNorm1d(dim), _lif()
        self.k_conv, self.k_bn, self.k_lif = nn.Conv1d(dim, dim, 1, bias=False), nn.BatchNorm1d(dim), _lif()
        if multiscale:                                      # 3 taps along the flattened token sequence
            self.p_conv = nn.Conv1d(dim, dim, 3, padding=1, bias=False)
            self.p_bn, self.p_lif = nn.BatchNorm1d(dim), _lif()
        self.attn_lif = _lif(attn_threshold)
        self.proj_conv, self.proj_bn, self.proj_lif = nn.Conv1d(dim, dim, 1), nn.BatchNorm1d(dim), _lif()

    def forward(self, x_seq):
        T, B, C, H, W = x_seq.shape
        h = self.num_heads
        tokens = x_seq.flatten(3)                                   # [T, B, C, N]
        q = self.q_lif(_conv_bn(self.q_conv, self.q_bn, tokens))
        k = self.k_lif(_conv_bn(self.k_conv, self.k_bn, tokens))
        score = q.reshape(T, B, h, C // h, H * W).sum(3, keepdim=True)
        if self.multiscale:
            p = self.p_lif(_conv_bn(self.p_conv, self.p_bn, tokens))
            score = score + p.reshape(T, B, h, C // h, H * W).sum(3, keepdim=True)
        a = self.attn_lif(score)                                    # [T, B, h, 1, N]
        y = (a * k.reshape(T, B, h, C // h, H * W)).reshape(T, B, C, H * W)
        y = _conv_bn(self.proj_conv, self.proj_bn, y)
        return self.proj_lif(y).reshape(T, B, C, H, W)


class SpikingSelfAttention(nn.Module):
    """Stage-3 SSA with Conv1d projections; Z = Q (Kᵀ V)·0.125 per head.

    stage3_proj_lif="merged" (upstream): proj_lif runs over the [T·B, C, N] tensor, i.e. with
    T·B as its time axis, carrying membrane potential across the samples of a batch.
    "per_sample": the ordinary LIF over T.
    """

    def __init__(self, dim, num_heads, attn_threshold, stage3_proj_lif="merged"):
        super().__init__()
        if stage3_proj_lif not in ("merged", "per_sample"):
            raise ValueError(f"stage3_proj_lif must be 'merged' or 'per_sample', got {stage3_proj_lif!r}")
        self.num_heads = num_heads
        self.stage3_proj_lif = stage3_proj_lif
        self.scale = 0.125
        for name in ("q", "k", "v"):
            setattr(self, f"{name}_conv", nn.Conv1d(dim, dim, 1, bias=False))
            setattr(self, f"{name}_bn", nn.BatchNorm1d(dim))
            setattr(self, f"{name}_lif", _lif())
        self.attn_lif = _lif(attn_threshold)
        self.proj_conv, self.proj_bn, self.proj_lif = nn.Conv1d(dim, dim, 1), nn.BatchNorm1d(dim), _lif()

    def forward(self, x_seq):
        T, B, C, H, W = x_seq.shape
        h, N = self.num_heads, H * W
        tokens = x_seq.flatten(3)

        def heads(name):   # [T, B, C, N] spikes -> [T, B, h, N, d]
            conv, bn, lif = (getattr(self, f"{name}_{part}") for part in ("conv", "bn", "lif"))
            s = lif(_conv_bn(conv, bn, tokens))
            return s.transpose(-1, -2).reshape(T, B, N, h, C // h).permute(0, 1, 3, 2, 4)

        q, k, v = heads("q"), heads("k"), heads("v")
        z = (q @ (k.transpose(-2, -1) @ v)) * self.scale             # [T, B, h, N, d]
        a = self.attn_lif(z.transpose(3, 4).reshape(T, B, C, N))
        u = self.proj_bn(self.proj_conv(_merge(a)))                  # [T·B, C, N]
        if self.stage3_proj_lif == "merged":
            out = self.proj_lif(u)                                   # time axis = T·B (upstream)
        else:
            out = self.proj_lif(_split(u, T))
        return out.reshape(T, B, C, H, W)


class TokenBlock(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio, attn_threshold, multiscale):
        super().__init__()
        self.tssa = TokenAttention(dim, num_heads, attn_threshold, multiscale)
        self.mlp = ConvMLP(dim, int(dim * mlp_ratio))

    def forward(self, x_seq):
        x_seq = x_seq + self.tssa(x_seq)
        return x_seq + self.mlp(x_seq)


class SSABlock(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio, attn_threshold, stage3_proj_lif):
        super().__init__()
        self.ssa = SpikingSelfAttention(dim, num_heads, attn_threshold, stage3_proj_lif)
        self.mlp = ConvMLP(dim, int(dim * mlp_ratio))

    def forward(self, x_seq):
        x_seq = x_seq + self.ssa(x_seq)
        return x_seq + self.mlp(x_seq)


class InitEmbed(nn.Module):
    """PatchEmbedInit: conv3 in->E/2 -> [conv3 E/2->E | shortcut conv1 E/2->E], spikes added; no down-sampling."""

    def __init__(self, in_channels, embed):
        super().__init__()
        half = embed // 2
        self.proj_conv, self.proj_bn = nn.Conv2d(in_channels, half, 3, 1, 1, bias=False), nn.BatchNorm2d(half)
        self.proj_lif = _lif()
        self.proj1_conv, self.proj1_bn = nn.Conv2d(half, embed, 3, 1, 1, bias=False), nn.BatchNorm2d(embed)
        self.proj1_lif = _lif()
        self.proj_res_conv, self.proj_res_bn = nn.Conv2d(half, embed, 1, 1, 0, bias=False), nn.BatchNorm2d(embed)
        self.proj_res_lif = _lif()

    def forward(self, x_seq):
        a = self.proj_lif(_conv_bn(self.proj_conv, self.proj_bn, x_seq))
        main = self.proj1_lif(_conv_bn(self.proj1_conv, self.proj1_bn, a))
        short = self.proj_res_lif(_conv_bn(self.proj_res_conv, self.proj_res_bn, a))
        return main + short


class StageEmbed(nn.Module):
    """PatchEmbeddingStage: conv3 -> [conv3 -> BN -> maxpool/2 | shortcut conv1 stride 2 from the input]."""

    def __init__(self, in_dim, embed):
        super().__init__()
        self.proj3_conv, self.proj3_bn = nn.Conv2d(in_dim, embed, 3, 1, 1, bias=False), nn.BatchNorm2d(embed)
        self.proj3_lif = _lif()
        self.proj4_conv, self.proj4_bn = nn.Conv2d(embed, embed, 3, 1, 1, bias=False), nn.BatchNorm2d(embed)
        self.proj4_maxpool, self.proj4_lif = nn.MaxPool2d(3, 2, 1), _lif()
        self.proj_res_conv, self.proj_res_bn = nn.Conv2d(in_dim, embed, 1, 2, 0, bias=False), nn.BatchNorm2d(embed)
        self.proj_res_lif = _lif()

    def forward(self, x_seq):
        T = x_seq.shape[0]
        a = self.proj3_lif(_conv_bn(self.proj3_conv, self.proj3_bn, x_seq))
        m = self.proj4_maxpool(self.proj4_bn(self.proj4_conv(_merge(a))))
        main = self.proj4_lif(_split(m, T))
        short = self.proj_res_lif(_conv_bn(self.proj_res_conv, self.proj_res_bn, x_seq))
        return main + short


class HierarchicalSpikingTransformer(nn.Module):
    """MSViT (multiscale=True, dims E/2, E/2, E) or QKFormer (multiscale=False, dims E/4, E/2, E).

    Stages: patch_embed1 + 1 token block, patch_embed2 + 1 token block, patch_embed3 + (depth-2) SSA blocks.
    """

    def __init__(self, multiscale: bool, img_size=32, in_channels=3, num_classes=10, embed_dim=384,
                 num_heads=8, mlp_ratio=4, depth=4, T=4, attn_threshold=1.0, stage3_proj_lif="merged"):
        super().__init__()
        self.T = T
        E = embed_dim
        d1, d2 = (E // 2, E // 2) if multiscale else (E // 4, E // 2)
        self.patch_embed1 = InitEmbed(in_channels, d1)
        self.patch_embed2 = StageEmbed(d1, d2)
        self.patch_embed3 = StageEmbed(d2, E)
        self.stage1 = nn.ModuleList([TokenBlock(d1, num_heads, mlp_ratio, attn_threshold, multiscale)])
        self.stage2 = nn.ModuleList([TokenBlock(d2, num_heads, mlp_ratio, attn_threshold, multiscale)])
        self.stage3 = nn.ModuleList([SSABlock(E, num_heads, mlp_ratio, attn_threshold, stage3_proj_lif)
                                     for _ in range(depth - 2)])
        self.head = nn.Linear(E, num_classes)
        self.apply(_trunc_normal_init)

    def forward(self, x):
        sj_functional.reset_net(self)
        x_seq = x.unsqueeze(0).repeat(self.T, 1, 1, 1, 1)
        x_seq = self.patch_embed1(x_seq)
        for blk in self.stage1:
            x_seq = blk(x_seq)
        x_seq = self.patch_embed2(x_seq)
        for blk in self.stage2:
            x_seq = blk(x_seq)
        x_seq = self.patch_embed3(x_seq)
        for blk in self.stage3:
            x_seq = blk(x_seq)
        return self.head(x_seq.flatten(3).mean(3).mean(0))


# ======================================================================= builders
def build_spikformer(**cfg) -> Spikformer:
    """Spikformer CIFAR (defaults: 4 blocks, dim 384, 12 heads, T 4, attn v_th 0.5): 9,330,874 params."""
    return Spikformer(**cfg)


def build_msvit(**cfg) -> HierarchicalSpikingTransformer:
    """MSViT CIFAR-10 (defaults: E 384, 8 heads, depth 4, T 4, attn v_th 1.0, merged proj_lif): 7,558,762 params."""
    cfg.setdefault("attn_threshold", 1.0)
    return HierarchicalSpikingTransformer(multiscale=True, **cfg)


def build_qkformer(**cfg) -> HierarchicalSpikingTransformer:
    """QKFormer CIFAR-10 (defaults: E 384, 8 heads, depth 4, T 4, attn v_th 0.5, merged proj_lif): 6,706,234 params."""
    cfg.setdefault("attn_threshold", 0.5)
    return HierarchicalSpikingTransformer(multiscale=False, **cfg)
