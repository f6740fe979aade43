"""`Tensor`: an `np.ndarray` plus the autograd graph node that produced it.

    x = Tensor(np.ones((2, 3)), requires_grad=True)
    y = (x * x).sum()
    y.backward()          # x.grad == 2 * x.data

Dtype policy: Python numbers and lists become float32; NumPy arrays keep their
dtype (float64 stays float64 end to end, integer labels stay integer).  Scalars
mixed into an operation take the dtype of the Tensor they meet.

This file defines the data, the gradient, `backward` and the comparisons (which give
plain boolean arrays, not Tensors).  The differentiable operators and methods
(`+ - * / ** @ -x abs(x) x[i]`, `sum`, `mean`, `max`, `var`, `reshape`, `permute`,
`transpose`, `flatten`, `expand`, `exp`, `log`, `sqrt`, `tanh`, `sigmoid`, `relu`, `abs`,
`astype`, `.T`) are the functions of `minisnn.functional`, attached to Tensor in one table
at the end of `functional.py` (`TENSOR_METHODS`): `x + y` is `F.add(x, y)`, `x.sum(1)` is
`F.sum(x, 1)`.  `import minisnn` (which runs first whenever any part of the package is
imported) loads `functional`, so every Tensor has them.
"""
from __future__ import annotations

import weakref

import numpy as np

from . import grad_mode

DEFAULT_DTYPE = np.float32


def _as_array(data, dtype=None) -> np.ndarray:
    if isinstance(data, np.ndarray):
        arr = data
    elif isinstance(data, np.generic):
        arr = np.asarray(data)
    else:
        arr = np.asarray(data)
        if dtype is None and arr.dtype.kind in "biuf":
            arr = arr.astype(DEFAULT_DTYPE)
    if dtype is not None and arr.dtype != dtype:
        arr = arr.astype(dtype)
    if arr.dtype.kind not in "biufc":
        raise TypeError(f"Tensor data must be numeric, got dtype {arr.dtype}")
    return arr


