"""minisnn: spiking vision transformers from scratch in NumPy and Numba.

    import minisnn
    from minisnn import Tensor, nn, functional as F

Heavy parts (`models`, checkpoint I/O, data, training, plots) load on first use.
"""
from __future__ import annotations

import importlib

from .autograd.tensor import Tensor
from .autograd.function import Function, Context
from .autograd.grad_mode import no_grad, enable_grad, is_grad_enabled
from .autograd.gradcheck import gradcheck, GradcheckError
from . import functional
from . import functional as F
from . import nn, optim

__version__ = "0.1.0"

_LAZY_MODULES = {"models", "io", "data", "train", "viz", "kernels", "spiking"}
_LAZY_ATTRS = {
    "load_checkpoint": ("minisnn.io", "load_checkpoint"),
    "save_checkpoint": ("minisnn.io", "save_checkpoint"),
}

__all__ = [
    "Tensor", "Function", "Context", "no_grad", "enable_grad", "is_grad_enabled",
    "gradcheck", "GradcheckError", "functional", "F", "nn", "optim",
    "load_checkpoint", "save_checkpoint", "models",
]


def __getattr__(name: str):
    if name in _LAZY_MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _LAZY_ATTRS:
        mod, attr = _LAZY_ATTRS[name]
        return getattr(importlib.import_module(mod), attr)
    raise AttributeError(f"module 'minisnn' has no attribute {name!r}")
