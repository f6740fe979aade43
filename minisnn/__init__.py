"""minisnn: spiking vision transformers from scratch in NumPy and Numba.

    import minisnn
    from minisnn import Tensor, nn, functional as F

    model = minisnn.pretrained("dysvit-tiny-cifar10")   # a trained spiking ViT (65.7 % on CIFAR-10)
    minisnn.predict(model, images).names                # uint8 images in, class names out

What is here (the names below the line load on first use, so `import minisnn` stays light):

    Tensor, Function, Context        the autograd engine (minisnn.autograd)
    gradcheck, GradcheckError        finite-difference gradient checks (use float64)
    no_grad, enable_grad, is_grad_enabled
    functional (F), nn, optim        differentiable ops, layers and modules, AdamW and schedules
    ---------------------------------------------------------------------------------
    spiking                          LIF / IF / ParametricLIF neurons, surrogates, spike, reset_net
    models                           the model registry: models.names(), models.create(name)
    pretrained(name)                 a shipped trained model, in eval mode
    predict(model, images)           classify uint8 images with the model's own normalisation
    load_checkpoint, save_checkpoint PyTorch checkpoint files read and written without torch (minisnn.io)
    io, data, train, viz, kernels    checkpoint formats, CIFAR-10 loading, the trainer, plots, Numba kernels
    parity                           comparisons with the PyTorch reference models (needs torch)
    verify_neuron(module, claims)    check a PyTorch neuron against the dynamics it claims (needs torch)

The command line is `minisnn` (`minisnn --help`).
"""
from __future__ import annotations

import importlib
import os as _os

# Thread hand-off between BLAS and Numba on few cores: idle threads of one pool must not spin
# while the other pool works (measured ~1.2x on a 2-core training step; see bench/README.md).
# Only defaults: a value set by the user wins.  OPENBLAS_THREAD_TIMEOUT takes effect only when
# minisnn is imported before NumPy; OMP_WAIT_POLICY (Numba's OpenMP layer) is read when Numba
# first runs a parallel kernel.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
_os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

from ._allocator import keep_large_arrays_in_heap

keep_large_arrays_in_heap()  # activations reuse freed memory instead of fresh pages (_allocator.py)

from .autograd.tensor import Tensor
from .autograd.function import Function, Context
from .autograd.grad_mode import no_grad, enable_grad, is_grad_enabled
from .autograd.gradcheck import gradcheck, GradcheckError
from . import functional  # also binds Tensor's operators and methods (functional.TENSOR_METHODS)
from . import functional as F
from . import nn, optim

__version__ = "0.1.0"

_LAZY_MODULES = {"models", "io", "data", "train", "viz", "kernels", "spiking", "parity"}
_LAZY_ATTRS = {
    "load_checkpoint": ("minisnn.io", "load_checkpoint"),
    "save_checkpoint": ("minisnn.io", "save_checkpoint"),
    "pretrained": ("minisnn.train.export", "pretrained"),
    "predict": ("minisnn.inference", "predict"),
    "verify_neuron": ("minisnn.torch.verify_neuron", "verify_neuron"),
}

__all__ = [
    "Tensor", "Function", "Context", "no_grad", "enable_grad", "is_grad_enabled",
    "gradcheck", "GradcheckError", "functional", "F", "nn", "optim",
    "load_checkpoint", "save_checkpoint", "pretrained", "predict", "verify_neuron",
    "models", "spiking", "io", "data", "train", "viz", "kernels", "parity",
]


def __getattr__(name: str):
    if name in _LAZY_MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _LAZY_ATTRS:
        mod, attr = _LAZY_ATTRS[name]
        return getattr(importlib.import_module(mod), attr)
    raise AttributeError(f"module 'minisnn' has no attribute {name!r}")
