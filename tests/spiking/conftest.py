"""Spiking tests: compile (or load from cache) every Numba kernel specialisation once per session."""
from __future__ import annotations

import numpy as np
import pytest

from minisnn.kernels.jit import lif as jit_lif
from minisnn.kernels.jit import surrogate as jit_surrogate


@pytest.fixture(scope="session", autouse=True)
def warm_spiking_kernels():
    for dtype in (np.float32, np.float64):
        x = np.linspace(-2.0, 3.0, 24, dtype=dtype).reshape(3, 8)
        g = np.ones_like(x)
        for alpha in (np.full((1, 1), 2.0, dtype), np.full((3, 8), 2.0, dtype)):
            for smooth in (False, True):
                jit_lif.lif_forward(x, alpha, 2.0, 1.0, 0.0, True, True, False, 0, smooth)
                s, psi = jit_lif.lif_forward_with_psi(x, alpha, 2.0, 1.0, 0.0, True, True, False, 0, smooth)
                jit_lif.lif_backward(g, x, alpha, 2.0, 1.0, 0.0, True, True, False, True, 0, smooth, True, True)
        jit_lif.lif_backward_saved(g, psi, 2.0, 1.0, True, True, False, True)
        a = np.array([2.0], dtype)
        jit_surrogate.surrogate_primitive(x, a, 0)
        jit_surrogate.spike_backward(g, x, a, 0, True)
