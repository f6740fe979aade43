"""Compute kernels: the only place with `@numba.njit` code.  Kernels know nothing of autograd.

Every kernel exists twice, with the same name and signature:

* `minisnn.kernels.reference.<module>.<name>`: a readable NumPy version, the specification;
* `minisnn.kernels.jit.<module>.<name>`: a Numba version (`cache=True`, no fastmath in
  threshold or surrogate code), which must agree with the reference.

The rest of the library calls kernels through this package (`kernels.lif_forward(...)`),
so one switch picks the implementation for everything:

    MINISNN_KERNELS=reference python ...   # run the whole library on the NumPy references
    minisnn.kernels.set_backend("reference")  # the same at run time ("jit" to go back)

Each backend package re-exports the names listed in its modules' `__all__`.
"""
from __future__ import annotations

import importlib
import os
import pkgutil

_BACKENDS = ("jit", "reference")
_exports: dict[str, dict[str, object]] = {}
_backend = ""


def _collect(backend: str) -> dict[str, object]:
    if backend not in _exports:
        pkg = importlib.import_module(f"{__name__}.{backend}")
        names: dict[str, object] = {}
        for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
            mod = importlib.import_module(f"{pkg.__name__}.{info.name}")
            for name in getattr(mod, "__all__", ()):
                names[name] = getattr(mod, name)
        _exports[backend] = names
    return _exports[backend]


def set_backend(name: str) -> None:
    """Select `"jit"` (Numba, the default) or `"reference"` (NumPy) for every kernel."""
    global _backend
    if name not in _BACKENDS:
        raise ValueError(f"unknown kernel backend {name!r}; choose one of {', '.join(_BACKENDS)}")
    reference = _collect("reference")
    chosen = _collect(name)
    missing = sorted(set(reference) - set(chosen))
    if missing:
        raise RuntimeError(f"kernel backend {name!r} lacks {', '.join(missing)}")
    globals().update(chosen)
    _backend = name


def backend() -> str:
    """The active backend name."""
    return _backend


def __getattr__(name: str):
    raise AttributeError(f"minisnn.kernels has no kernel {name!r} (backend {_backend!r})")


set_backend(os.environ.get("MINISNN_KERNELS", "jit").strip().lower() or "jit")
