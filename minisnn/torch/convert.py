"""minisnn model ⇄ torch.nn.Module: the same architecture, the same state_dict, bit for bit.

    module = to_torch(model)                     # torch.nn.Module, same keys and values, model's dtype
    model = from_torch(module, "dysvit-tiny")    # a minisnn model holding the module's weights
    load_torch_state_dict(model, module.state_dict())

The modules are `minisnn.torch.upstream` (Spikformer, MSViT, QKFormer; SpikingJelly's LIF) and
`minisnn.torch.dysvit` (Dy-SViT; plain PyTorch).  Their parameter and buffer names are minisnn's
(BatchNorm's `num_batches_tracked` included), so a state_dict moves key for key and value for
value: floats keep their dtype (float32 or float64, following the model), integers stay int64.
The parity suite (`minisnn.parity`) proves each module's spikes, logits and gradients equal to
the minisnn model's in float64.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .. import models
from ..models.dysvit import DySViT
from ..models.msvit import MSViT
from ..models.qkformer import QKFormer
from ..models.spikformer import Spikformer
from .dysvit import build_dysvit

FAMILIES = ("spikformer", "msvit", "qkformer", "dysvit")
SPIKINGJELLY_HINT = "pip install spikingjelly==0.0.0.0.14 --no-deps"


def family_of(name: str) -> str:
    """'dysvit-tiny' -> 'dysvit' (a family name is returned as is; a speedrun preset gives its network's
    family); ValueError for any other model."""
    family = models.network_of(name).split("-")[0]
    if family not in FAMILIES:
        raise ValueError(f"no PyTorch module for model {name!r} (families: {', '.join(FAMILIES)})")
    return family


MINISNN_CLASSES = {Spikformer: "spikformer", MSViT: "msvit", QKFormer: "qkformer", DySViT: "dysvit"}


def _family_of_model(model) -> str:
    if type(model) not in MINISNN_CLASSES:
        raise TypeError(f"to_torch converts the registered minisnn models ({', '.join(FAMILIES)}), "
                        f"not {type(model).__name__}")
    return MINISNN_CLASSES[type(model)]


def _upstream():
    """`minisnn.torch.upstream`, which imports SpikingJelly (optional: only these three families need it)."""
    try:
        from . import upstream  # optional dependency (SpikingJelly), loaded for these families only
    except ImportError as exc:
        if not (exc.name or "").startswith("spikingjelly"):
            raise
        raise ImportError(f"Spikformer/MSViT/QKFormer in PyTorch use SpikingJelly's LIF neuron, which is not "
                          f"installed: {SPIKINGJELLY_HINT}") from None
    return upstream


def build_module(name_or_family: str, config: dict) -> nn.Module:
    """The torch.nn.Module for a registered model name or a family, built from a minisnn `config`
    (`model.config`), with PyTorch's own random initialisation (float32, CPU)."""
    family = family_of(name_or_family)
    if "surrogate" in config:
        raise ValueError(f"the PyTorch twin of {name_or_family} fires with SpikingJelly's sigmoid surrogate; this "
                         f"model uses surrogate={config['surrogate']!r}, which has no PyTorch twin")
    if family == "dysvit":
        return build_dysvit(**dict(config))
    upstream = _upstream()
    builders = {"spikformer": upstream.build_spikformer, "msvit": upstream.build_msvit,
                "qkformer": upstream.build_qkformer}
    return builders[family](**dict(config))


def model_dtype(model) -> np.dtype:
    """The floating dtype of a minisnn model (that of its parameters)."""
    return next(iter(model.parameters())).data.dtype


def to_torch(model) -> nn.Module:
    """A torch.nn.Module with `model`'s architecture and weights (state_dict keys and values, buffers
    included), in `model`'s float dtype, on the CPU, in `model`'s train/eval mode."""
    module = build_module(_family_of_model(model), dict(model.config))
    module.to(torch.float64 if model_dtype(model) == np.float64 else torch.float32)
    theirs = module.state_dict()
    ours = model.state_dict()
    if list(theirs) != list(ours):
        missing = sorted(set(ours) - set(theirs)) + sorted(set(theirs) - set(ours))
        raise RuntimeError(f"the PyTorch {type(module).__name__} and minisnn's {type(model).__name__} differ in "
                           f"their state_dict keys: {', '.join(missing) or 'the order'}")
    module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in ours.items()})
    return module.train(model.training)


def numpy_state_dict(module: nn.Module) -> dict[str, np.ndarray]:
    """`module.state_dict()` as NumPy arrays (copies on the CPU, dtypes kept), in the module's key order."""
    module = unwrap(module)
    return {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def load_torch_state_dict(model, state_dict: dict) -> dict:
    """Copy a torch state_dict (tensors on any device) into minisnn `model`; strict, as `model.load_state_dict`."""
    return model.load_state_dict({k: v.detach().cpu().numpy() for k, v in state_dict.items()})


def from_torch(module: nn.Module, name: str, **overrides):
    """The minisnn model `name` (built with `overrides`, e.g. num_classes) holding `module`'s weights, in the
    module's float dtype and train/eval mode.  A DistributedDataParallel wrapper is looked through."""
    module = unwrap(module)
    model = models.create(name, **overrides)
    floats = [p.dtype for p in module.parameters() if p.is_floating_point()]
    if floats and floats[0] == torch.float64:
        model.to_dtype(np.float64)
    load_torch_state_dict(model, module.state_dict())
    return model.train(module.training)


def unwrap(module: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel (or DataParallel) wrapper; any other module as is."""
    return module.module if isinstance(module, (nn.parallel.DistributedDataParallel, nn.DataParallel)) else module
