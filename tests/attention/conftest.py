"""Shared pieces of the attention tests: backend switching and spike/real array strategies."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import strategies as st

from minisnn import kernels

FLOATS = (np.float32, np.float64)


@pytest.fixture(params=["reference", "jit"])
def backend(request):
    """Run the test once per kernel backend, restoring the previous one afterwards."""
    before = kernels.backend()
    kernels.set_backend(request.param)
    yield request.param
    kernels.set_backend(before)


def make_array(rng: np.random.Generator, shape, dtype, kind: str) -> np.ndarray:
    """kind 'spikes': 0/1 values at a random firing rate; 'real': standard normal values."""
    if kind == "spikes":
        rate = rng.uniform(0.05, 0.6)
        return (rng.random(shape) < rate).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


seeds = st.integers(0, 2**32 - 1)
kinds = st.sampled_from(["spikes", "real"])
dtypes = st.sampled_from(FLOATS)
lead_shapes = st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple)
