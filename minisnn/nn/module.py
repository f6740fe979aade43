"""`Module` and `Parameter`: a tree of layers with PyTorch-compatible state_dict keys.

Attributes are registered by type on assignment:

* a `Parameter` → `named_parameters()` and the state_dict;
* a `Module` → a child; its keys are prefixed with the attribute name and a dot;
* `register_buffer(name, array)` → a non-trainable array in the state_dict
  (BatchNorm's `running_mean`, `running_var`, `num_batches_tracked`).

So `self.attn = SSA(...)` holding `self.q_linear = Linear(...)` yields the key
`attn.q_linear.weight`, exactly as PyTorch names it.
"""
from __future__ import annotations

import fnmatch
from collections import OrderedDict
from typing import Iterator

import numpy as np

from ..autograd.tensor import Tensor


class Parameter(Tensor):
    """A trainable leaf Tensor (requires_grad=True by default)."""

    def __init__(self, data, requires_grad: bool = True, dtype=None):
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"


class StateDictError(KeyError):
    """load_state_dict found missing, unexpected or mis-shaped keys."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0] if self.args else ""


class Module:
    """Base class of every layer and model.  Subclasses implement `forward`."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------ registration
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() before assigning {name!r}")
        if isinstance(value, Parameter) or (value is None and name in self._parameters):
            target = self._parameters
        elif isinstance(value, Module):
            target = self._modules
        elif name in self.__dict__.get("_buffer_names", ()):
            target = self._buffers
        elif name in self._parameters and isinstance(value, Tensor):
            raise TypeError(
                f"cannot assign a plain Tensor to parameter {name!r} of {type(self).__name__}; "
                "wrap it in Parameter(...) or assign None"
            )
        else:
            target = None
        for store in (self._parameters, self._buffers, self._modules):
            if store is not target:
                store.pop(name, None)
        if target is not None:
            target[name] = value  # re-assigning keeps the key's place in the state_dict order
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        for store in (self._parameters, self._buffers, self._modules):
            store.pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name: str, value: np.ndarray | None) -> None:
        """Store a non-trainable array that belongs in the state_dict."""
        if name in self._parameters or name in self._modules:
            raise KeyError(
                f"cannot register buffer {name!r}: {type(self).__name__} already has a parameter or module of that name"
            )
        names = self.__dict__.setdefault("_buffer_names", set())
        names.add(name)
        self._buffers[name] = value
        object.__setattr__(self, name, value)

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    # --------------------------------------------------------------- traversal
    def children(self) -> Iterator["Module"]:
        yield from self._modules.values()

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        yield from self._modules.items()

    def named_modules(self, prefix: str = "", remove_duplicate: bool = True) -> Iterator[tuple[str, "Module"]]:
        """Every module in the tree (self first), with its dotted path.

        A module reachable along several paths is yielded once (its first path) unless
        remove_duplicate=False.
        """
        seen: set[int] = set()

        def visit(path: str, mod: "Module"):
            if remove_duplicate:
                if id(mod) in seen:
                    return
                seen.add(id(mod))
            yield path, mod
            for name, child in mod._modules.items():
                if child is not None:
                    yield from visit(f"{path}.{name}" if path else name, child)

        yield from visit(prefix, self)

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        seen: set[int] = set()
        for path, mod in self.named_modules(prefix):
            for name, p in mod._parameters.items():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{path}.{name}" if path else name), p

    def parameters(self) -> Iterator[Parameter]:
        for _, p in self.named_parameters():
            yield p

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for path, mod in self.named_modules(prefix):
            for name, b in mod._buffers.items():
                if b is not None:
                    yield (f"{path}.{name}" if path else name), b

    def buffers_snapshot(self) -> dict[str, np.ndarray]:
        """A copy of every buffer (e.g. BatchNorm running statistics), keyed by path; see `load_buffers_snapshot`."""
        return {k: np.array(v, copy=True) for k, v in self.named_buffers()}

    def load_buffers_snapshot(self, saved: dict) -> None:
        """Put back (copies of) the buffers saved by `buffers_snapshot`; buffers not in `saved` stay as they are."""
        for path, mod in self.named_modules():
            pre = f"{path}." if path else ""
            for name in list(mod._buffers):
                if pre + name in saved:
                    mod.register_buffer(name, saved[pre + name].copy())

    def num_parameters(self) -> int:
        """Number of trainable scalars."""
        return int(sum(p.size for p in self.parameters() if p.requires_grad))

    # ------------------------------------------------------------------- modes
    def train(self, mode: bool = True) -> "Module":
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def apply(self, fn) -> "Module":
        """Call fn(module) on every module, children first (as torch.nn.Module.apply)."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def to_dtype(self, dtype) -> "Module":
        """Cast every floating parameter and buffer (float32 ↔ float64)."""
        dtype = np.dtype(dtype)
        for m in self.modules():
            for p in m._parameters.values():
                if p is not None and p.data.dtype.kind == "f":
                    p.data = p.data.astype(dtype)
                    p.grad = None
            for name, b in list(m._buffers.items()):
                if b is not None and np.asarray(b).dtype.kind == "f":
                    m.register_buffer(name, np.asarray(b).astype(dtype))
        return self

    # -------------------------------------------------------------- state_dict
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Parameters and buffers as arrays, in registration order, keyed like PyTorch.

        Within each module its parameters come before its buffers, then its children.
        """
        out: OrderedDict[str, np.ndarray] = OrderedDict()
        self._collect_state(out, "")
        return out

    def _collect_state(self, out, prefix):
        for name, p in self._parameters.items():
            if p is not None:
                out[prefix + name] = p.data
        for name, b in self._buffers.items():
            if b is not None:
                out[prefix + name] = np.asarray(b)
        for name, child in self._modules.items():
            if child is not None:
                child._collect_state(out, f"{prefix}{name}.")

    def ignored_state_keys(self) -> tuple[str, ...]:
        """Glob patterns of upstream keys this model accepts and drops (override in models)."""
        return ()

    def load_state_dict(self, state: dict, strict: bool = True) -> dict:
        """Copy arrays into parameters and buffers (cast to each target's dtype).

        Raises StateDictError listing every missing, unexpected and mis-shaped key
        (unexpected keys matching `ignored_state_keys()` are accepted and reported).
        Returns {"missing": [...], "unexpected": [...], "ignored": [...]}.
        """
        own = self.state_dict()
        state = {k: (v.data if isinstance(v, Tensor) else v) for k, v in state.items()}
        targets = {}
        for path, mod in self.named_modules(remove_duplicate=False):
            pre = f"{path}." if path else ""
            for name in mod._parameters:
                targets[pre + name] = (mod, name, "param")
            for name in mod._buffers:
                targets[pre + name] = (mod, name, "buffer")
        patterns = self.ignored_state_keys()
        missing = [k for k in own if k not in state]
        unexpected, ignored, mismatched = [], [], []
        for k, v in state.items():
            if k not in own:
                (ignored if any(fnmatch.fnmatchcase(k, p) for p in patterns) else unexpected).append(k)
                continue
            shape = tuple(np.shape(v))
            if shape != own[k].shape:
                mismatched.append(f"{k}: checkpoint {shape} vs model {own[k].shape}")
        problems = []
        if strict and missing:
            problems.append(f"missing keys ({len(missing)}): {', '.join(missing)}")
        if strict and unexpected:
            problems.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected)}")
        if mismatched:
            problems.append(f"shape mismatches ({len(mismatched)}): {'; '.join(mismatched)}")
        if problems:
            raise StateDictError(f"load_state_dict into {type(self).__name__} failed: " + " | ".join(problems))
        for k, v in state.items():
            if k not in own:
                continue
            mod, name, kind = targets[k]
            arr = np.asarray(v)
            if kind == "param":
                p = mod._parameters[name]
                p.data = arr.astype(p.data.dtype, copy=True)
                p.grad = None
            else:
                old = np.asarray(mod._buffers[name])
                mod.register_buffer(name, arr.astype(old.dtype, copy=True).reshape(old.shape))
        return {"missing": missing, "unexpected": unexpected, "ignored": ignored}

    # ------------------------------------------------------------------ display
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in self._modules.items():
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        if len(lines) == 1:
            return lines[0] + ")"
        return "\n".join(lines) + "\n)"
