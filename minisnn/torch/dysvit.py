"""The Dy-SViT reconstruction (docs/models.md, section Dy-SViT) as a torch.nn.Module.

Parameter names equal minisnn's `DySViT`, so `module.state_dict()` loads into minisnn directly
(`minisnn.torch.to_torch` / `from_torch`); the parity suite proves spikes, logits and gradients
equal to minisnn's in float64 (this is its "oracle").  Plain PyTorch: no SpikingJelly needed.
The spike is a custom autograd Function with the two-input rule of `minisnn.spiking.SpikeFunction`:
forward H(u − θ); backward through σ(k·(u − θ)) in both u and k.

BatchNorm over tokens is `TokenBN` (a BatchNorm1d over the channel axis of [B, N, C]), so
`torch.nn.SyncBatchNorm`-style conversions must keep its transposes (`minisnn.torch.distributed`).
"""
from __future__ import annotations

import math

import torch
from torch import nn


class SpikeSigmoidSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, k, threshold):
        x = u - threshold
        ctx.save_for_backward(x, k)
        return (x >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx, g):
        x, k = ctx.saved_tensors
        sg = torch.sigmoid(k * x)
        dsg = sg * (1 - sg)
        du = g * k * dsg
        dk = g * x * dsg
        while dk.dim() > k.dim():
            dk = dk.sum(0)
        for i, n in enumerate(k.shape):
            if n == 1 and dk.shape[i] != 1:
                dk = dk.sum(i, keepdim=True)
        return du, dk, None


def guard(x):
    return torch.nan_to_num(x, nan=0.0, posinf=1e4, neginf=-1e4)


class Hyper(nn.Module):
    def __init__(self, c, hidden=16):
        super().__init__()
        self.fc1 = nn.Linear(c, hidden)
        self.fc2 = nn.Linear(hidden, 1)
        nn.init.trunc_normal_(self.fc1.weight, std=0.02)
        nn.init.zeros_(self.fc1.bias)
        nn.init.zeros_(self.fc2.weight)
        nn.init.constant_(self.fc2.bias, math.log(1 / 3))

    def forward(self, u):
        return 1.0 + 4.0 * torch.sigmoid(guard(self.fc2(torch.relu(self.fc1(u)))))


class Neuron(nn.Module):
    def __init__(self, c, threshold, dynamic=True, nan_guard=True):
        super().__init__()
        self.threshold, self.dynamic, self.nan_guard = threshold, dynamic, nan_guard
        if dynamic:
            self.hyper = Hyper(c)

    def forward(self, u):
        if self.nan_guard:
            u = guard(u)
        if self.dynamic:
            k = self.hyper(u.detach())
        else:
            k = torch.full(u.shape[:-1] + (1,), 2.0, dtype=u.dtype, device=u.device)
        return SpikeSigmoidSTE.apply(u, k, self.threshold)


class TokenBN(nn.BatchNorm1d):
    channels_last = True    # input [B, N, C]: the channel axis is the last one

    def forward(self, x):  # [B, N, C] -> BN over C on the transposed tensor, as Spikformer does
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class Attn(nn.Module):
    def __init__(self, dim, heads, neuron):
        super().__init__()
        self.heads = heads
        self.sn_in = neuron(dim, 1.0)
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.q_bn, self.k_bn, self.v_bn = TokenBN(dim), TokenBN(dim), TokenBN(dim)
        self.sn_q, self.sn_k, self.sn_v = neuron(dim, 1.0), neuron(dim, 1.0), neuron(dim, 1.0)
        self.sn_attn = neuron(dim, 0.5)
        self.proj = nn.Linear(dim, dim)

    def forward(self, h):
        b, n, c = h.shape
        s = self.sn_in(h)
        q = self.sn_q(self.q_bn(self.q(s))).reshape(b, n, self.heads, -1).transpose(1, 2)
        k = self.sn_k(self.k_bn(self.k(s))).reshape(b, n, self.heads, -1).transpose(1, 2)
        v = self.sn_v(self.v_bn(self.v(s))).reshape(b, n, self.heads, -1).transpose(1, 2)
        o = (q @ k.transpose(-2, -1)) @ v * 0.125
        o = o.transpose(1, 2).reshape(b, n, c)
        return self.proj(self.sn_attn(o))


