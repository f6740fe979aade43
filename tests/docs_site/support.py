"""What the documentation-site tests share with each other and with tests/test_notebooks.py.

`executed(path)` runs a tutorial notebook in fast mode (MINISNN_FAST=1) the first time it is asked for
in this pytest process, with docs/site/build.py's `execute_notebook`, and records how long the run
took; later calls in the same process get a copy of that result, so the notebook tests and the site
build (which takes `executed` as its notebook runner) share one run.  A notebook that raises is not
remembered: the next caller runs it again and sees the same error.  The executed copies are also
written to EXECUTED_DIR, for `python docs/site/build.py --executed build/executed-notebooks` after a
test run.
"""
from __future__ import annotations

import copy
import importlib
import importlib.util
import os
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXECUTED_DIR = ROOT / "build" / "executed-notebooks"


def load_site_build():
    """docs/site/build.py as a module (it is a script of the repository, not part of the package)."""
    spec = importlib.util.spec_from_file_location("minisnn_site_build", ROOT / "docs" / "site" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


site_build = load_site_build()
_RUNS: dict[Path, nbformat.NotebookNode] = {}
RUN_SECONDS: dict[Path, float] = {}   # wall-clock time of each fast-mode run of this session


def require(module: str):
    """Import a package of the docs extra or fail, naming the install command (never skip)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        pytest.fail(f"{module} is needed to test the documentation site: pip install -e '.[test,docs]' ({exc})",
                    pytrace=False)


def executed(path: Path) -> nbformat.NotebookNode:
    """The notebook at `path` after a fast-mode run in this test session (raises CellExecutionError)."""
    path = path.resolve()
    if path not in _RUNS:
        start = time.perf_counter()
        nb = site_build.execute_notebook(path, fast=True)
        RUN_SECONDS[path] = time.perf_counter() - start
        EXECUTED_DIR.mkdir(parents=True, exist_ok=True)
        partial = EXECUTED_DIR / f".{path.name}.{os.getpid()}"
        nbformat.write(nb, partial)
        os.replace(partial, EXECUTED_DIR / path.name)  # whole files only, for readers in other processes
        _RUNS[path] = nb
    return copy.deepcopy(_RUNS[path])
