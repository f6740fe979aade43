"""Parity tests run torch with one intra-op thread: on a small shared machine, PyTorch's spinning
worker threads otherwise make the run time of these small networks vary by an order of magnitude."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread():
    try:
        import torch
    except ImportError:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
