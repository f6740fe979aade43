"""Global switch for graph recording: `no_grad()` and `enable_grad()` context managers."""
from __future__ import annotations

import contextlib
import threading

_state = threading.local()


def is_grad_enabled() -> bool:
    """True when Functions record the graph (the default)."""
    return getattr(_state, "enabled", True)


def set_grad_enabled(mode: bool) -> None:
    _state.enabled = bool(mode)


@contextlib.contextmanager
def no_grad():
    """Run the body without recording the graph (inference, optimiser updates)."""
    prev = is_grad_enabled()
    set_grad_enabled(False)
    try:
        yield
    finally:
        set_grad_enabled(prev)


@contextlib.contextmanager
def enable_grad():
    """Re-enable graph recording inside a `no_grad` block."""
    prev = is_grad_enabled()
    set_grad_enabled(True)
    try:
        yield
    finally:
        set_grad_enabled(prev)