class MLP(nn.Module):
    def __init__(self, dim, hidden, neuron):
        super().__init__()
        self.sn_in = neuron(dim, 1.0)
        self.fc1 = nn.Linear(dim, hidden)
        self.bn = TokenBN(hidden)
        self.sn_hidden = neuron(hidden, 1.0)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, h):
        return self.fc2(self.sn_hidden(self.bn(self.fc1(self.sn_in(h)))))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio, neuron, stability):
        super().__init__()
        self.norm1 = TokenBN(dim) if stability else nn.Identity()
        self.attn = Attn(dim, heads, neuron)
        self.norm2 = TokenBN(dim) if stability else nn.Identity()
        self.mlp = MLP(dim, dim * mlp_ratio, neuron)
        self.r = 0.5 if stability else 1.0
        self.stability = stability

    def forward(self, x):
        x = x + self.attn(self.norm1(x)) * self.r
        if self.stability:
            x = guard(x)
        x = x + self.mlp(self.norm2(x)) * self.r
        if self.stability:
            x = guard(x)
        return x


class ConvStem(nn.Module):
    """Conv 3×3/2 (3→C/2) → BN → neuron (channels last) → Conv 3×3/2 (C/2→C)."""

    def __init__(self, dim, neuron):
        super().__init__()
        self.conv1 = nn.Conv2d(3, dim // 2, 3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(dim // 2)
        self.sn1 = neuron(dim // 2, 1.0)
        self.conv2 = nn.Conv2d(dim // 2, dim, 3, stride=2, padding=1)

    def forward(self, x):
        h = self.bn1(self.conv1(x)).permute(0, 2, 3, 1)
        return self.conv2(self.sn1(h).permute(0, 3, 1, 2))


class DySViT(nn.Module):
    """Patch embedding (or the conv stem) + position embedding, `depth` blocks, token BN, mean over tokens, head."""

    def __init__(self, num_classes=10, dim=256, depth=4, heads=8, mlp_ratio=4, patch_size=4, img_size=32,
                 dynamic_slope=True, stability=True, stem="patch"):
        super().__init__()

        def neuron(c, th):
            return Neuron(c, th, dynamic_slope, stability)

        self.num_tokens = (img_size // patch_size) ** 2
        if stem == "conv":
            self.stem = ConvStem(dim, neuron)
        else:
            self.patch_embed = nn.Conv2d(3, dim, patch_size, stride=patch_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_tokens, dim))
        self.blocks = nn.ModuleList([Block(dim, heads, mlp_ratio, neuron, stability) for _ in range(depth)])
        self.norm = TokenBN(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        x = self.stem(x) if hasattr(self, "stem") else self.patch_embed(x)
        b, c = x.shape[:2]
        x = x.reshape(b, c, self.num_tokens).transpose(1, 2) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.norm(x).mean(1))


def build_dysvit(num_classes=10, dim=256, depth=4, heads=8, mlp_ratio=4, patch_size=4, img_size=32,
                 dynamic_slope=True, stability=True, stem="patch", **_ignored) -> DySViT:
    """The module for `minisnn.models.DySViT(**config)` (T=1 and hypernet_hidden=16 only)."""
    if _ignored.get("T", 1) != 1 or _ignored.get("hypernet_hidden", 16) != 16:
        raise ValueError("the PyTorch Dy-SViT supports T=1 and hypernet_hidden=16 only")
    return DySViT(num_classes=num_classes, dim=dim, depth=depth, heads=heads, mlp_ratio=mlp_ratio,
                  patch_size=patch_size, img_size=img_size, dynamic_slope=dynamic_slope, stability=stability,
                  stem=stem)
