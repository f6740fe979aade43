"""Build the documentation site into build/site:  python docs/site/build.py

The site is MkDocs with the Material theme: the pages are Markdown already, mkdocstrings reads the
docstrings as Markdown, mkdocs-jupyter renders executed notebooks, and the search runs in the browser
without a server.  Everything is found by glob, so a new page or notebook needs no change here:

* pages: README.md (the home page), docs/*.md, tutorials/README.md, and the notes beside the code
  (bench/, experiments/, minisnn/**/*.md); files and folders they link to are copied along;
* notebooks: tutorials/*.ipynb, executed here with the full settings (``--fast``: ``MINISNN_FAST=1``),
  or taken already executed from ``--executed DIR`` (checked to be runs of the current code); the
  tests hand over the fast-mode runs that tests/test_notebooks.py checks, so CI runs each one once;
* the API reference: one page per module of API_MODULES, one entry per name of its ``__all__``.

The sources are staged in build/docs-src, ``mkdocs build --strict`` turns them into build/site (a
warning fails the build), then every link and image of the built pages is checked (no network: links
to other sites are counted, not followed).  Nothing on the built site is loaded from the network.
"""
from __future__ import annotations

import argparse
import contextlib
import html.parser
import importlib
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urlsplit

import nbclient
import nbformat

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build"
SOURCE = BUILD / "docs-src"          # staged pages: mkdocs.yml's docs_dir
SITE = BUILD / "site"                # mkdocs.yml's site_dir
NAV_FILE = ".nav.json"               # in SOURCE, read by docs/site/hooks.py (a dot file: not on the site)
PAGE_GLOBS = ("README.md", "docs/*.md", "tutorials/*.md", "bench/*.md", "experiments/*/*.md", "minisnn/**/*.md")
NOTEBOOK_GLOB = "tutorials/*.ipynb"
API_MODULES = ("minisnn", "minisnn.nn", "minisnn.spiking", "minisnn.models", "minisnn.io", "minisnn.parity")
CELL_TIMEOUT_S = 600
MARKDOWN_LINK = re.compile(r"(\]\()([^)\s]+)(\))")


class SiteBuildError(RuntimeError):
    """The site cannot be built as it stands: a stale notebook copy, a mkdocs warning, a broken link."""


def notebooks() -> list[Path]:
    """The tutorial notebooks, in order."""
    return sorted(ROOT.glob(NOTEBOOK_GLOB))


def pages() -> list[Path]:
    """The Markdown pages of the site (PAGE_GLOBS)."""
    found = {p for pattern in PAGE_GLOBS for p in ROOT.glob(pattern)}
    return sorted(found, key=lambda p: p.relative_to(ROOT).as_posix())


@contextlib.contextmanager
def _fast_mode(fast: bool):
    """MINISNN_FAST=1 (or unset) in the environment that the notebook's kernel inherits."""
    before = os.environ.get("MINISNN_FAST")
    if fast:
        os.environ["MINISNN_FAST"] = "1"
    else:
        os.environ.pop("MINISNN_FAST", None)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MINISNN_FAST", None)
        else:
            os.environ["MINISNN_FAST"] = before


def execute_notebook(path: Path, fast: bool, timeout: int = CELL_TIMEOUT_S):
    """Run a notebook top to bottom (kernel python3, in its own folder) and return it with its outputs.

    fast: MINISNN_FAST=1, the notebooks' tiny settings.  A cell that raises raises CellExecutionError.
    """
    nb = nbformat.read(path, as_version=4)
    with _fast_mode(fast):
        client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                         resources={"metadata": {"path": str(path.parent)}})
        client.execute()
    return nb


def code_sources(nb) -> list[str]:
    return [c["source"] for c in nb["cells"] if c["cell_type"] == "code"]


def _copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dest)


def _stage_link_targets(text: str, folder: Path, staged: set[Path], extra_pages: list[str]) -> str:
    """Markdown `text` of a page in `folder`, with the files it links to copied along, and links to
    folders pointed at a generated listing page (a folder has no page of its own on a static site).
    Pages that come along this way (listings, Markdown files outside PAGE_GLOBS) go to `extra_pages`."""

    def stage(match: re.Match) -> str:
        target = match.group(2)
        parts = urlsplit(target)
        if parts.scheme or parts.netloc or not parts.path or parts.path.startswith("/"):
            return match.group(0)
        path = (folder / unquote(parts.path)).resolve()
        if not path.is_relative_to(ROOT) or path in staged or not path.exists():
            return match.group(0)  # mkdocs --strict reports what is missing
        rel = path.relative_to(ROOT)
        if path.is_file():
            _copy(path, SOURCE / rel)
            if path.suffix == ".md":
                extra_pages.append(rel.as_posix())
            return match.group(0)
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        for f in files:
            _copy(f, SOURCE / rel / f.name)
        listing = [f"# {rel.as_posix()}/", "", *(f"- [{f.name}]({f.name})" for f in files), ""]
        (SOURCE / rel / "index.md").write_text("\n".join(listing), encoding="utf-8")
        extra_pages.append((rel / "index.md").as_posix())
        new_path = parts.path.rstrip("/") + "/index.md"
        return match.group(1) + new_path + (f"#{parts.fragment}" if parts.fragment else "") + match.group(3)

    return MARKDOWN_LINK.sub(stage, text)


