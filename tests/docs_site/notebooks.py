"""Each tutorial notebook executed once per test session, shared by tests/test_notebooks.py and the site.

`executed(path)` runs the notebook in fast mode (MINISNN_FAST=1) the first time it is asked for in
this pytest process, with docs/site/build.py's `execute_notebook`; later calls in the same process get
a copy of that result (the site build takes `executed` as its notebook runner).  A notebook that
raises is not remembered: the next caller runs it again and sees the same error.  The executed copies
are also written to EXECUTED_DIR, for `python docs/site/build.py --executed build/executed-notebooks`
after a test run.
"""
from __future__ import annotations

import copy
import importlib.util
import os
from pathlib import Path

import nbformat

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


def executed(path: Path) -> nbformat.NotebookNode:
    """The notebook at `path` after a fast-mode run in this test session (raises CellExecutionError)."""
    path = path.resolve()
    if path not in _RUNS:
        nb = site_build.execute_notebook(path, fast=True)
        EXECUTED_DIR.mkdir(parents=True, exist_ok=True)
        partial = EXECUTED_DIR / f".{path.name}.{os.getpid()}"
        nbformat.write(nb, partial)
        os.replace(partial, EXECUTED_DIR / path.name)  # whole files only, for readers in other processes
        _RUNS[path] = nb
    return copy.deepcopy(_RUNS[path])
