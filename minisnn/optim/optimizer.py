"""`Optimizer`: the bookkeeping shared by SGD, Adam and AdamW.

An optimiser holds *parameter groups*: dicts with a `params` list and the
hyper-parameters for those parameters (`lr`, `weight_decay`, ...).  Keys a
group does not set are filled from `defaults`:

    opt = AdamW([{"params": decay, "weight_decay": 0.05},
                 {"params": no_decay, "weight_decay": 0.0}], lr=1e-3)

`step()` walks every parameter that has a gradient and calls the subclass's
`_update(data, grad, state, group)` on raw arrays; `state` is that parameter's
own dict of buffers (momentum, moments, step count).  `state_dict()` /
`load_state_dict()` save and restore all of it (copied arrays, exact floats),
so a resumed run continues bit for bit.  The layout follows PyTorch:

    {"state": {index: {"step": 3, "exp_avg": array, ...}},
     "param_groups": [{"lr": ..., ..., "params": [index, ...]}]}

where `index` numbers the parameters across all groups in order.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor


class Optimizer:
    """Base class: param groups, zero_grad, step, state_dict / load_state_dict."""

    def __init__(self, params: Iterable, defaults: dict):
        if isinstance(params, Tensor):
            raise TypeError("params must be an iterable of Tensors or of param-group dicts, not a single Tensor")
        if isinstance(params, dict):
            raise TypeError("params must be an iterable of Tensors or of param-group dicts, not a single dict")
        self.defaults = dict(defaults)
        self.param_groups: list[dict] = []
        self.state: dict[Tensor, dict] = {}  # Tensors hash by identity
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ------------------------------------------------------------- groups
    def add_param_group(self, group: dict) -> None:
        """Add a group; missing hyper-parameters come from `defaults`."""
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError("a param group must be a dict with a 'params' entry")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only update Tensors, got {type(p).__name__}")
            if p.dtype.kind != "f":
                raise TypeError(f"optimizer can only update floating-point Tensors, got dtype {p.dtype}")
            if not p.is_leaf:
                raise ValueError("optimizer can only update leaf Tensors (parameters), got a computed Tensor")
            if id(p) in seen:
                raise ValueError("a parameter appears more than once in the optimizer's param groups")
            seen.add(id(p))
        new = dict(self.defaults)
        new.update({k: v for k, v in group.items() if k != "params"})
        new["params"] = params
        self._check_group(new)
        self.param_groups.append(new)

    def _check_group(self, group: dict) -> None:
        """Validate a group's hyper-parameters (subclasses extend this)."""
        lr = group.get("lr")
        if lr is None or not lr >= 0:
            raise ValueError(f"learning rate must be a number >= 0, got {lr}")
        if not group.get("weight_decay", 0.0) >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {group['weight_decay']}")

    # --------------------------------------------------------------- step
    def zero_grad(self) -> None:
        """Drop every parameter's gradient (set to None)."""
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient, in place; the rest are skipped."""
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    grad = np.asarray(p.grad)
                    if grad.shape != p.shape:
                        raise ValueError(f"gradient of shape {grad.shape} for a parameter of shape {p.shape}")
                    if not p.data.flags.writeable:  # e.g. a read-only array from a checkpoint
                        p.data = p.data.copy()
                    self._update(p.data, grad.astype(p.dtype, copy=False), self.state.setdefault(p, {}), group)

    def _update(self, data: np.ndarray, grad: np.ndarray, state: dict, group: dict) -> None:
        """Update `data` in place from `grad`; keep buffers in `state`."""
        raise NotImplementedError

    # --------------------------------------------------------- state dict
    def _all_params(self) -> list[Tensor]:
        return [p for g in self.param_groups for p in g["params"]]

    def state_dict(self) -> dict:
        """Moments, step counts and hyper-parameters: copies, safe to keep while training goes on."""
        index = {id(p): i for i, p in enumerate(self._all_params())}
        state = {}
        for p, s in self.state.items():
            if id(p) in index and s:
                state[index[id(p)]] = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
        groups = []
        for g in self.param_groups:
            saved = {k: v for k, v in g.items() if k != "params"}
            saved["params"] = [index[id(p)] for p in g["params"]]
            groups.append(saved)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what `state_dict()` saved; the parameters must be laid out in the same groups."""
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"optimizer state has {len(saved_groups)} param groups, this optimizer has {len(self.param_groups)}"
            )
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"param group {i}: optimizer state has {len(saved['params'])} parameters, "
                    f"this optimizer has {len(group['params'])}"
                )
        params = self._all_params()
        new_state: dict[Tensor, dict] = {}
        for key, s in state_dict["state"].items():
            i = int(key)
            if not 0 <= i < len(params):
                raise ValueError(f"optimizer state refers to parameter {i}, but there are only {len(params)}")
            p = params[i]
            restored = {}
            for k, v in s.items():
                if isinstance(v, np.ndarray):
                    if v.shape != p.shape:
                        raise ValueError(f"optimizer state {k!r} of parameter {i} has shape {v.shape}, "
                                         f"the parameter has shape {p.shape}")
                    v = np.array(v, dtype=p.dtype)  # a private, writable copy
                elif isinstance(v, np.generic):
                    v = v.item()
                restored[k] = v
            new_state[p] = restored
        for saved, group in zip(saved_groups, self.param_groups):
            for k, v in saved.items():
                if k != "params":
                    group[k] = tuple(v) if isinstance(v, list) else v
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            hyper = ", ".join(f"{k}={v}" for k, v in g.items() if k != "params")
            lines.append(f"  group {i}: {len(g['params'])} params, {hyper}")
        return "\n".join(lines + [")"])
