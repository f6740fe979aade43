"""`Function`: one differentiable operation as a paired forward/backward on raw arrays.

A Function never sees a `Tensor` inside `forward` or `backward`; it works on
`numpy.ndarray`s only.  `Function.apply` does the bookkeeping:

    out = F.apply(a, b, axis=1)        # a, b: Tensors or arrays; axis: plain option

1. unwraps Tensor arguments to arrays (other positional arguments pass through),
2. calls `F.forward(ctx, *arrays, **options)` and wraps the result in a Tensor,
3. when grad mode is on and some input requires a gradient, records the node
   `(F, ctx, inputs)` on the output so `Tensor.backward` can call
   `F.backward(ctx, grad_out)` later.  An input made by another operation is
   recorded as its `Edge` (that operation's node, shape and dtype, not its data),
   so the graph keeps alive only what the Functions saved in their ctx.

`backward` returns one gradient per positional input of `forward` (a tuple, or a
single array when there is one input); `None` means "no gradient for this input".
Gradients must already have the input's shape (use `unbroadcast`).
"""
from __future__ import annotations

import numpy as np

from . import grad_mode
from .tensor import Tensor


class Context:
    """Scratch space shared by one forward call and its backward call.

    `needs_input_grad[i]` tells backward whether input i wants a gradient, so
    expensive gradients can be skipped.
    """

    __slots__ = ("saved_tensors", "needs_input_grad", "__dict__")

    def __init__(self, needs_input_grad: tuple[bool, ...]):
        self.saved_tensors: tuple = ()
        self.needs_input_grad = needs_input_grad

    def save_for_backward(self, *arrays) -> None:
        self.saved_tensors = arrays


class Node:
    """A recorded application of a Function: what backward needs to revisit it."""

    __slots__ = ("fn", "ctx", "inputs")

    def __init__(self, fn, ctx, inputs):
        self.fn = fn
        self.ctx = ctx
        self.inputs = inputs  # one per positional arg: a leaf Tensor, an `Edge` (an operation's output) or None


class Function:
    """Base class: subclasses define static `forward(ctx, ...)` and `backward(ctx, grad)`."""

    @staticmethod
    def forward(ctx: Context, *args, **kwargs) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs):
        raw = []
        inputs = []
        for a in args:
            if isinstance(a, Tensor):
                raw.append(a.data)
                inputs.append(a.graph_input())
            else:
                raw.append(a)
                inputs.append(None)
        needs = tuple(t is not None and t.requires_grad for t in inputs)
        track = grad_mode.is_grad_enabled() and any(needs)
        ctx = Context(needs)
        out = cls.forward(ctx, *raw, **kwargs)
        result = Tensor(out, _copy=False)
        if track:
            result.requires_grad = True
            result._node = Node(cls, ctx, tuple(inputs))
        return result
