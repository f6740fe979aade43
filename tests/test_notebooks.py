"""The tutorial notebooks: stored without outputs, shaped like a lesson, and runnable top to bottom.

Each `tutorials/*.ipynb` is executed with nbclient (kernel `python3`, 600 s per
cell, working directory `tutorials/`) with `MINISNN_FAST=1` in the environment,
which notebooks read to switch to tiny settings.  A cell that raises fails the test.
nbclient, nbformat and ipykernel come with the test extra (`pip install -e .[test]`);
when they are missing these tests fail rather than skip.
"""
from __future__ import annotations

import importlib
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
IDS = [p.stem for p in NOTEBOOKS]


def _require(module: str):
    """Import a notebook-testing dependency or fail loudly (never skip)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        pytest.fail(f"{module} is required to test the tutorials; install the test extra with "
                    f"`pip install -e .[test]` ({exc})", pytrace=False)


def _read(path: Path):
    nbformat = _require("nbformat")
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    return nb


def _markdown(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "markdown"]


def test_tutorials_exist():
    assert NOTEBOOKS, f"no notebooks found in {TUTORIALS}"
    readme = (TUTORIALS / "README.md").read_text(encoding="utf-8")
    missing = [p.name for p in NOTEBOOKS if p.name not in readme]
    assert not missing, f"tutorials/README.md does not list {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_is_stored_without_outputs(path):
    nb = _read(path)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        assert not cell.get("outputs"), f"{path.name}: code cell {i} has stored outputs; clear them before committing"
        assert cell.get("execution_count") is None, f"{path.name}: code cell {i} has an execution_count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_reads_like_a_lesson(path):
    """Opens with what you will learn; ends with exercises and a pointer to the tests that check it."""
    texts = _markdown(_read(path))
    assert texts, f"{path.name} has no markdown cells"
    assert "learn" in texts[0].lower(), f"{path.name}: the first markdown cell should say what you will learn"
    tail = "\n".join(texts[-2:]).lower()
    assert "exercise" in tail, f"{path.name}: the notebook should end with exercises"
    assert "tests/" in tail, f"{path.name}: the notebook should end with a pointer to the tests that check it"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_executes(path):
    _require("nbclient")
    _require("ipykernel")
    _read(path)
    # after the checks above: the run is shared with the documentation site's build, which shows
    # these executed copies (written to build/executed-notebooks), so each notebook runs once
    from tests.docs_site.support import executed

    nb = executed(path)  # raises CellExecutionError with the failing cell and its traceback
    ran = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    assert ran and all(c.get("execution_count") for c in ran), f"{path.name}: not every code cell ran"
    errors = [o for c in ran for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{path.name}: error outputs {[(e.get('ename'), e.get('evalue')) for e in errors]}"
