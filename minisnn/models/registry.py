"""Model registry: build any model by name.

    from minisnn import models
    models.names()                                   # ['msvit-cifar10', 'msvit-tiny', ...]
    model = models.create("msvit-tiny", num_classes=100, T=1)
    models.describe("msvit-tiny")                    # one line of text

A model module registers its own factories when imported:

    from .registry import register
    register("my-model", MyModel, description="...")          # any callable(**overrides) -> Module

`create`, `names` and `describe` first import every module in MODEL_MODULES, so all
registrations are present however the package was imported.  A module that fails to import
(e.g. a missing optional dependency) does not take the others down: its error is kept in
`import_errors()` and quoted when a name cannot be found.
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
from typing import Callable

# Modules that register models when imported (a missing optional module is skipped).
MODEL_MODULES = ("presets", "dysvit")


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    name: str
    factory: Callable
    description: str


_REGISTRY: dict[str, ModelEntry] = {}
_IMPORT_ERRORS: dict[str, str] = {}
_loaded = False


def register(name: str, factory: Callable, description: str = "", *, replace: bool = False) -> Callable:
    """Register `factory(**overrides) -> Module` under `name`; returns the factory.

    Registering a taken name raises ValueError unless `replace=True`.
    """
    if not isinstance(name, str) or not name or name != name.strip():
        raise ValueError(f"a model name must be a non-empty string without surrounding spaces, got {name!r}")
    if not callable(factory):
        raise TypeError(f"the factory for {name!r} must be callable, got {type(factory).__name__}")
    old = _REGISTRY.get(name)
    if old is not None and not replace and old.factory is not factory:
        raise ValueError(f"a model named {name!r} is already registered ({old.description}); pass replace=True")
    _REGISTRY[name] = ModelEntry(name, factory, description)
    return factory


def _import_model_module(mod: str):
    return importlib.import_module(f"{__package__}.{mod}")


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    for mod in MODEL_MODULES:
        try:
            _import_model_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{mod}":   # the module exists but something it imports is missing
                _IMPORT_ERRORS[mod] = f"{type(exc).__name__}: {exc}"
        except ImportError as exc:
            _IMPORT_ERRORS[mod] = f"{type(exc).__name__}: {exc}"
    _loaded = True


def import_errors() -> dict[str, str]:
    """Model modules that failed to import, with their error (empty when all loaded)."""
    _load_all()
    return dict(_IMPORT_ERRORS)


def names() -> list[str]:
    """All registered model names, sorted."""
    _load_all()
    return sorted(_REGISTRY)


def _entry(name: str) -> ModelEntry:
    _load_all()
    if name not in _REGISTRY:
        failed = "".join(f"; module {m!r} could not be imported ({e})" for m, e in _IMPORT_ERRORS.items())
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(sorted(_REGISTRY))}{failed}")
    return _REGISTRY[name]


def describe(name: str) -> str:
    """The one-line description given at registration."""
    return _entry(name).description


def create(name: str, **overrides):
    """Build model `name`; keyword overrides replace its preset arguments (e.g. num_classes=100, T=2)."""
    entry = _entry(name)
    try:
        params = inspect.signature(entry.factory).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        params = {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    unknown = [k for k in overrides if params and not takes_any and k not in params]
    if unknown:
        allowed = ", ".join(k for k, p in params.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL)
        raise TypeError(f"model {name!r} has no argument(s) {', '.join(unknown)}; it accepts: {allowed}")
    return entry.factory(**overrides)
