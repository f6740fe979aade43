"""Neural-network building blocks with PyTorch-compatible names, shapes and state_dict keys.

    from minisnn import nn
    layer = nn.Conv2d(3, 96, 3, padding=1, bias=False)
"""
from . import init
from .module import Module, Parameter, StateDictError
from .layers import Dropout, Identity, Linear
from .conv import Conv1d, Conv2d, MaxPool2d
from .norm import BatchNorm1d, BatchNorm2d, LayerNorm, TokenBatchNorm
from .containers import ModuleList, Sequential

__all__ = [
    "Module", "Parameter", "StateDictError", "init",
    "Linear", "Identity", "Dropout",
    "Conv1d", "Conv2d", "MaxPool2d",
    "BatchNorm1d", "BatchNorm2d", "LayerNorm", "TokenBatchNorm",
    "Sequential", "ModuleList",
]