class Tensor:
    """An n-d array with optional gradient tracking.

    Attributes: `data` (np.ndarray), `grad` (np.ndarray or None, same shape),
    `requires_grad` (bool), `name` (optional label used in error messages).
    Operators and array methods: see the module docstring (`functional.TENSOR_METHODS`).
    """

    __array_priority__ = 1000  # so `ndarray + Tensor` defers to Tensor.__radd__

    def __init__(self, data, requires_grad: bool = False, dtype=None, name: str | None = None, _copy=True):
        if isinstance(data, Tensor):
            data = data.data
        arr = _as_array(data, dtype) if _copy or not isinstance(data, np.ndarray) else data
        if requires_grad and arr.dtype.kind not in "fc":
            raise TypeError(f"only floating-point tensors can require gradients, got dtype {arr.dtype}")
        self.data: np.ndarray = arr
        self.grad: np.ndarray | None = None
        self.requires_grad = bool(requires_grad)
        self.name = name
        self._node = None
        self._edge = None
        self._retain = False

    # ------------------------------------------------------------------ basics
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    def graph_input(self):
        """What a node records of this tensor as its input: the tensor itself when it is a leaf, else its
        `Edge` (made once, shared by every node that reads this tensor)."""
        if self._node is None:
            return self
        if self._edge is None:
            self._edge = Edge(self)
        return self._edge

    def __len__(self) -> int:
        return len(self.data)

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied)."""
        return self.data

    def item(self) -> float:
        return self.data.item()

    def detach(self) -> "Tensor":
        """A new leaf sharing the same data, cut from the graph."""
        return Tensor(self.data, _copy=False)

    def requires_grad_(self, flag: bool = True) -> "Tensor":
        if flag and self.data.dtype.kind not in "fc":
            raise TypeError(f"only floating-point tensors can require gradients, got dtype {self.data.dtype}")
        self.requires_grad = bool(flag)
        return self

    def retain_grad(self) -> "Tensor":
        """Keep `.grad` on this non-leaf tensor after backward."""
        self._retain = True
        return self

    def zero_grad(self) -> None:
        self.grad = None

    def __repr__(self) -> str:
        flag = ", requires_grad=True" if self.requires_grad else ""
        body = np.array2string(self.data, precision=4, threshold=20, prefix="Tensor(")
        return f"Tensor({body}, dtype={self.data.dtype}{flag})"

    # ---------------------------------------------------------------- backward
    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Backpropagate from this tensor.

        grad: dL/dself, same shape; may be omitted only for a one-element tensor
        (taken as 1).  Gradients accumulate (`+=`) into `.grad` of every leaf that
        requires grad, so call `zero_grad` between steps.  Each node's saved arrays
        are released as soon as its backward has run, as in PyTorch, so a loss kept
        alive (the loop variable of a training loop) no longer keeps a step's
        activations into the next step; retain_graph=True keeps them, for a second
        backward through the same graph.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad (nothing to differentiate)")
        if grad is None:
            if self.data.size != 1:
                raise ValueError(
                    f"backward() on a non-scalar tensor of shape {self.shape} needs an explicit gradient argument"
                )
            grad = np.ones_like(self.data)
        else:
            grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=self.data.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"gradient shape {grad.shape} does not match tensor shape {self.shape}")
        run_backward(self, grad, retain_graph)

    # ---------------------------------------------------------- comparisons
    # comparisons give plain boolean arrays (not differentiable)
    def __gt__(self, other):
        return self.data > _raw(other)

    def __ge__(self, other):
        return self.data >= _raw(other)

    def __lt__(self, other):
        return self.data < _raw(other)

    def __le__(self, other):
        return self.data <= _raw(other)


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


class Edge:
    """A node's record of an input that an operation made: that operation's node, the shape and dtype its
    gradient must have, and a weak reference to the Tensor (to fill `.grad` after `retain_grad`).

    Not the data: after a forward the graph holds only what each Function saved for its backward, so an
    activation no one saved (a BatchNorm output read by a neuron that keeps its own ψ, say) is freed as soon
    as the model's code lets go of it.  A leaf input is recorded as the Tensor itself (its `.grad` is filled).
    """

    __slots__ = ("_node", "shape", "dtype", "_tensor")

    def __init__(self, tensor: Tensor):
        self._node = tensor._node
        self.shape = tensor.shape
        self.dtype = tensor.dtype
        self._tensor = weakref.ref(tensor)

    @property
    def requires_grad(self) -> bool:
        tensor = self._tensor()
        return True if tensor is None else tensor.requires_grad

    def tensor(self) -> Tensor | None:
        """The Tensor this edge stands for, or None once nothing else holds it."""
        return self._tensor()


def _topological_order(root) -> list:
    """Leaves and edges reachable from `root` (a leaf Tensor or an Edge) through recorded nodes, root first
    (reverse post-order)."""
    order: list = []
    visited: set[int] = set()
    stack = [(root, False)]
    while stack:
        t, expanded = stack.pop()
        if expanded:
            order.append(t)
            continue
        if id(t) in visited:
            continue
        visited.add(id(t))
        stack.append((t, True))
        if t._node is not None:
            for p in t._node.inputs:
                if p is not None and p.requires_grad and id(p) not in visited:
                    stack.append((p, False))
    order.reverse()
    return order


def run_backward(root: Tensor, grad: np.ndarray, retain_graph: bool = False) -> None:
    """Reverse-mode sweep: visit tensors so each one's gradient is complete before use; without
    retain_graph each node's ctx is dropped once its backward has run."""
    start = root.graph_input()
    grads: dict[int, np.ndarray] = {id(start): grad}
    with grad_mode.no_grad():
        for t in _topological_order(start):
            g = grads.pop(id(t), None)
            if g is None:
                continue
            if t._node is None:   # a leaf Tensor
                if t.requires_grad:
                    t.grad = g.copy() if t.grad is None else t.grad + g
                continue
            kept = t.tensor()
            if kept is not None and kept._retain:
                kept.grad = g.copy() if kept.grad is None else kept.grad + g
            node = t._node
            if node.ctx is None:
                raise RuntimeError(
                    f"backward through {node.fn.__name__} a second time: its saved arrays were released by the "
                    "first backward; call the first one as backward(retain_graph=True) to backpropagate twice"
                )
            in_grads = node.fn.backward(node.ctx, g)
            if not retain_graph:
                node.ctx = None
            if not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            if len(in_grads) < len(node.inputs):
                raise RuntimeError(
                    f"{node.fn.__name__}.backward returned {len(in_grads)} gradients for {len(node.inputs)} inputs"
                )
            for inp, ig in zip(node.inputs, in_grads):
                if inp is None or ig is None or not inp.requires_grad:
                    continue
                if ig.shape != inp.shape:
                    raise RuntimeError(
                        f"{node.fn.__name__}.backward gave a gradient of shape {ig.shape} for an input of shape {inp.shape}"
                    )
                if ig.dtype != inp.dtype:
                    ig = ig.astype(inp.dtype)
                key = id(inp)
                if key in grads:
                    grads[key] = grads[key] + ig
                else:
                    grads[key] = ig