def stage_pages(extra_pages: list[str]) -> list[str]:
    """Copy the pages into SOURCE (with what they link to); return their paths relative to SOURCE."""
    found = pages()
    staged = {p.resolve() for p in found} | {p.resolve() for p in notebooks()}
    for page in found:
        dest = SOURCE / page.relative_to(ROOT)
        dest.parent.mkdir(parents=True, exist_ok=True)
        text = _stage_link_targets(page.read_text(encoding="utf-8"), page.parent, staged, extra_pages)
        dest.write_text(text, encoding="utf-8")
    return [p.relative_to(ROOT).as_posix() for p in found]


def executed_copy(folder: Path) -> Callable[[Path], nbformat.NotebookNode]:
    """Notebooks read from `folder` (same file names), each checked to be a run of the current code."""
    def read(path: Path) -> nbformat.NotebookNode:
        copy = folder / path.name
        if not copy.is_file():
            raise SiteBuildError(f"no executed copy of {path.name} in {folder}; run tests/test_notebooks.py "
                                 "or build without --executed")
        nb = nbformat.read(copy, as_version=4)
        if code_sources(nb) != code_sources(nbformat.read(path, as_version=4)):
            raise SiteBuildError(f"{copy} is not an execution of the current {path.name}; run it again")
        return nb
    return read


def executed_here(fast: bool) -> Callable[[Path], nbformat.NotebookNode]:
    def run(path: Path) -> nbformat.NotebookNode:
        print(f"executing {path.relative_to(ROOT)} ({'fast' if fast else 'full'} settings)", flush=True)
        return execute_notebook(path, fast)
    return run


def stage_notebooks(run: Callable[[Path], nbformat.NotebookNode], extra_pages: list[str]) -> list[str]:
    """`run(path)` of every notebook (executed_here, executed_copy or the tests' shared runs) in SOURCE,
    with the files their markdown links to."""
    staged = {p.resolve() for p in pages()} | {p.resolve() for p in notebooks()}
    names = []
    for path in notebooks():
        rel = path.relative_to(ROOT)
        nb = run(path)
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = _stage_link_targets(cell.source, path.parent, staged, extra_pages)
        (SOURCE / rel).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, SOURCE / rel)
        names.append(rel.as_posix())
    return names


def _summary(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.split("\n\n")[0].replace("\n", " ")


def _homes() -> dict[int, tuple[str, str | None]]:
    """Where each public object is documented, as (API module of the page, anchor or None for the page
    itself): a module of API_MODULES on its own page; anything else under its first name in the most
    specific API module that exports it (`minisnn.load_checkpoint` is documented in minisnn.io)."""
    homes: dict[int, tuple[str, str | None]] = {}
    for module_name in API_MODULES:
        homes[id(importlib.import_module(module_name))] = (module_name, None)
    for module_name in sorted(API_MODULES, key=len, reverse=True):
        module = importlib.import_module(module_name)
        for name in module.__all__:
            homes.setdefault(id(getattr(module, name)), (module_name, f"{module_name}.{name}"))
    return homes


def _defined_at(module_name: str, name: str, obj) -> str:
    """The path of the submodule attribute that a lazily provided name hands out (it is loaded by now)."""
    found = sorted(f"{sub_name}.{name}" for sub_name, sub in list(sys.modules.items())
                   if sub_name.startswith(module_name + ".") and vars(sub).get(name) is obj)
    defined = [p for p in found if p.rpartition(".")[0] == getattr(obj, "__module__", None)]
    if not (defined or found):
        raise SiteBuildError(f"cannot tell where {module_name}.{name} is defined")
    return (defined or found)[0]


def api_page(module_name: str, homes: dict[int, tuple[str, str | None]]) -> str:
    """The reference page of one module: its docstring, then every name of its __all__ in order, each
    under the anchor `module.name`; a name documented elsewhere gets its summary and a link there."""
    module = importlib.import_module(module_name)
    lines = [f"# `{module_name}`", "", f"::: {module_name}", "    options:", "      members: false",
             "      show_root_heading: false", ""]
    for name in module.__all__:
        obj = getattr(module, name)
        qualified = f"{module_name}.{name}"
        page, anchor = homes[id(obj)]
        if (page, anchor) != (module_name, qualified):
            target = f"{page}.md" + (f"#{anchor}" if anchor else "")
            lines += [f"## `{name}` {{ #{qualified} }}", "",
                      f"{_summary(obj)} Reference: [`{anchor or page}`]({target}).", ""]
        elif inspect.ismodule(obj):
            lines += [f"::: {qualified}", "    options:", "      members: false", ""]
        elif name not in vars(module):
            # provided by the module's __getattr__ on first use, which static analysis cannot follow:
            # the anchor by hand, the documentation from where the object is defined
            lines += [f"[](){{ #{qualified} }}", "", f"::: {_defined_at(module_name, name, obj)}", ""]
        else:
            lines += [f"::: {qualified}", ""]
    return "\n".join(lines)


def write_api_pages() -> list[str]:
    (SOURCE / "api").mkdir(parents=True, exist_ok=True)
    names, homes = [], _homes()
    for module_name in API_MODULES:
        rel = f"api/{module_name}.md"
        (SOURCE / rel).write_text(api_page(module_name, homes), encoding="utf-8")
        names.append(rel)
    return names


def stage_mathjax() -> None:
    """MathJax 3 (from the django-static-mathjax wheel) for the notebooks' formulas, served locally."""
    import mathjax  # optional: only the site build needs the docs extra's django-static-mathjax

    es5 = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    shutil.copytree(es5, SOURCE / "assets" / "mathjax", dirs_exist_ok=True)


def write_nav(page_names: list[str], notebook_names: list[str], api_names: list[str]) -> None:
    """Home, guides (docs/), tutorials, API reference, then the notes beside the code."""
    guides = [p for p in page_names if p.startswith("docs/")]
    tutorial_pages = [p for p in page_names if p.startswith("tutorials/")]
    notes = [p for p in page_names if p != "README.md" and p not in guides and p not in tutorial_pages]
    nav = [{"Home": "README.md"}, {"Guides": guides}, {"Tutorials": tutorial_pages + notebook_names},
           {"API reference": api_names}, {"Notes on the code": notes}]
    (SOURCE / NAV_FILE).write_text(json.dumps(nav, indent=1), encoding="utf-8")


def run_mkdocs(site: Path, config: Path = ROOT / "mkdocs.yml") -> None:
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "--clean", "-f", str(config), "--site-dir", str(site)]
    print("+ " + " ".join(cmd), flush=True)
    if subprocess.run(cmd, cwd=ROOT, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}).returncode != 0:
        raise SiteBuildError("mkdocs build --strict failed (a warning above is an error)")


