"""In-place weight initialisers (PyTorch's `torch.nn.init` defaults) and the global init generator.

Each function overwrites `tensor` (a Tensor/Parameter or an np.ndarray) in place,
keeps its dtype, and returns it.  Random draws come from `rng` when given, else
from this module's generator, reseeded with `manual_seed(seed)`.

Fans of a weight [out, in, *kernel]: fan_in = in·∏kernel, fan_out = out·∏kernel.

Inside `with parameter_budget(limit_bytes):` initialising tensors that add up to more than
`limit_bytes` raises MemoryError before their values are drawn (`models.create` uses it).
"""
from __future__ import annotations

import contextlib
import math

import numpy as np
from scipy import special

from ..autograd.tensor import Tensor
from ..ops import dropout as _dropout

_generator = np.random.default_rng()
_budget: dict | None = None   # while `parameter_budget` is active: limit, bytes left, ids of charged arrays


def manual_seed(seed: int) -> None:
    """Reseed the generators of minisnn.nn: weight initialisation and (a derived stream for) dropout."""
    global _generator
    _generator = np.random.default_rng(seed)
    _dropout.manual_seed([seed, 1])


def default_generator() -> np.random.Generator:
    return _generator


@contextlib.contextmanager
def parameter_budget(limit_bytes: int):
    """Within the block, initialising more than `limit_bytes` of tensors in all raises MemoryError."""
    global _budget
    outer, _budget = _budget, {"limit": int(limit_bytes), "left": int(limit_bytes), "seen": set()}
    try:
        yield
    finally:
        _budget = outer


def _array(tensor) -> np.ndarray:
    arr = tensor.data if isinstance(tensor, Tensor) else tensor
    if not isinstance(arr, np.ndarray) or arr.dtype.kind != "f":
        raise TypeError(f"init: expected a floating-point Tensor or array, got {type(tensor).__name__}")
    if _budget is not None and id(arr) not in _budget["seen"]:
        _budget["seen"].add(id(arr))
        _budget["left"] -= arr.nbytes
        if _budget["left"] < 0:
            raise MemoryError(f"initialising a tensor of shape {arr.shape} takes the parameters over the "
                              f"{_budget['limit'] / 2**30:g} GiB budget")
    return arr


def _fill(tensor, values):
    arr = _array(tensor)
    arr[...] = values  # cast into the tensor's own dtype
    return tensor


def calculate_fan_in_and_fan_out(shape) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of shape [out, in, *kernel]."""
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(f"fan in/out needs a tensor of at least 2 dimensions, got shape {shape}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity: str = "leaky_relu", param: float | None = None) -> float:
    """Recommended std multiplier: 1 for linear/sigmoid, √2 for relu, √(2/(1 + a²)) for leaky_relu(a)."""
    if nonlinearity in ("linear", "identity", "sigmoid", "conv1d", "conv2d"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        a = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1.0 + a * a))
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _rng(rng):
    return _generator if rng is None else rng


def uniform_(tensor, a: float = 0.0, b: float = 1.0, rng=None):
    """Fill with U(a, b)."""
    return _fill(tensor, _rng(rng).uniform(a, b, size=_array(tensor).shape))


def normal_(tensor, mean: float = 0.0, std: float = 1.0, rng=None):
    """Fill with N(mean, std²)."""
    return _fill(tensor, _rng(rng).normal(mean, std, size=_array(tensor).shape))


def trunc_normal_(tensor, mean: float = 0.0, std: float = 0.02, a: float = -2.0, b: float = 2.0, rng=None):
    """Fill with N(mean, std²) truncated to [a, b] (a, b are absolute values, as in PyTorch/timm).

    Inverse-CDF sampling: u ~ U(Φ(α), Φ(β)) with α = (a − mean)/std, β = (b − mean)/std,
    then x = mean + std·Φ⁻¹(u).
    """
    if std <= 0 or a >= b:
        raise ValueError(f"trunc_normal_: need std > 0 and a < b, got std={std}, a={a}, b={b}")
    lo, hi = special.ndtr((a - mean) / std), special.ndtr((b - mean) / std)
    u = _rng(rng).uniform(lo, hi, size=_array(tensor).shape)
    return _fill(tensor, np.clip(mean + std * special.ndtri(u), a, b))


def constant_(tensor, val: float):
    return _fill(tensor, val)


def zeros_(tensor):
    return _fill(tensor, 0.0)


def ones_(tensor):
    return _fill(tensor, 1.0)


def kaiming_uniform_(tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", rng=None):
    """Fill with U(−bound, bound), bound = gain·√(3/fan).

    With a = √5 (PyTorch's Linear/Conv default) this is U(±1/√fan_in).
    """
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming_uniform_: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = calculate_fan_in_and_fan_out(_array(tensor).shape)
    fan = fan_in if mode == "fan_in" else fan_out
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan) if fan > 0 else 0.0
    return uniform_(tensor, -bound, bound, rng=rng)


def default_layer_init_(weight, bias=None, rng=None) -> None:
    """PyTorch's Linear/Conv reset: W ~ kaiming_uniform(a=√5) = U(±1/√fan_in), b ~ U(±1/√fan_in)."""
    kaiming_uniform_(weight, a=math.sqrt(5.0), rng=rng)
    if bias is not None:
        fan_in, _ = calculate_fan_in_and_fan_out(_array(weight).shape)
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        uniform_(bias, -bound, bound, rng=rng)
