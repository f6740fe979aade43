"""The LIF kernels and neurons reproduce the recorded golden results bit for bit.

`tests/spiking/data/lif_golden.npz` holds spikes and gradients computed before the neuron's
settings were gathered into one `LIFParams` (written by `tests/spiking/lif_golden.py`, which
also defines the cases and their seeded inputs).  Every array must match to the last bit:
floats are compared as their bit patterns, so even the sign of a zero counts.
"""
from __future__ import annotations

import numpy as np
import pytest

from minisnn import kernels
from minisnn.kernels.lif_params import LIFParams

from .lif_golden import (BACKENDS, DTYPES, KERNEL_CASES, MODULE_CASES, PATH, WIDE, kernel_inputs, kernel_results,
                         module_results)

GOLDEN = np.load(PATH)


def _bits(a):
    a = np.ascontiguousarray(a).reshape(-1)
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64) if a.dtype.kind == "f" else a


def _assert_matches_golden(prefix: str, results: dict) -> None:
    recorded = sorted(k[len(prefix):] for k in GOLDEN.files if k.startswith(prefix))
    assert sorted(results) == recorded, f"{prefix}: results {sorted(results)} but golden {recorded}"
    for what, value in results.items():
        value, golden = np.asarray(value), GOLDEN[prefix + what]
        assert value.dtype == golden.dtype and value.shape == golden.shape, prefix + what
        differ = _bits(value) != _bits(golden)
        assert not differ.any(), f"{prefix}{what}: {np.count_nonzero(differ)} of {differ.size} values differ"


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", list(KERNEL_CASES))
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_kernels_reproduce_golden_results(backend, name, dtype):
    mod = BACKENDS[backend]
    _assert_matches_golden(f"{backend}.kernel.{name}.{np.dtype(dtype).name}.", kernel_results(mod, name, dtype))
    settings, x_seq, g_seq, alpha = kernel_inputs(name, dtype)
    params = LIFParams.make(**settings)
    golden = f"{backend}.kernel.{name}.{np.dtype(dtype).name}."
    np.testing.assert_array_equal(_bits(mod.lif_forward_with_psi(x_seq, alpha, params)[0]),
                                  _bits(GOLDEN[golden + "spikes"]))
    if x_seq.shape[1] <= WIDE:  # dL/dx does not depend on whether dL/dα and dL/dτ are wanted too
        np.testing.assert_array_equal(_bits(mod.lif_backward(g_seq, x_seq, alpha, params, False, False)[0]),
                                      _bits(GOLDEN[golden + "dx"]))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", list(MODULE_CASES))
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_neurons_reproduce_golden_results(backend, name, dtype):
    before = kernels.backend()
    kernels.set_backend(backend)
    try:
        results = module_results(name, dtype)
    finally:
        kernels.set_backend(before)
    _assert_matches_golden(f"{backend}.module.{name}.{np.dtype(dtype).name}.", results)
