"""The documentation site builds with mkdocs --strict, holds every page, notebook and public name, and
its link check finds what is broken."""
from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import nbformat
import pytest

from tests.docs_site.support import ROOT, RUN_SECONDS, executed, require, site_build

# the modules whose public names (their __all__) the API reference must document
REFERENCED_MODULES = ("minisnn", "minisnn.nn", "minisnn.spiking", "minisnn.models", "minisnn.io", "minisnn.parity")
FAST_RUN_BUDGET_S = 120   # each notebook, in fast mode, in CI
PITFALLS = ("reset_net", "float32", "detached reset", "batch-coupled", "oversubscription")


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
    headings = " ".join(re.findall(r"<h2[^>]*>(.*?)</h2>", _page(site, "docs/pitfalls.html"))).lower()
    missing = [topic for topic in PITFALLS if topic not in headings]
    assert not missing, f"docs/pitfalls.md has no section on {missing}"


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
        nb = executed(path)
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
        assert outputs, f"{path.name}: the copy on the site was not executed"
        figures = sum("image/png" in o.get("data", {}) for o in outputs)
        shown = len(re.findall(r'<img[^>]+src="data:image/png;base64,', html))
        assert shown >= figures, f"{path.name}: {figures} figures in the notebook, {shown} on its page"


def test_each_notebook_runs_in_fast_mode_within_budget(site):
    """Measured on this session's runs, the ones the site shows (CI's 2-core machine: under 2 minutes)."""
    assert RUN_SECONDS, "no notebook ran in this session"
    slow = {path.name: round(seconds) for path, seconds in RUN_SECONDS.items() if seconds > FAST_RUN_BUDGET_S}
    assert not slow, f"notebooks over {FAST_RUN_BUDGET_S} s in fast mode: {slow}"


def _small_site(tmp_path, pages: dict[str, str], nav: list) -> Path:
    """A site of a few pages, built with the project's mkdocs.yml and hooks; returns its config file."""
    require("mkdocs")
    source = tmp_path / "src"
    for name, text in pages.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(text, encoding="utf-8")
    (source / site_build.NAV_FILE).write_text(json.dumps(nav), encoding="utf-8")
    config = tmp_path / "mkdocs.yml"
    config.write_text(f"INHERIT: {ROOT / 'mkdocs.yml'}\ndocs_dir: {source}\nsite_dir: {tmp_path / 'site'}\n"
                      f"hooks: [{ROOT / 'docs' / 'site' / 'hooks.py'}]\n", encoding="utf-8")
    return config


def test_a_warning_fails_the_build(tmp_path):
    """mkdocs runs with --strict: here a link to a page that does not exist."""
    config = _small_site(tmp_path, {"index.md": "# Home\n\nSee [a page that is not there](missing.md).\n"},
                         [{"Home": "index.md"}])
    with pytest.raises(site_build.SiteBuildError, match="--strict"):
        site_build.run_mkdocs(tmp_path / "site", config)


def test_notebook_pages_link_to_pages_and_their_contents_lead_to_their_headings(tmp_path):
    """The hooks: a notebook's links to other notebooks and pages become links to their pages, its
    table of contents uses the addresses its headings really have (inline code included), and its
    formulas load the site's own MathJax."""
    first = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# First\n\n## 2. A `Value` class\n\nSee [the next](b.ipynb), "
                                      "[home](../index.md) and $x^2$."),
        nbformat.v4.new_code_cell("1 + 1")])
    second = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Second")])
    config = _small_site(tmp_path, {"index.md": "# Home\n", "t/a.ipynb": nbformat.writes(first),
                                    "t/b.ipynb": nbformat.writes(second)},
                         [{"Home": "index.md"}, {"Tutorials": ["t/a.ipynb", "t/b.ipynb"]}])
    site_build.run_mkdocs(tmp_path / "site", config)
    html = (tmp_path / "site" / "t" / "a.html").read_text(encoding="utf-8")
    assert 'href="b.html"' in html and 'href="../index.html"' in html
    assert '<script src="../assets/mathjax/tex-mml-chtml.js">' in html
    problems, _ = site_build.check_links(tmp_path / "site")
    assert [p for p in problems if "mathjax" not in p] == []   # the toc's anchors exist on the page
    assert "value-class" in " ".join(_ids(html))


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
