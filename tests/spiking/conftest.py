"""Spiking tests: compile (or load from cache) every Numba kernel specialisation once per session.

The LIF kernels take the neuron as one `LIFParams`, in the dtype of the arrays, so flags and slope
layout add no specialisation; each surrogate family does (its scalar functions are inlined into the
kernels, see minisnn/spiking/custom_surrogates.md).  This warms the default family in both dtypes;
the first test of another family pays for its own (or loads it from Numba's cache).
"""
from __future__ import annotations

import numpy as np
import pytest

from minisnn.kernels.jit import lif as jit_lif
from minisnn.kernels.jit import spike as jit_spike
from minisnn.kernels.jit import surrogate as jit_surrogate
from minisnn.kernels.lif_params import LIFParams


@pytest.fixture(scope="session", autouse=True)
def warm_spiking_kernels():
    params = LIFParams.make()
    for dtype in (np.float32, np.float64):
        x = np.linspace(-2.0, 3.0, 24, dtype=dtype).reshape(3, 8)
        g = np.ones_like(x)
        alpha = np.full((1, 1), 2.0, dtype)
        jit_lif.lif_forward(x, alpha, params)
        s, q = jit_lif.lif_forward_with_psi(x, alpha, params)
        jit_lif.lif_backward(g, x, alpha, params, True, True)
        jit_lif.lif_backward_saved(g, q, params)
        a = np.array([2.0], dtype)
        jit_surrogate.surrogate_primitive(x, a, 0)
        jit_surrogate.spike_backward(g, x, a, 0, True)
        jit_spike.spike_forward(x, 1.0)
        jit_spike.surrogate_primitive_rows(x, 1.0, a.repeat(3), 0)
        jit_spike.spike_backward_rows(g, x, 1.0, a.repeat(3), 0, True)
