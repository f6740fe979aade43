"""The torch-engine tests run torch with one intra-op thread (as the parity tests): on a small shared
machine PyTorch's spinning worker threads otherwise make small networks' run times vary widely (ten times
slower under load).  Module scope: the setting must hold before the modules' own trainings (fixtures)."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="module")
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
