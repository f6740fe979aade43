"""A torch training step that can be undone exactly (the NaN guard of minisnn's trainer, and Ctrl-C).

A step changes the parameters (optimizer.step), the optimiser's state (moments, step counts) and the
buffers (BatchNorm running statistics and counters, in every training-mode forward).  `StepGuard`
copies all three before the step, into tensors it allocates once on their own devices, and `restore()`
puts them back bit for bit:

    guard.take()                              # before the forward pass
    ... forward, backward, clip ...
    if loss or gradient norm not finite:      guard.restore(); skip
    optimizer.step()
    if not guard.result_is_finite():          guard.restore(); skip     (an update that overflowed)

The engine also restores it when an exception (Ctrl-C included) cuts a step short, so a checkpoint
written then holds the state after the last whole step.
"""
from __future__ import annotations

import torch


def _copy_all(targets: list, sources: list) -> None:
    """targets[i] ← sources[i] for every i (fused where torch has `_foreach_copy_`)."""
    if not targets:
        return
    if hasattr(torch, "_foreach_copy_"):
        torch._foreach_copy_(targets, sources)
    else:
        for t, s in zip(targets, sources):
            t.copy_(s)


class StepGuard:
    """Copies of the parameters, optimiser state and buffers of `module` trained by `optimizer`."""

    def __init__(self, module: torch.nn.Module, optimizer: torch.optim.Optimizer):
        self.optimizer = optimizer
        self.params = [p for g in optimizer.param_groups for p in g["params"]]
        self.buffers = list(module.buffers())
        self.float_tensors = self.params + [b for b in self.buffers if b.is_floating_point()]
        self._param_copies = [torch.empty_like(p) for p in self.params]
        self._buffer_copies = [torch.empty_like(b) for b in self.buffers]
        self._state_copies: dict = {}     # (parameter index, state name) -> copy, allocated once
        self._states: dict = {}           # parameter index -> the names and non-tensor values of its state
        self.taken = False

    def _state_copy(self, i: int, name: str, value: torch.Tensor) -> torch.Tensor:
        copy = self._state_copies.get((i, name))
        if copy is None or copy.shape != value.shape or copy.dtype != value.dtype or copy.device != value.device:
            copy = self._state_copies[(i, name)] = torch.empty_like(value)
        return copy

    @torch.no_grad()
    def take(self) -> None:
        """Copy the current parameters, optimiser state and buffers."""
        targets = self._param_copies + self._buffer_copies
        sources = self.params + self.buffers
        self._states = {}
        for i, p in enumerate(self.params):
            state = self.optimizer.state.get(p)
            if not state:
                continue
            self._states[i] = {k: (None if torch.is_tensor(v) else v) for k, v in state.items()}
            for k, v in state.items():
                if torch.is_tensor(v):
                    targets.append(self._state_copy(i, k, v))
                    sources.append(v)
        _copy_all(targets, sources)
        self.taken = True

    @torch.no_grad()
    def restore(self) -> None:
        """Put back what `take()` copied, in place (optimiser state made since then is dropped)."""
        if not self.taken:
            return
        targets = self.params + self.buffers
        sources = self._param_copies + self._buffer_copies
        for i, p in enumerate(self.params):
            if i not in self._states:
                self.optimizer.state.pop(p, None)
                continue
            live = self.optimizer.state[p]
            for k, v in self._states[i].items():
                if v is None:
                    targets.append(live[k])
                    sources.append(self._state_copies[(i, k)])
                else:
                    live[k] = v
        _copy_all(targets, sources)

    @torch.no_grad()
    def result_is_finite(self) -> bool:
        """True when every parameter and floating-point buffer holds only finite values (one host sync)."""
        return bool(torch.stack([torch.isfinite(t).all() for t in self.float_tensors]).all())
