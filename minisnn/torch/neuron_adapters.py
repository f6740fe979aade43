"""Run any PyTorch spiking neuron as "x_seq [T, ...] in, spikes [T, ...] out": the adapters of `verify_neuron`.

    runner = adapt(module)                 # detects how the module is driven and how it is reset
    s_seq = runner.run(x_seq)              # torch tensor [T, B, ...] -> spikes [T, B, ...]
    runner.reset()                         # the module's own reset (None found: runner.reset_name is None)
    module = load_factory("spikingjelly.activation_based.neuron:LIFNode", "step_mode=m,tau=2.0")

How a module is driven (`runner.stepwise`):

* a sequence module maps the whole x_seq [T, ...] to spikes in one call: SpikingJelly's multi-step
  neurons (`clock_driven.neuron.MultiStepLIFNode`, `activation_based` neurons with step_mode="m") and
  any user module written that way;
* a step-wise module is called once per time step on x_seq[t] and the outputs are stacked: snnTorch's
  neurons (`Leaky`, `Synaptic`, ...: they return (spk, mem) or (spk, syn, mem); the first element is the
  spike), SpikingJelly's single-step neurons (step_mode="s", `clock_driven` neurons without "MultiStep").
  `adapt(module, stepwise=True)` forces it for a user module.

How a module is reset (`runner.reset_name`), first match wins: a `reset=` callable given by the caller;
snnTorch's `reset_mem()` (then the older `init_leaky()` / `init_synaptic()`); SpikingJelly's `reset()` on
every submodule that has one (what `functional.reset_net` does); minisnn's `reset_state()`.  Modules with
no state have none, and need none.
"""
from __future__ import annotations

import copy
import importlib
import json

import torch

_SNNTORCH_RESETS = ("reset_mem", "init_leaky", "init_synaptic")


class NeuronModuleError(RuntimeError):
    """The module under test raised, or returned something that is not a spike tensor."""


class Runner:
    """A module driven as a sequence module; see the module docstring.  `reset` is None, the name of one of
    the module's methods, or a callable that takes the module."""

    def __init__(self, module, stepwise: bool, reset=None):
        self.module = module
        self.stepwise = stepwise
        self._reset_spec = reset
        self.reset_name = _reset_of(module, reset)[1]

    def fresh(self) -> Runner:
        """The same, on a deep copy of the module as it is now (its state included)."""
        try:
            module = copy.deepcopy(self.module)
        except Exception as exc:
            raise NeuronModuleError(f"the module cannot be copied with copy.deepcopy ({type(exc).__name__}: "
                                    f"{exc}); the checks run each input on a fresh copy") from exc
        return Runner(module, self.stepwise, self._reset_spec)

    def run(self, x_seq: torch.Tensor) -> torch.Tensor:
        """Spikes [T, ...] of x_seq [T, ...]; NeuronModuleError if the module raises or returns a wrong shape."""
        try:
            if self.stepwise:
                s_seq = torch.stack([_spikes(self.module(x_seq[t])) for t in range(x_seq.shape[0])])
            else:
                s_seq = _spikes(self.module(x_seq))
        except NeuronModuleError:
            raise
        except Exception as exc:
            raise NeuronModuleError(f"the module raised {type(exc).__name__}: {' '.join(str(exc).split())}") \
                from exc
        if tuple(s_seq.shape) != tuple(x_seq.shape):
            how = "per step, stacked" if self.stepwise else "for the whole sequence"
            raise NeuronModuleError(f"the module returned spikes of shape {tuple(s_seq.shape)} {how} for input "
                                    f"{tuple(x_seq.shape)}; it must map [T, ...] to spikes of the same shape "
                                    "(a step-wise module: pass stepwise=True / --stepwise)")
        return s_seq

    def reset(self) -> None:
        """The module's own reset (nothing when it has none)."""
        fn = _reset_of(self.module, self._reset_spec)[0]
        if fn is not None:
            try:
                fn()
            except Exception as exc:
                raise NeuronModuleError(f"the module's reset {self.reset_name} raised {type(exc).__name__}: "
                                        f"{exc}") from exc

    def describe(self) -> str:
        drive = "step-wise (called on each x_seq[t], outputs stacked)" if self.stepwise else "one call on x_seq"
        return f"{type(self.module).__name__}, driven {drive}; reset: {self.reset_name or 'none found'}"


