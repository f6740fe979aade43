"""Named configurations of the seed models, registered with `minisnn.models.registry`.

The `*-cifar10` presets are the upstream CIFAR-10 models exactly (their checkpoints load key
for key, upstream quirks included).  The `-tiny` and `-small` presets shrink width, depth
and time steps so they train on a laptop CPU; `docs/models.md` lists parameters and FLOPs.
"""
from __future__ import annotations

import dataclasses
import functools

from .msvit import MSViT
from .qkformer import QKFormer
from .registry import register
from .spikformer import Spikformer


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    model: type
    kwargs: dict
    description: str


PRESETS = (
    Preset("spikformer-cifar10", Spikformer, {},
           "Spikformer-4-384 (upstream CIFAR-10): SPS + 4 SSA blocks, dim 384, 12 heads, T=4; 9.33 M params"),
    Preset("msvit-cifar10", MSViT, {},
           "MSViT-4-384 (upstream CIFAR-10): 3 SPEMSF embeddings, MSSA x2 + SSA x2, E=384, T=4; 7.56 M params"),
    Preset("qkformer-cifar10", QKFormer, {},
           "QKFormer-4-384 (upstream CIFAR-10): Q-K attention x2 + SSA x2, E=384, T=4; 6.71 M params"),
    Preset("spikformer-tiny", Spikformer, dict(embed_dim=128, num_heads=4, depth=2, T=2),
           "Spikformer, dim 128, 4 heads, 2 blocks, T=2 (CPU-sized)"),
    Preset("spikformer-small", Spikformer, dict(embed_dim=192, num_heads=6, depth=3, T=2),
           "Spikformer, dim 192, 6 heads, 3 blocks, T=2 (CPU-sized)"),
    Preset("msvit-tiny", MSViT, dict(embed_dim=128, depth=3, T=2),
           "MSViT, E=128 (stages 64/64/128), 8 heads, MSSA x2 + SSA x1, T=2 (CPU-sized)"),
    Preset("msvit-small", MSViT, dict(embed_dim=192, depth=4, T=2),
           "MSViT, E=192 (stages 96/96/192), 8 heads, MSSA x2 + SSA x2, T=2 (CPU-sized)"),
    Preset("qkformer-tiny", QKFormer, dict(embed_dim=128, depth=3, T=2),
           "QKFormer, E=128 (stages 32/64/128), 8 heads, QK attention x2 + SSA x1, T=2 (CPU-sized)"),
    Preset("qkformer-small", QKFormer, dict(embed_dim=192, depth=4, T=2),
           "QKFormer, E=192 (stages 48/96/192), 8 heads, QK attention x2 + SSA x2, T=2 (CPU-sized)"),
)

for _preset in PRESETS:
    register(_preset.name, functools.partial(_preset.model, **_preset.kwargs), description=_preset.description)
