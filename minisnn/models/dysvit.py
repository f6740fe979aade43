"""Dy-SViT: a pure spiking ViT at T = 1 whose surrogate slopes come from per-neuron hypernetworks.

What the model card documents (docs/models.md, section Dy-SViT): CIFAR-10, T = 1, depth 4,
dim 256, plain patch embedding, spiking neurons with a dynamic slope bounded to [1, 5]
learned per token, pre-norm BatchNorm1d, residual scaling 0.5, NaN guards, clip 0.5.
Everything else is a RECONSTRUCTION: the layout below, 8 heads,
MLP ratio 4, patch 4, softmax-free spiking self-attention with scale 0.125 and an
attention-neuron threshold 0.5, BN before every hidden neuron, hypernetwork width 16.

    x [B,3,32,32] → Conv 4×4/4 (3→C) → [B,64,C] + pos_embed
    4 × Block:  x ← x + 0.5·Attn(BN1(x));  x ← x + 0.5·MLP(BN2(x))     (NaN guard after each add)
    BN_f(x) → mean over the 64 tokens → Linear(C → classes)

    Attn(h): s = SN_in(h); q,k,v = SN(BN(Linear(s))); o = (q kᵀ)·v·0.125 (8 heads); Linear_p(SN_attn(o))
    MLP(h):  s = SN_in(h); t = SN_h(BN_h(Linear_1(s))); Linear_2(t)

7 neurons per block (28 in all), each with its own hypernetwork (`dynamic_slope=True`) or a fixed
slope 2 (`dynamic_slope=False`, the fair ablation).  `stability=False` removes the card's
stability protocol (pre-norm → identity, residual scale 1, no NaN guards) for the card's
"no stability protocol" baseline.  Full size: 3,370,150 parameters (3,205,386 static).

`stem="conv"` replaces the patch embedding by a two-convolution stem (`ConvStem`, the network of
the speedrun-60 preset): Conv 3×3/2 (3→C/2) → BN → SN → Conv 3×3/2 (C/2→C), the same 8×8 tokens.
"""
from __future__ import annotations

import functools

import numpy as np

from ..attention import ssa
from ..autograd.tensor import Tensor
from ..nn import Conv2d, Identity, Linear, Module, ModuleList, Parameter, TokenBatchNorm, init
from ..spiking import named_neurons, reset_net
from .dysvit_neuron import DynamicSlopeNeuron, guard
from .flops import LayerFlops, QuadraticBlockNames, dense_flops, quadratic_attention_block, weighted_flops
from .registry import register

# Layer names for the FLOP count (`flops.quadratic_attention_block`).
FLOP_NAMES = QuadraticBlockNames(("q", "k", "v"), "sn_q", "sn_v", "proj", ("fc1", "fc2"))


def _norm(channels, enabled, dtype):
    return TokenBatchNorm(channels, dtype=dtype) if enabled else Identity()


