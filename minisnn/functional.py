"""User-facing differentiable functions (`minisnn.functional`, usually imported as `F`).

Each function accepts Tensors, NumPy arrays or Python numbers and returns a
Tensor; it is a thin wrapper around one `Function` in `minisnn.ops`.  Bad arguments
are caught here, once, by the op module's `check_*` functions (docs/engineering.md).
At the end, `TENSOR_METHODS` makes these functions Tensor's operators and methods.
"""
from __future__ import annotations

import numpy as np

from .autograd.tensor import Tensor
from .ops import conv as _conv
from .ops import dropout as _dropout
from .ops import elementwise as ew
from .ops import linear as _linear
from .ops import loss as _loss
from .ops import matmul as _mm
from .ops import norm as _norm
from .ops import pool as _pool
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
    return _red.Sum.apply(x, axes=_red.reduction_axes(axis, x.ndim), keepdims=keepdims)


def mean(x, axis=None, keepdims: bool = False) -> Tensor:
    return _red.Mean.apply(x, axes=_red.reduction_axes(axis, x.ndim), keepdims=keepdims)


def max(x, axis=None, keepdims: bool = False) -> Tensor:
    axes = _red.reduction_axes(axis, x.ndim)
    _red.check_max(x.shape, axes)
    return _red.Max.apply(x, axes=axes, keepdims=keepdims)


def var(x, axis=None, keepdims: bool = False, unbiased: bool = False) -> Tensor:
    """Variance over `axis` (biased unless `unbiased`, i.e. ddof = 1)."""
    axes = _red.reduction_axes(axis, x.ndim)
    _red.check_var(x.shape, axes, unbiased)
    return _red.Var.apply(x, axes=axes, keepdims=keepdims, unbiased=unbiased)


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
    return _shape.Permute.apply(x, _shape.check_permute(tuple(axes), x.ndim))


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
    _shape.check_concatenate(xs)
    return _shape.Concatenate.apply(*xs, axis=axis)


cat = concatenate


def stack(xs, axis: int = 0) -> Tensor:
    _shape.check_stack(xs)
    return _shape.Stack.apply(*xs, axis=axis)


def pad(x, pad_width, value: float = 0.0) -> Tensor:
    """Constant padding; pad_width is ((before, after), ...) for every axis, as np.pad."""
    return _shape.Pad.apply(x, _shape.check_pad(pad_width, x.ndim), value=value)


# ------------------------------------------------------------------------ matmul
def matmul(a, b) -> Tensor:
    _mm.check_matmul(tuple(a.shape), tuple(b.shape))
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
    _loss.check_cross_entropy(tuple(logits.shape), target, label_smoothing, reduction)
    return _loss.CrossEntropy.apply(logits, target, label_smoothing=label_smoothing, reduction=reduction)


# ------------------------------------------------------------------------ layers
def linear(x, weight, bias=None, affine=None) -> Tensor:
    """y = x Wᵀ + b over the last axis;  x [..., in], W [out, in], b [out] | None → [..., out].

    affine = (scale, shift), float64 [out] each (`BatchNorm1d.folded_affine()`): y ← scale·y + shift.
    """
    _linear.check_linear(x, weight, bias)
    _norm.check_affine(affine, weight.shape[0], "linear")
    return _linear.Linear.apply(x, weight, bias, affine=affine)


def conv2d(x, weight, bias=None, stride=1, padding=0, affine=None) -> Tensor:
    """2-D cross-correlation;  x [N, C, H, W], W [O, C, kh, kw], b [O] | None → [N, O, Ho, Wo].

    stride, padding: int or (h, w) pair; zero padding; Ho = ⌊(H + 2·ph − kh)/sh⌋ + 1.
    affine = (scale, shift), float64 [O] each (`BatchNorm2d.folded_affine()`): y ← scale·y + shift per
    output channel, an eval-mode BatchNorm folded into the convolution.
    """
    stride, padding = _conv.check_conv2d(x, weight, bias, stride, padding)
    _norm.check_affine(affine, weight.shape[0], "conv2d")
    return _conv.Conv2d.apply(x, weight, bias, stride=stride, padding=padding, affine=affine)


def conv1d(x, weight, bias=None, stride: int = 1, padding: int = 0, affine=None) -> Tensor:
    """1-D cross-correlation;  x [N, C, L], W [O, C, k], b [O] | None → [N, O, Lo]; affine as in `conv2d`."""
    _conv.check_conv1d(x, weight, bias, stride, padding)
    _norm.check_affine(affine, weight.shape[0], "conv1d")
    return _conv.Conv1d.apply(x, weight, bias, stride=stride, padding=padding, affine=affine)


