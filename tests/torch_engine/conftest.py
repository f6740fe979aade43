"""The torch-engine tests run torch with one intra-op thread (`tests.conftest.one_torch_thread`).  Module
scope: the setting must hold before the modules' own trainings (fixtures)."""
from __future__ import annotations

import pytest

from ..conftest import one_torch_thread


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    with one_torch_thread():
        yield
