"""The upstream oracles (Spikformer, MSViT, QKFormer): the networks of `minisnn.torch.upstream`, plus
the BatchNorm calibration that makes a randomly initialised one fire (for parity tests).

    from minisnn.parity.oracles.upstream import build_msvit, calibrate_bn
    oracle = build_msvit(embed_dim=64, num_heads=2, depth=3, T=2, img_size=16)
    calibrate_bn(oracle, x)                  # BN statistics so that neurons fire
    logits = oracle(x)                       # x: [B, 3, H, W] torch tensor

The networks are defined once, in `minisnn.torch.upstream` (the supported PyTorch versions of
minisnn's models); this module re-exports them under their old names.
"""
from __future__ import annotations

import torch
from torch import nn
from spikingjelly.clock_driven import functional as sj_functional

from minisnn.torch.upstream import (SPS, ConvMLP, HierarchicalSpikingTransformer, InitEmbed, Spikformer,
                                    SpikformerBlock, SpikformerMLP, SpikformerSSA, SpikingSelfAttention, SSABlock,
                                    StageEmbed, TokenAttention, TokenBlock, build_msvit, build_qkformer,
                                    build_spikformer)

__all__ = [
    "build_spikformer", "build_msvit", "build_qkformer", "calibrate_bn", "lif_firing_rates", "forward_with_hooks",
    "Spikformer", "HierarchicalSpikingTransformer", "SPS", "ConvMLP", "InitEmbed", "SpikformerBlock",
    "SpikformerMLP", "SpikformerSSA", "SpikingSelfAttention", "SSABlock", "StageEmbed", "TokenAttention",
    "TokenBlock", "DEFAULT_BN_CENTRES",
]


# BN layers whose output is not fed straight to an ordinary neuron get lower centres:
# max-pooled before their LIF (proj4_bn), or feeding the head-wise sums / products that
# would otherwise drive the attention neurons to fire always.  Keys match path suffixes.
DEFAULT_BN_CENTRES = {"proj4_bn": 0.3, "tssa.q_bn": 0.6, "tssa.p_bn": 0.6, "attn.q_bn": 1.0}


@torch.no_grad()
def calibrate_bn(model: nn.Module, x: torch.Tensor, mean: float = 1.5, std: float = 1.0,
                 centres: dict[str, float] | None = None, seed: int = 0) -> nn.Module:
    """Set every BatchNorm so that, on input `x`, each channel's output is ≈ N(β, γ²), β ≈ mean, γ ≈ std.

    One eval-mode forward pass; a pre-hook on each BN (in execution order) stores the per-channel
    mean/variance of its actual input as running statistics and draws γ ∈ std·[0.7, 1.3] and
    β ∈ centre + [-0.3, 0.3], where the centre is `mean` unless the BN's path ends with a key of
    `centres` (defaults: DEFAULT_BN_CENTRES).  With tau 2 and v_th 1 a neuron driven by a
    constant x fires iff x > 1, so these give firing rates well inside (5 %, 95 %) for small test models.
    Works in float32 and float64; leaves the model in eval mode.  Returns the model.
    """
    gen = torch.Generator().manual_seed(seed)
    table = dict(DEFAULT_BN_CENTRES, **(centres or {}))
    hooks = []

    def pre_hook(name):
        centre = next((c for key, c in table.items() if name == key or name.endswith("." + key)), mean)

        def hook(bn, inputs):
            z = inputs[0]
            axes = [0] + list(range(2, z.dim()))
            bn.running_mean.copy_(z.mean(dim=axes))
            bn.running_var.copy_(z.var(dim=axes, unbiased=False).clamp_min(1e-3))
            C = z.shape[1]
            gamma = std * (0.7 + 0.6 * torch.rand(C, generator=gen, dtype=torch.float64))
            beta = centre + 0.6 * (torch.rand(C, generator=gen, dtype=torch.float64) - 0.5)
            bn.weight.copy_(gamma.to(bn.weight.dtype))
            bn.bias.copy_(beta.to(bn.bias.dtype))
        return hook

    for name, mod in model.named_modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            hooks.append(mod.register_forward_pre_hook(pre_hook(name)))
    model.eval()
    forward_with_hooks(model, x, hooks)
    return model


def forward_with_hooks(model: nn.Module, x: torch.Tensor, hooks: list) -> torch.Tensor:
    """model(x), then remove `hooks` and reset every neuron's state, even if the forward raised."""
    try:
        return model(x)
    finally:
        for h in hooks:
            h.remove()
        sj_functional.reset_net(model)


def lif_firing_rates(model: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Mean output (spike rate) of every LIF node on input `x`, keyed by module path."""
    from .calibrate import firing_rates  # import cycle: calibrate imports this module at its top

    return firing_rates(model, x)
