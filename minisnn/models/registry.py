"""Model registry: build any model by name.

    from minisnn import models
    models.names()                                   # ['msvit-cifar10', 'msvit-tiny', ...]
    model = models.create("msvit-tiny", num_classes=100, T=1)
    models.describe("msvit-tiny")                    # one line of text

A model module registers its own factories when imported:

    from .registry import register
    register("my-model", MyModel, description="...")          # any callable(**overrides) -> Module

A name may also stand for a registered network trained with a recipe of its own (the speedrun
presets): `register_recipe("speedrun-10", network="dysvit-tiny", recipe={...})`.  It builds the
same network as `network`; `training_recipe(name)` gives the settings `minisnn train` starts
from (on top of the family's defaults), and `network_of(name)` the network's own name.

`create`, `names` and `describe` first import every module in MODEL_MODULES, so all
registrations are present however the package was imported.  A module that fails to import
(e.g. a missing optional dependency) does not take the others down: its error is kept in
`import_errors()` and quoted when a name cannot be found.

`create` is where constructor overrides (`minisnn train --set KEY=VALUE`) are checked, once,
against the factory's signature: an unknown key, or a value whose type does not fit the
argument (its annotation, else its default: an int needs an int, not a bool; a float takes an
int or a float; a bool needs a bool; a str a str; a None default takes anything), raises a
one-line `ModelArgumentError` naming the key.  The model is then built under a budget of
`PARAMETER_BUDGET_BYTES` of initialised parameters (`nn.init.parameter_budget`), so absurd
sizes (`--set dim=1000000000`) fail before their weights are drawn, also as ModelArgumentError.
"""
from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
from typing import Callable

import numpy as np

from ..nn import init

# Modules that register models when imported (a missing optional module is skipped).
MODEL_MODULES = ("presets", "dysvit", "speedrun")

# The most parameter bytes `create` initialises: 1 GiB, 268 M float32 values (the largest preset needs 40 MB).
PARAMETER_BUDGET_BYTES = 2**30


class ModelArgumentError(ValueError, TypeError):
    """A constructor override the model does not take, of the wrong type, or too large to build.

    A ValueError for the command line's one-line errors; a TypeError too, as Python's own error
    for an unexpected keyword argument is.
    """


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    name: str
    factory: Callable
    description: str
    network: str = ""                     # the registered network this name builds ("" : its own)
    recipe: dict = dataclasses.field(default_factory=dict)   # TrainConfig fields `minisnn train` starts from


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


def register_recipe(name: str, network: str, recipe: dict, description: str = "") -> None:
    """Register `name`: the network of the registered model `network`, trained with `recipe`.

    `recipe` holds TrainConfig fields (e.g. lr, label_smoothing, time_budget); `minisnn train --model
    name` starts from them instead of the family's defaults, and options given on the command line
    still win.  A checkpoint of `name` holds the same weights as one of `network`.
    """
    base = _entry(network)
    if base.network:
        raise ValueError(f"{network!r} is itself a recipe for {base.network!r}; name the network")
    register(name, base.factory, description)
    _REGISTRY[name] = dataclasses.replace(_REGISTRY[name], network=network, recipe=dict(recipe))


def network_of(name: str) -> str:
    """The registered network that model `name` builds: the network of a recipe preset, else `name` itself
    (also for a name nobody registered, so callers need not ask first)."""
    _load_all()
    entry = _REGISTRY.get(name)
    return entry.network if entry is not None and entry.network else name


def training_recipe(name: str) -> dict:
    """The training settings registered with model `name` (empty for a plain network or an unknown name)."""
    _load_all()
    entry = _REGISTRY.get(name)
    return dict(entry.recipe) if entry is not None else {}


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


_TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _expected_type(param: inspect.Parameter) -> type | None:
    """int, float, bool or str from the annotation (a plain one) or else the default; None: anything."""
    annotation = param.annotation
    if isinstance(annotation, str):                 # `from __future__ import annotations`
        annotation = {"int": int, "float": float, "bool": bool, "str": str}.get(annotation)
    if annotation in _TYPE_NAMES:
        return annotation
    default = param.default
    return type(default) if type(default) in _TYPE_NAMES else None


def _fits(value, expected: type) -> bool:
    is_bool = isinstance(value, (bool, np.bool_))
    if expected is bool:
        return is_bool
    if expected is int:
        return isinstance(value, (int, np.integer)) and not is_bool
    if expected is float:
        return isinstance(value, (int, float, np.integer, np.floating)) and not is_bool
    return isinstance(value, str)


def check_overrides(name: str, factory: Callable, overrides: dict) -> None:
    """Raise ModelArgumentError for an override `factory` does not take or whose type does not fit."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [k for k, p in params.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL]
    for key, value in overrides.items():
        if key not in params:
            close = difflib.get_close_matches(key, accepted, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ModelArgumentError(f"model {name!r} has no argument {key!r}{hint}; it accepts: "
                                     f"{', '.join(accepted)}")
        expected = _expected_type(params[key])
        if expected is not None and not _fits(value, expected):
            default = params[key].default
            like = f" like its default {default!r}" if default is not inspect.Parameter.empty else ""
            raise ModelArgumentError(f"model {name!r}: {key} must be {_TYPE_NAMES[expected]}{like}, "
                                     f"got {value!r} ({type(value).__name__})")


def create(name: str, **overrides):
    """Build model `name`; keyword overrides replace its preset arguments (e.g. num_classes=100, T=2).

    Overrides are checked first (see the module docstring); the model is built under a budget of
    PARAMETER_BUDGET_BYTES of initialised parameters.  Any of these problems, and a constructor's
    own refusal of a value (ValueError), raises a one-line ModelArgumentError.
    """
    entry = _entry(name)
    check_overrides(name, entry.factory, overrides)
    try:
        with init.parameter_budget(PARAMETER_BUDGET_BYTES):
            return entry.factory(**overrides)
    except MemoryError as exc:                      # the budget, or NumPy refusing an absurd allocation
        given = ", ".join(f"{k}={v!r}" for k, v in overrides.items()) or "its preset values"
        raise ModelArgumentError(f"model {name!r} with {given} is too large to build "
                                 f"({' '.join(str(exc).split())}); choose smaller values") from None
    except ModelArgumentError:
        raise
    except ValueError as exc:                       # the constructor refused a value
        raise ModelArgumentError(f"model {name!r}: {' '.join(str(exc).split())}") from None