class _Links(html.parser.HTMLParser):
    """The ids of a page, and the links and resources it points to."""

    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.refs: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key):
                self.ids.add(attrs[key])
        for key in ("href", "src"):
            if attrs.get(key) is not None and not (tag == "a" and key == "src"):
                self.refs.append((tag, attrs[key]))


def check_links(site: Path) -> tuple[list[str], int]:
    """Broken internal links and anchors of the built site, and the number of external links.

    Resources (scripts, styles, images) must be local: the site has to work without a network."""
    parsed = {}
    for page in site.rglob("*.html"):
        if page.name == "404.html" and page.parent == site:
            continue  # served for any missing address, so its links start at the site's root
        parser = _Links()
        parser.feed(page.read_text(encoding="utf-8"))
        parsed[page] = parser
    problems, external = [], 0
    for page, parser in sorted(parsed.items()):
        where = page.relative_to(site).as_posix()
        for tag, ref in parser.refs:
            parts = urlsplit(ref)
            if parts.scheme in ("data", "mailto", "javascript"):
                continue
            if parts.scheme or parts.netloc:
                if tag != "a":
                    problems.append(f"{where}: <{tag}> loads {ref} from the network")
                external += 1
                continue
            if not parts.path:
                target = page
            elif parts.path.startswith("/"):
                problems.append(f"{where}: absolute link {ref}")
                continue
            else:
                target = (page.parent / unquote(parts.path)).resolve()
                if target.is_dir():
                    target = target / "index.html"
            if not target.is_file():
                problems.append(f"{where}: {ref} points to nothing")
            elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in parsed[target].ids:
                problems.append(f"{where}: {ref}: no #{unquote(parts.fragment)} on that page")
    return problems, external


def build(run: Callable[[Path], nbformat.NotebookNode], site: Path = SITE) -> Path:
    """Stage (the notebooks as `run` hands them over), build with mkdocs --strict, check the links;
    return the site folder."""
    shutil.rmtree(SOURCE, ignore_errors=True)
    SOURCE.mkdir(parents=True)
    extra_pages: list[str] = []
    page_names = stage_pages(extra_pages)
    notebook_names = stage_notebooks(run, extra_pages)
    write_nav(page_names + sorted(set(extra_pages)), notebook_names, write_api_pages())
    stage_mathjax()
    run_mkdocs(site)
    problems, external = check_links(site)
    if problems:
        raise SiteBuildError("broken links in the built site:\n  " + "\n  ".join(problems))
    print(f"site: {site} ({len(page_names)} pages, {len(notebook_names)} notebooks, {len(API_MODULES)} API "
          f"pages); every internal link and anchor resolves; {external} links to other sites not followed")
    return site


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fast", action="store_true", help="execute the notebooks with MINISNN_FAST=1")
    parser.add_argument("--executed", type=Path, help="take executed notebooks from this folder instead")
    parser.add_argument("--site", type=Path, default=SITE, help=f"output folder (default {SITE.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    try:
        run = executed_copy(args.executed) if args.executed else executed_here(args.fast)
        build(run, args.site.resolve())
    except SiteBuildError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
