"""Kernel dispatch: `minisnn.kernels` names every kernel once, and one switch picks the backend."""
from __future__ import annotations

import ast
import importlib
import inspect
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

from minisnn import kernels

PACKAGE = Path(kernels.__file__).parent


def _module_all(backend: str, module: str) -> list[str]:
    return list(importlib.import_module(f"minisnn.kernels.{backend}.{module}").__all__)


def _explicit_imports() -> dict[str, set[str]]:
    """{module: names} of the `from .reference.<module> import ...` lines of kernels/__init__.py."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    lines: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and (node.module or "").startswith("reference."):
            lines.setdefault(node.module.split(".", 1)[1], set()).update(a.name for a in node.names)
    return lines


@pytest.fixture
def restore_backend():
    before = kernels.backend()
    yield
    kernels.set_backend(before)


@pytest.mark.parametrize("backend", kernels.BACKENDS)
def test_module_list_is_each_backend_package(backend):
    package = importlib.import_module(f"minisnn.kernels.{backend}")
    assert sorted(m.name for m in pkgutil.iter_modules(package.__path__)) == sorted(kernels.MODULES)


@pytest.mark.parametrize("module", kernels.MODULES)
def test_both_backends_export_the_same_kernels(module):
    assert sorted(_module_all("jit", module)) == sorted(_module_all("reference", module))


def test_explicit_import_lines_match_the_modules():
    """Each `from .reference.<module> import ...` line lists exactly that module's `__all__`."""
    lines = _explicit_imports()
    assert sorted(lines) == sorted(kernels.MODULES)
    for module in kernels.MODULES:
        assert lines[module] == set(_module_all("reference", module)), module


@pytest.mark.parametrize("backend", kernels.BACKENDS)
def test_every_name_resolves_to_the_chosen_backend(backend, restore_backend):
    kernels.set_backend(backend)
    assert kernels.backend() == backend
    for module in kernels.MODULES:
        impl = importlib.import_module(f"minisnn.kernels.{backend}.{module}")
        for name in _module_all("reference", module):
            assert getattr(kernels, name) is getattr(impl, name), f"{name} is not {backend}.{module}.{name}"
    if backend == "reference":  # plain Python functions defined in the reference modules themselves
        for module in kernels.MODULES:
            for name in _module_all("reference", module):
                fn = getattr(kernels, name)
                assert inspect.isfunction(fn) and fn.__module__ == f"minisnn.kernels.reference.{module}", name


def test_unknown_backend_and_kernel(restore_backend):
    with pytest.raises(ValueError, match="unknown kernel backend 'cuda'"):
        kernels.set_backend("cuda")
    with pytest.raises(AttributeError, match="no kernel 'conv_magic'"):
        kernels.conv_magic  # noqa: B018


_REFERENCE_RUN = r"""
import sys
import numpy as np
import minisnn
from minisnn import Tensor, functional as F, kernels
from minisnn.attention import head_column_sum, head_token_mask, ssa
from minisnn.ops import conv as conv_ops, winograd
from minisnn.spiking import LIF

assert kernels.backend() == "reference"
rng = np.random.default_rng(0)
def leaf(*shape):
    return Tensor(rng.standard_normal(shape), requires_grad=True)

c = winograd.MIN_CHANNELS
x, w3, w1 = leaf(2, c, 6, 6), leaf(c, c, 3, 3), leaf(c, c, 1, 1)
assert winograd.use_winograd(w3.shape, (1, 1), (1, 1)) and not winograd.use_winograd(w3.shape, (2, 2), (1, 1))
y = F.conv2d(x, w3, padding=1)                      # Winograd
y = y + F.conv2d(x, w3, stride=2, padding=1).sum()  # im2col
spikes = (rng.random((2, c, 6, 6)) < 0.05).astype(np.float64)
assert conv_ops.input_events(spikes.reshape(-1, 6), conv_ops.EVENT_DENSITY) is not None
y = y + F.conv2d(spikes, w3, padding=1)             # event-driven
y = F.conv2d(y, w1)                                  # 1x1
y = F.batch_norm(y, np.zeros(c), np.ones(c), training=True)
y = F.max_pool2d(y, 2)
s = LIF()(y.reshape(2, 1, c, 9))                     # [T, B, C, N]
a = head_token_mask(head_column_sum(s, 4), s, 4)
z = ssa(a, a, a)
(z.sum() + F.batch_norm(y, np.zeros(c), np.ones(c), training=False).sum()).backward()
assert x.grad is not None and w3.grad is not None and w1.grad is not None
loaded = sorted(m for m in sys.modules if m.startswith("minisnn.kernels.jit") or m == "numba")
assert not loaded, loaded
print("ok")
"""


def test_reference_switch_runs_everything_on_the_references():
    """MINISNN_KERNELS=reference: Winograd, im2col, event-driven and 1x1 convolutions, pooling, BatchNorm, LIF and
    attention, forward and backward, run without importing a single Numba module."""
    env = dict(os.environ, MINISNN_KERNELS="reference")
    done = subprocess.run([sys.executable, "-c", _REFERENCE_RUN], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]