def _spikes(out):
    """The spike tensor of a module's output: the output itself, or the first element of a tuple."""
    if isinstance(out, (tuple, list)) and out:
        out = out[0]
    if not isinstance(out, torch.Tensor):
        raise NeuronModuleError(f"the module returned {type(out).__name__}, expected a spike tensor "
                                "(or a tuple whose first element is one)")
    return out


def _library(module) -> str:
    return type(module).__module__.split(".")[0]


def is_stepwise(module) -> bool:
    """Whether `module` is a known step-wise neuron (snnTorch, SpikingJelly single-step)."""
    if _library(module) == "snntorch":
        return True
    if _library(module) == "spikingjelly":
        mode = getattr(module, "step_mode", None)
        if mode is not None:
            return mode == "s"
        return ".clock_driven." in type(module).__module__ + "." and not type(module).__name__.startswith("MultiStep")
    return False


def find_reset(module):
    """(callable, name) of the module's own reset, or (None, None); see the module docstring."""
    if _library(module) == "snntorch":
        for name in _SNNTORCH_RESETS:
            if callable(getattr(module, name, None)):
                return getattr(module, name), f"{name}()"
    stateful = [m for m in module.modules() if callable(getattr(m, "reset", None))] \
        if isinstance(module, torch.nn.Module) else []
    if stateful:
        def reset_all():
            for m in stateful:
                m.reset()
        return reset_all, "reset() of each submodule (as SpikingJelly's reset_net)"
    if callable(getattr(module, "reset_state", None)):
        return module.reset_state, "reset_state()"
    return None, None


def _reset_of(module, spec):
    """(callable, name) of the reset that `spec` names: None detects it, a method name, or a callable(module)."""
    if spec is None:
        return find_reset(module)
    if isinstance(spec, str):
        method = getattr(module, spec, None)
        if not callable(method):
            raise ValueError(f"the module has no method {spec!r} to reset it; leave the reset out to detect it")
        return method, f"{spec}()"
    if not callable(spec):
        raise TypeError(f"reset must be a method name or a callable that takes the module, got {type(spec).__name__}")
    return (lambda: spec(module)), getattr(spec, "__name__", "the given reset") + "(module)"


def adapt(module, stepwise: bool | None = None, reset=None) -> Runner:
    """A Runner for `module`.  stepwise: None detects it; reset: None detects it, the name of one of the
    module's methods, or a callable that takes the module."""
    if not callable(module):
        raise TypeError(f"expected a torch module mapping [T, ...] to spikes, got {type(module).__name__}")
    return Runner(module, is_stepwise(module) if stepwise is None else bool(stepwise), reset)


def parse_kwargs(text: str | None) -> dict:
    """'step_mode=m,tau=2.0' -> {'step_mode': 'm', 'tau': 2.0} (values read as JSON when they parse, else text)."""
    out = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        if "=" not in item:
            raise ValueError(f"--kwargs: expected KEY=VALUE pairs separated by commas, got {item!r}")
        key, value = (s.strip() for s in item.split("=", 1))
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = {"True": True, "False": False, "None": None}.get(value, value)
    return out


def load_factory(spec: str, kwargs: dict | None = None):
    """The module built by the importable factory 'package.module:callable' called with `kwargs`."""
    if spec.count(":") != 1:
        raise ValueError(f"expected a factory as 'package.module:callable', got {spec!r}")
    mod_name, attr = spec.split(":")
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as exc:
        raise ImportError(f"cannot import {mod_name!r} for {spec}: {exc}") from None
    factory = getattr(mod, attr, None)
    if not callable(factory):
        raise ValueError(f"{mod_name} has no callable {attr!r}")
    try:
        module = factory(**(kwargs or {}))
    except Exception as exc:
        raise NeuronModuleError(f"{spec}(**{kwargs or {}}) raised {type(exc).__name__}: {exc}") from exc
    if not callable(module):
        raise ValueError(f"{spec} returned {type(module).__name__}, not a module")
    return module


__all__ = ["NeuronModuleError", "Runner", "adapt", "find_reset", "is_stepwise", "load_factory", "parse_kwargs"]
