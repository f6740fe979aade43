"""Parity tests run torch with one intra-op thread (`tests.conftest.one_torch_thread`)."""
from __future__ import annotations

import pytest

from ..conftest import one_torch_thread


@pytest.fixture(autouse=True)
def _one_torch_thread():
    with one_torch_thread():
        yield
