"""User-facing differentiable functions (`minisnn.functional`, usually imported as `F`).

Each function accepts Tensors, NumPy arrays or Python numbers and returns a
Tensor; it is a thin wrapper around one `Function` in `minisnn.ops`.
"""
from __future__ import annotations

import numpy as np

from .autograd.tensor import Tensor
from .ops import elementwise as ew
from .ops import loss as _loss
from .ops import matmul as _mm
from .ops import reduce as _red
from .ops import shape as _shape


def _pair(a, b):
    """Make both operands arrays/Tensors; Python scalars take the other side's dtype."""
    def dtype_of(x):
        return x.dtype if isinstance(x, (Tensor, np.ndarray)) and x.dtype.kind == "f" else None

    da, db = dtype_of(a), dtype_of(b)
    if not isinstance(a, (Tensor, np.ndarray)):
        a = np.asarray(a, dtype=db or np.float32)
    if not isinstance(b, (Tensor, np.ndarray)):
        b = np.asarray(b, dtype=da or np.float32)
    return a, b


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    """Make a Tensor (float32 for Python data, arrays keep their dtype)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


# ------------------------------------------------------------------ element-wise
def add(a, b) -> Tensor:
    return ew.Add.apply(*_pair(a, b))


def sub(a, b) -> Tensor:
    return ew.Sub.apply(*_pair(a, b))


def mul(a, b) -> Tensor:
    return ew.Mul.apply(*_pair(a, b))


def div(a, b) -> Tensor:
    return ew.Div.apply(*_pair(a, b))


def neg(x) -> Tensor:
    return ew.Neg.apply(x)


def pow(x, exponent) -> Tensor:
    """x ** exponent; a Tensor exponent is differentiable too."""
    if isinstance(exponent, Tensor) or (isinstance(exponent, np.ndarray) and exponent.ndim > 0):
        return ew.PowTensor.apply(*_pair(x, exponent))
    return ew.Pow.apply(x, float(exponent))


def exp(x) -> Tensor:
    return ew.Exp.apply(x)


def log(x) -> Tensor:
    return ew.Log.apply(x)


def sqrt(x) -> Tensor:
    return ew.Sqrt.apply(x)


def tanh(x) -> Tensor:
    return ew.Tanh.apply(x)


def sigmoid(x) -> Tensor:
    return ew.Sigmoid.apply(x)


def relu(x) -> Tensor:
    return ew.Relu.apply(x)


def gelu(x) -> Tensor:
    return ew.Gelu.apply(x)


def abs(x) -> Tensor:
    return ew.Abs.apply(x)


def maximum(a, b) -> Tensor:
    return ew.Maximum.apply(*_pair(a, b))


def where(cond, a, b) -> Tensor:
    """Element-wise choice: a where cond (a boolean array) else b."""
    cond = cond.data if isinstance(cond, Tensor) else cond
    a, b = _pair(a, b)
    return ew.Where.apply(np.asarray(cond, dtype=bool), a, b)


def nan_to_num(x, nan: float = 0.0, posinf: float | None = None, neginf: float | None = None) -> Tensor:
    """Replace NaN/±inf; gradient passes only where x was finite."""
    return ew.NanToNum.apply(x, nan=nan, posinf=posinf, neginf=neginf)


def cast(x, dtype) -> Tensor:
    return ew.Cast.apply(x, np.dtype(dtype))


# -------------------------------------------------------------------- reductions
def sum(x, axis=None, keepdims: bool = False) -> Tensor:
    return _red.Sum.apply(x, axis=axis, keepdims=keepdims)


def mean(x, axis=None, keepdims: bool = False) -> Tensor:
    return _red.Mean.apply(x, axis=axis, keepdims=keepdims)


def max(x, axis=None, keepdims: bool = False) -> Tensor:
    return _red.Max.apply(x, axis=axis, keepdims=keepdims)


def var(x, axis=None, keepdims: bool = False, unbiased: bool = False) -> Tensor:
    return _red.Var.apply(x, axis=axis, keepdims=keepdims, unbiased=unbiased)


# ------------------------------------------------------------------------ shapes
def reshape(x, shape) -> Tensor:
    return _shape.Reshape.apply(x, tuple(shape))


def flatten(x, start: int = 0, end: int = -1) -> Tensor:
    """Merge axes start..end (inclusive) into one."""
    shape = x.shape
    nd = len(shape)
    s, e = start % nd, end % nd
    merged = int(np.prod(shape[s:e + 1]))
    return reshape(x, shape[:s] + (merged,) + shape[e + 1:])


def permute(x, axes) -> Tensor:
    return _shape.Permute.apply(x, tuple(axes))


def transpose(x, a: int = -2, b: int = -1) -> Tensor:
    """Swap two axes."""
    axes = list(range(x.ndim))
    axes[a], axes[b] = axes[b], axes[a]
    return permute(x, axes)


def broadcast_to(x, shape) -> Tensor:
    return _shape.BroadcastTo.apply(x, tuple(shape))


expand = broadcast_to


def getitem(x, index) -> Tensor:
    return _shape.GetItem.apply(x, index)


def concatenate(xs, axis: int = 0) -> Tensor:
    return _shape.Concatenate.apply(*xs, axis=axis)


cat = concatenate


def stack(xs, axis: int = 0) -> Tensor:
    return _shape.Stack.apply(*xs, axis=axis)


def pad(x, pad_width, value: float = 0.0) -> Tensor:
    """Constant padding; pad_width is ((before, after), ...) for every axis, as np.pad."""
    return _shape.Pad.apply(x, pad_width, value=value)


# ------------------------------------------------------------------------ matmul
def matmul(a, b) -> Tensor:
    return _mm.MatMul.apply(a, b)


# ---------------------------------------------------------------- softmax & loss
def softmax(x, axis: int = -1) -> Tensor:
    return _loss.Softmax.apply(x, axis=axis)


def log_softmax(x, axis: int = -1) -> Tensor:
    return _loss.LogSoftmax.apply(x, axis=axis)


def cross_entropy(logits, target, label_smoothing: float = 0.0, reduction: str = "mean") -> Tensor:
    """Cross-entropy of logits [B, K] with integer targets [B] or soft targets [B, K] (e.g. mixup).

    Label smoothing ε mixes the target with the uniform distribution: q = (1 − ε)·q + ε/K.
    """
    target = target.data if isinstance(target, Tensor) else np.asarray(target)
    return _loss.CrossEntropy.apply(logits, target, label_smoothing=label_smoothing, reduction=reduction)
