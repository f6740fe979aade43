"""The documentation site builds with mkdocs --strict, holds every page, notebook and public name, and
its link check finds what is broken."""
from __future__ import annotations

import importlib
import re

import nbformat
import pytest

from tests.docs_site.notebooks import EXECUTED_DIR, ROOT, site_build

# the modules whose public names (their __all__) the API reference must document
REFERENCED_MODULES = ("minisnn", "minisnn.nn", "minisnn.spiking", "minisnn.models", "minisnn.io", "minisnn.parity")


def _ids(html: str) -> set[str]:
    return set(re.findall(r'\bid="([^"]+)"', html))


def _page(site, rel: str) -> str:
    path = site / rel
    assert path.is_file(), f"the site has no {rel}"
    return path.read_text(encoding="utf-8")


def test_site_holds_the_readme_the_docs_and_the_pitfalls(site):
    assert "Spiking vision transformers from scratch" in _page(site, "index.html")
    for doc in sorted((ROOT / "docs").glob("*.md")):
        _page(site, f"docs/{doc.stem}.html")
    assert (ROOT / "docs" / "pitfalls.md").is_file()


@pytest.mark.parametrize("module_name", REFERENCED_MODULES)
def test_api_reference_documents_every_public_name(site, module_name):
    html = _page(site, f"api/{module_name}.html")
    ids = _ids(html)
    missing = [name for name in importlib.import_module(module_name).__all__ if f"{module_name}.{name}" not in ids]
    assert not missing, f"api/{module_name}.html has no entry (anchor {module_name}.<name>) for {missing}"
    assert "doc-contents" in html, "the page shows no docstring"


def test_every_notebook_is_on_the_site_executed_with_its_figures(site):
    for path in site_build.notebooks():
        html = _page(site, f"tutorials/{path.stem}.html")
        nb = nbformat.read(EXECUTED_DIR / path.name, as_version=4)
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
        assert outputs, f"{path.name}: the copy on the site was not executed"
        figures = sum("image/png" in o.get("data", {}) for o in outputs)
        shown = len(re.findall(r'<img[^>]+src="data:image/png;base64,', html))
        assert shown >= figures, f"{path.name}: {figures} figures in the notebook, {shown} on its page"


def test_link_check_reports_broken_links_anchors_and_network_resources(tmp_path):
    (tmp_path / "a.html").write_text(
        '<h2 id="here">x</h2><a href="#here">ok</a><a href="b.html#there">ok</a><a href="b.html#nowhere">bad</a>'
        '<a href="missing.html">bad</a><img src="https://example.org/x.png"><a href="https://example.org/">ok</a>',
        encoding="utf-8")
    (tmp_path / "b.html").write_text('<p id="there"></p>', encoding="utf-8")
    problems, external = site_build.check_links(tmp_path)
    assert len(problems) == 3, problems
    assert any("#nowhere" in p for p in problems)
    assert any("missing.html" in p for p in problems)
    assert any("from the network" in p for p in problems)
    assert external == 2


def test_a_stale_executed_notebook_is_refused(tmp_path):
    """The site never shows the outputs of code that is no longer the notebook's."""
    path = site_build.notebooks()[0]
    nb = nbformat.read(path, as_version=4)
    next(c for c in nb.cells if c.cell_type == "code").source += "\n# changed"
    nbformat.write(nb, tmp_path / path.name)
    with pytest.raises(site_build.SiteBuildError, match="not an execution of the current"):
        site_build.executed_copy(tmp_path)(path)
