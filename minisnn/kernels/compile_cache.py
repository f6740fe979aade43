"""Is Numba's on-disk cache of the jit kernels warm?  (Used to tell a user why a first run is slow.)

Every kernel in `minisnn.kernels.jit` is compiled with `cache=True`: the first process that
calls it on a machine compiles it (30 s or more for a whole training step on a small CPU) and
writes the machine code beside the source (`__pycache__/*.nbi` index, `*.nbc` code); later
processes load it in milliseconds.  `cold_kernels()` names the kernels whose cache index is
missing or stale (Numba discards an index whose source file changed), so the caller can say
"compiling kernels, first run only" before the pause instead of reporting a misleadingly low
speed afterwards.

Reading an index uses Numba's cache machinery (`FunctionCache._cache_file._load_index`), the
same check Numba itself makes before it loads a cached kernel.
"""
from __future__ import annotations

import importlib
import pkgutil

from numba.core.registry import CPUDispatcher

from . import jit


def jit_kernels() -> dict[str, CPUDispatcher]:
    """Every compiled-on-demand kernel in `minisnn.kernels.jit`, by "module.name"."""
    found = {}
    for info in sorted(pkgutil.iter_modules(jit.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{jit.__name__}.{info.name}")
        for name, obj in vars(module).items():
            if isinstance(obj, CPUDispatcher) and obj.py_func.__module__ == module.__name__:
                found[f"{info.name}.{name}"] = obj
    return found


def _has_cached_code(kernel: CPUDispatcher) -> bool:
    cache = getattr(kernel, "_cache", None)
    cache_file = getattr(cache, "_cache_file", None)
    if cache_file is None:  # pragma: no cover - a kernel without cache=True
        return False
    try:
        return bool(cache_file._load_index())
    except Exception:  # an unreadable index means Numba will compile again
        return False


def _inlined(kernel: CPUDispatcher) -> bool:
    """Helpers declared `inline="always"` are compiled into their callers, never on their own."""
    return kernel.targetoptions.get("inline") == "always"


def cold_kernels() -> list[str]:
    """Names of the jit kernels that have no usable cached machine code yet (empty: all warm)."""
    return [name for name, kernel in jit_kernels().items() if not _inlined(kernel) and not _has_cached_code(kernel)]


def compiled_in_this_process() -> int:
    """How many kernel specialisations this process compiled instead of loading from the cache."""
    return sum(sum(kernel.stats.cache_misses.values()) for kernel in jit_kernels().values())


__all__ = ["jit_kernels", "cold_kernels", "compiled_in_this_process"]
