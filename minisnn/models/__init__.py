"""Spiking vision transformers: Spikformer, MSViT, QKFormer (and Dy-SViT), plus instrumentation.

    from minisnn import models
    model = models.create("msvit-cifar10")          # upstream MSViT-4-384, T = 4
    logits = model(images)                          # images [B, 3, 32, 32] normalised -> [B, 10]
    models.names()                                  # every registered preset

    with models.FiringRateMonitor(model) as mon:    # firing rates / energy, outputs unchanged
        model(images)
    print(models.energy_report(model, mon))

Each model exposes `.T`, `.num_classes` and `.config` (its constructor arguments), and its
state_dict keys/shapes are the upstream PyTorch ones.  See docs/models.md.
Model classes and tools load on first use, so importing the registry stays cheap.
"""
from __future__ import annotations

import importlib

from .registry import create, describe, names, network_of, register, register_recipe, training_recipe

_LAZY = {
    "SpikingVisionModel": "blocks", "Spikformer": "spikformer", "MSViT": "msvit", "QKFormer": "qkformer",
    "FiringRateMonitor": "monitor", "LayerFlops": "flops", "count_flops": "flops", "total_flops": "flops",
    "energy_report": "flops", "EnergyReport": "flops", "E_AC_PJ": "flops", "E_MAC_PJ": "flops",
    "PRESETS": "presets",
}

__all__ = ["create", "describe", "names", "network_of", "register", "register_recipe", "training_recipe", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