class DynamicSlopeSelfAttention(Module):
    """Dy-SViT's softmax-free SSA on binary q, k, v: o = (q kᵀ) v · scale, per head.  [B, N, C] → [B, N, C].

    Every spike comes from a `DynamicSlopeNeuron` (key prefix `attn`; not the seed models'
    `blocks.SpikingSelfAttention`).
    """

    def __init__(self, dim, heads, neuron, scale=0.125, dtype=np.float32):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads, self.scale = heads, scale
        self.sn_in = neuron(dim, 1.0)
        self.q, self.k, self.v = (Linear(dim, dim, dtype=dtype) for _ in range(3))
        self.q_bn, self.k_bn, self.v_bn = (TokenBatchNorm(dim, dtype=dtype) for _ in range(3))
        self.sn_q, self.sn_k, self.sn_v = (neuron(dim, 1.0) for _ in range(3))
        self.sn_attn = neuron(dim, 0.5)
        self.proj = Linear(dim, dim, dtype=dtype)

    def _heads(self, x):
        b, n, c = x.shape
        return x.reshape(b, n, self.heads, c // self.heads).transpose(1, 2)  # [B, h, N, d]

    def forward(self, h, norm):
        """h [B, N, C]; `norm`, the block's pre-norm (Identity without one), is applied to h first (fused with
        SN_in when it can be)."""
        s = self.sn_in.after_norm(norm, h)
        q = self.sn_q.after_norm(self.q_bn, self.q(s))      # = sn_q(q_bn(q(s))), fused when it can be
        k = self.sn_k.after_norm(self.k_bn, self.k(s))
        v = self.sn_v.after_norm(self.v_bn, self.v(s))
        o = ssa(self._heads(q), self._heads(k), self._heads(v), scale=self.scale)  # [B, h, N, d]
        b, n, c = h.shape
        o = o.transpose(1, 2).reshape(b, n, c)
        return self.proj(self.sn_attn(o))


class SpikingMLP(Module):
    """[B, N, C] → [B, N, C]: Linear_2(SN_h(BN_h(Linear_1(SN_in(h)))))."""

    def __init__(self, dim, hidden, neuron, dtype=np.float32):
        super().__init__()
        self.sn_in = neuron(dim, 1.0)
        self.fc1 = Linear(dim, hidden, dtype=dtype)
        self.bn = TokenBatchNorm(hidden, dtype=dtype)
        self.sn_hidden = neuron(hidden, 1.0)
        self.fc2 = Linear(hidden, dim, dtype=dtype)

    def forward(self, h, norm):
        """h [B, N, C]; `norm`, the block's pre-norm (Identity without one), is applied to h first (fused with
        SN_in when it can be)."""
        s = self.sn_in.after_norm(norm, h)
        return self.fc2(self.sn_hidden.after_norm(self.bn, self.fc1(s)))


class Block(Module):
    """Pre-norm residual block: x ← x + r·Attn(BN1(x)); x ← x + r·MLP(BN2(x))."""

    def __init__(self, dim, heads, mlp_ratio, neuron, stability, dtype=np.float32):
        super().__init__()
        self.norm1 = _norm(dim, stability, dtype)
        self.attn = DynamicSlopeSelfAttention(dim, heads, neuron, dtype=dtype)
        self.norm2 = _norm(dim, stability, dtype)
        self.mlp = SpikingMLP(dim, dim * mlp_ratio, neuron, dtype=dtype)
        self.residual_scale = 0.5 if stability else 1.0
        self.nan_guard = stability

    def forward(self, x):
        x = self._residual(x, self.attn(x, norm=self.norm1))      # Attn(BN1(x))
        if self.nan_guard:
            x = guard(x)
        x = self._residual(x, self.mlp(x, norm=self.norm2))       # MLP(BN2(x))
        if self.nan_guard:
            x = guard(x)
        return x

    def _residual(self, x, branch):
        """x + r·branch; with r = 1 the branch is added as it is (no multiplication, no graph node)."""
        return x + (branch if self.residual_scale == 1.0 else branch * self.residual_scale)


class ConvStem(Module):
    """Two 3×3 stride-2 convolutions: the first reads the image, the second reads spikes.

        x [B, 3, H, W] → Conv 3×3/2 (3→C/2) → BN → SN → Conv 3×3/2 (C/2→C) → [B, C, H/4, W/4]

    Same token grid as the 4×4/4 patch embedding, with overlapping receptive fields and one more
    nonlinearity.  BN and SN see channels-last pixels [B, H/2, W/2, C/2] (BN's statistics are those of a
    BatchNorm2d; a dynamic slope is one per pixel).
    """

    def __init__(self, dim, neuron, dtype=np.float32):
        super().__init__()
        if dim % 2:
            raise ValueError(f"the conv stem needs an even dim, got {dim}")
        self.conv1 = Conv2d(3, dim // 2, 3, stride=2, padding=1, dtype=dtype)
        self.bn1 = TokenBatchNorm(dim // 2, dtype=dtype)
        self.sn1 = neuron(dim // 2, 1.0)
        self.conv2 = Conv2d(dim // 2, dim, 3, stride=2, padding=1, dtype=dtype)

    def forward(self, x):
        h = self.conv1(x).permute((0, 2, 3, 1))                        # [B, H/2, W/2, C/2]
        return self.conv2(self.sn1.after_norm(self.bn1, h).permute((0, 3, 1, 2)))   # SN(BN(h)) → [B, C, H/4, W/4]


STEMS = ("patch", "conv")


class DySViT(Module):
    """Dy-SViT for 32×32 images.  Input [B, 3, 32, 32] (normalised) → logits [B, num_classes]."""

    def __init__(self, num_classes=10, dim=256, depth=4, heads=8, mlp_ratio=4, patch_size=4, img_size=32,
                 T=1, dynamic_slope=True, stability=True, hypernet_hidden=16, stem="patch", dtype=np.float32):
        super().__init__()
        if T != 1:
            raise ValueError(f"Dy-SViT is a single-step (T = 1) network; got T={T}")
        for name, v in (("num_classes", num_classes), ("dim", dim), ("depth", depth), ("heads", heads),
                        ("mlp_ratio", mlp_ratio), ("patch_size", patch_size), ("img_size", img_size),
                        ("hypernet_hidden", hypernet_hidden)):
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if stem not in STEMS:
            raise ValueError(f"stem must be one of {STEMS}, got {stem!r}")
        if stem == "conv" and patch_size != 4:
            raise ValueError(f"the conv stem down-samples by 4: it needs patch_size=4, got {patch_size}")
        if img_size % patch_size:
            raise ValueError(f"img_size {img_size} is not divisible by patch_size {patch_size}")
        self.config = dict(num_classes=num_classes, dim=dim, depth=depth, heads=heads, mlp_ratio=mlp_ratio,
                           patch_size=patch_size, img_size=img_size, T=T, dynamic_slope=dynamic_slope,
                           stability=stability, hypernet_hidden=hypernet_hidden, stem=stem)
        self.T, self.num_classes, self.img_size = 1, num_classes, img_size
        self.num_tokens = (img_size // patch_size) ** 2

        def neuron(channels, threshold):
            return DynamicSlopeNeuron(channels, threshold, dynamic=dynamic_slope, hidden=hypernet_hidden,
                                      nan_guard=stability, dtype=dtype)

        if stem == "conv":
            self.stem = ConvStem(dim, neuron, dtype)
        else:
            self.patch_embed = Conv2d(3, dim, patch_size, stride=patch_size, dtype=dtype)
        self.pos_embed = Parameter(np.zeros((1, self.num_tokens, dim), dtype=dtype))
        self.blocks = ModuleList([Block(dim, heads, mlp_ratio, neuron, stability, dtype) for _ in range(depth)])
        self.norm = TokenBatchNorm(dim, dtype=dtype)
        self.head = Linear(dim, num_classes, dtype=dtype)
        self._init_weights()

    def _init_weights(self):
        init.trunc_normal_(self.pos_embed, std=0.02)
        for name, m in self.named_modules():
            if isinstance(m, (Linear, Conv2d)) and ".hyper." not in f".{name}.":
                init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    init.zeros_(m.bias)

    def neurons(self):
        """(path, neuron) for the spiking neurons (7 per block, one more in the conv stem), in forward order."""
        return named_neurons(self)

    def flop_rows(self) -> list[LayerFlops]:
        """MACs per image (T = 1) for `minisnn.models.count_flops` / `energy_report`.

        The patch embedding (real-valued image) and the head (real-valued pooled features) are
        dense MACs; every other Linear reads spikes; (q kᵀ) v costs 2·N²·C accumulations driven
        by q and v.  The hypernetworks are left out: they only shape gradients, and inference
        skips them.
        """
        N, C = self.num_tokens, self.config["dim"]
        if self.config["stem"] == "conv":
            rows = [dense_flops("stem.conv1", self.stem.conv1, 4 * N), weighted_flops("stem.conv2", self.stem.conv2, N)]
        else:
            rows = [dense_flops("patch_embed", self.patch_embed, N)]
        for i, blk in enumerate(self.blocks):
            rows += quadratic_attention_block(f"blocks.{i}", blk, N, C, FLOP_NAMES)
        return rows + [dense_flops("head", self.head, 1)]

    def forward(self, images):
        x = images if isinstance(images, Tensor) else Tensor(np.asarray(images, dtype=self.head.weight.dtype))
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] != self.img_size or x.shape[3] != self.img_size:
            raise ValueError(f"DySViT expects images of shape [B, 3, {self.img_size}, {self.img_size}], got {x.shape}")
        reset_net(self)                               # every input starts from rest (as the seed models do)
        x = self.stem(x) if self.config["stem"] == "conv" else self.patch_embed(x)   # [B, C, 8, 8]
        b, c = x.shape[:2]
        x = x.reshape(b, c, self.num_tokens).transpose(1, 2) + self.pos_embed   # [B, 64, C], token n = 8·row + col
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.norm(x).mean(axis=1))


register("dysvit-cifar10", DySViT,
         description="Dy-SViT (reconstruction): pure spiking ViT, dim 256, depth 4, T=1, per-token slope "
                     "hypernetworks; 3.37 M params")
register("dysvit-static-cifar10", functools.partial(DySViT, dynamic_slope=False),
         description="Dy-SViT with a fixed surrogate slope 2 (same network, no hypernetworks): the fair ablation")
register("dysvit-tiny", functools.partial(DySViT, dim=128, depth=2, heads=4),
         description="Dy-SViT, dim 128, depth 2, 4 heads, T=1 (CPU-sized)")
register("dysvit-conv", functools.partial(DySViT, dim=128, depth=4, heads=4, stem="conv", dynamic_slope=False,
                                         stability=False),
         description="Dy-SViT with a two-convolution stem, a fixed slope and no stability protocol, dim 128, depth 4, "
                     "4 heads, T=1; 0.88 M params (the network of speedrun-60)")