def max_pool2d(x, kernel_size, stride=None, padding=0) -> Tensor:
    """Max over kh×kw windows (stride defaults to the kernel, padding counts as −∞, floor mode)."""
    kernel_size, stride, padding = _pool.check_max_pool2d(x, kernel_size, stride, padding)
    return _pool.MaxPool2d.apply(x, kernel_size=kernel_size, stride=stride, padding=padding)


def batch_norm(x, running_mean=None, running_var=None, weight=None, bias=None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Per-channel normalisation over axis 1 of x [N, C, ...] (PyTorch semantics).

    training=True (or no running statistics): batch mean / biased variance, and the running
    arrays (np.ndarray [C]) are updated in place with the unbiased variance;
    training=False: the running statistics are used.
    """
    running_mean = running_mean.data if isinstance(running_mean, Tensor) else running_mean
    running_var = running_var.data if isinstance(running_var, Tensor) else running_var
    use_batch = training or running_mean is None or running_var is None
    _norm.check_batch_norm(x, weight, bias, running_mean, running_var, use_batch)
    return _norm.BatchNorm.apply(x, weight, bias, running_mean=running_mean, running_var=running_var,
                                 training=use_batch, momentum=momentum, eps=eps)


def layer_norm(x, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Normalise over the trailing axes `normalized_shape` (int or tuple), then y = γ·x̂ + β."""
    if isinstance(normalized_shape, (int, np.integer)):
        normalized_shape = (int(normalized_shape),)
    normalized_shape = tuple(normalized_shape)
    _norm.check_layer_norm(x, normalized_shape, weight, bias)
    return _norm.LayerNorm.apply(x, weight, bias, n_axes=len(normalized_shape), eps=eps)


def dropout(x, p: float = 0.5, training: bool = True, rng: np.random.Generator | None = None) -> Tensor:
    """Inverted dropout: zero with probability p, scale survivors by 1/(1 − p); identity when not training."""
    _dropout.check_probability(p)
    if not training or p == 0.0:
        return x if isinstance(x, Tensor) else Tensor(x)
    _dropout.check_input(x)
    return _dropout.Dropout.apply(x, p=p, rng=rng)


# ------------------------------------------------------------- Tensor operators and methods
def _reflected(fn):
    """The reflected operator method (`other ∘ self`, e.g. `2 - x`): fn with its operands swapped."""
    def method(self, other):
        return fn(other, self)
    method.__name__ = method.__qualname__ = f"reflected_{fn.__name__}"
    return method


def _varargs_shape(fn):
    """The method form of reshape/permute/expand: `x.reshape(2, 3)` and `x.reshape((2, 3))` alike."""
    def method(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return fn(self, shape)
    method.__name__ = method.__qualname__ = fn.__name__
    return method


def _reversed_axes(x) -> Tensor:
    """x.T: all axes in reverse order."""
    return permute(x, tuple(range(x.ndim - 1, -1, -1)))


# Tensor's differentiable operators and methods, bound here once (autograd/tensor.py says so):
# `x + y` calls add(x, y), `2 - x` calls sub(2, x), `x.sum(axis=1)` calls sum(x, axis=1).
TENSOR_METHODS = {
    "__add__": add, "__radd__": _reflected(add),
    "__sub__": sub, "__rsub__": _reflected(sub),
    "__mul__": mul, "__rmul__": _reflected(mul),
    "__truediv__": div, "__rtruediv__": _reflected(div),
    "__pow__": pow, "__rpow__": _reflected(pow),
    "__matmul__": matmul, "__rmatmul__": _reflected(matmul),
    "__neg__": neg, "__abs__": abs, "__getitem__": getitem,
    "sum": sum, "mean": mean, "max": max, "var": var,
    "reshape": _varargs_shape(reshape), "permute": _varargs_shape(permute), "expand": _varargs_shape(broadcast_to),
    "transpose": transpose, "flatten": flatten,
    "exp": exp, "log": log, "sqrt": sqrt, "tanh": tanh, "sigmoid": sigmoid, "relu": relu, "abs": abs,
    "astype": cast,
    "T": property(_reversed_axes),
}
for _name, _method in TENSOR_METHODS.items():
    setattr(Tensor, _name, _method)
del _name, _method
