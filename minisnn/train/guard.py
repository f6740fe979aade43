"""A training step that can be undone exactly: after a non-finite update, or when Ctrl-C interrupts it.

A step changes the parameters (optimizer.step), the optimiser's state (moments, step counts)
and the BatchNorm running statistics (every training-mode forward).  `StepSnapshot` copies
all three before the step, into buffers it keeps from one step to the next, and `restore()`
puts them back bit for bit:

    snapshot.take()                       # before the forward
    ... forward, backward, optimizer.step() ...
    if not snapshot.result_is_finite():   # an update that overflowed: as if it never happened
        snapshot.restore()

The trainer also restores it when a KeyboardInterrupt (or any error) arrives in the middle
of a step, so the state it saves on Ctrl-C is the state after the last whole step.  The
copies cost one pass over the parameters, the moments and the buffers (a few MB for the
tiny presets, well under 1 % of a step); `interrupts_deferred()` holds Ctrl-C back for the
few lines that must not be cut in two (the restore itself, the end-of-epoch bookkeeping).
"""
from __future__ import annotations

import contextlib
import signal
import threading

import numpy as np


class StepSnapshot:
    """Copies of the parameters, optimiser state and buffers of `model` trained by `optimizer`."""

    def __init__(self, model, optimizer):
        self.model, self.optimizer = model, optimizer
        self.params = [p for g in optimizer.param_groups for p in g["params"]]
        self.taken = False
        self._params: list[np.ndarray] = []
        self._states: list[dict | None] = []
        self._buffers: dict[str, np.ndarray] = {}

    @staticmethod
    def _copy_into(old, value: np.ndarray) -> np.ndarray:
        """`value` copied into `old` when it has the same shape and dtype (no new memory), else a new copy."""
        if isinstance(old, np.ndarray) and old.shape == value.shape and old.dtype == value.dtype:
            np.copyto(old, value)
            return old
        return np.array(value, copy=True)

    def take(self) -> None:
        """Copy the current parameters, optimiser state and buffers."""
        self.taken = False
        grow = len(self._params) != len(self.params)
        if grow:
            self._params, self._states = [None] * len(self.params), [None] * len(self.params)
        for i, p in enumerate(self.params):
            self._params[i] = self._copy_into(self._params[i], p.data)
            state = self.optimizer.state.get(p)
            if not state:
                self._states[i] = None
                continue
            kept = self._states[i] or {}
            self._states[i] = {k: (self._copy_into(kept.get(k), v) if isinstance(v, np.ndarray) else v)
                               for k, v in state.items()}
        for name, buf in self.model.named_buffers():
            self._buffers[name] = self._copy_into(self._buffers.get(name), np.asarray(buf))
        self.taken = True

    def restore(self) -> None:
        """Put back what `take()` copied (the arrays in use are overwritten in place where possible)."""
        if not self.taken:
            return
        for p, saved, state in zip(self.params, self._params, self._states):
            if p.data.shape == saved.shape and p.data.dtype == saved.dtype and p.data.flags.writeable:
                np.copyto(p.data, saved)
            else:
                p.data = saved.copy()
            if state is None:
                self.optimizer.state.pop(p, None)
                continue
            live = self.optimizer.state.setdefault(p, {})
            for k in [k for k in live if k not in state]:
                del live[k]
            for k, v in state.items():
                live[k] = self._copy_into(live.get(k), v) if isinstance(v, np.ndarray) else v
        self.model.load_buffers_snapshot(self._buffers)

    def result_is_finite(self) -> bool:
        """True when every parameter and every floating-point buffer holds only finite values."""
        if not all(np.isfinite(p.data).all() for p in self.params):
            return False
        return all(np.isfinite(b).all() for _, b in self.model.named_buffers()
                   if np.asarray(b).dtype.kind in "fc")


@contextlib.contextmanager
def interrupts_deferred():
    """Within the block Ctrl-C (SIGINT) is held back; it is raised as KeyboardInterrupt at the end.

    Only in the main thread and while Python's default handler is installed; otherwise a no-op.
    """
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    pending = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pending:
        raise KeyboardInterrupt
