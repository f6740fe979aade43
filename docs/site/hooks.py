"""MkDocs hooks of the documentation site (mkdocs.yml `hooks:`); docs/site/build.py stages the pages.

* The navigation is the one build.py wrote next to the staged pages (.nav.json), so new pages and
  notebooks appear without editing mkdocs.yml.
* A notebook page's table of contents is read from its HTML headings (see on_page_content).
* Notebook pages load MathJax from the site itself: mkdocs-jupyter writes a script tag with the
  placeholder MATHJAX_PLACEHOLDER as its address, which becomes the relative path of the local copy,
  preceded by the configuration for `$...$` formulas.
"""
from __future__ import annotations

import html
import html.parser
import json
import posixpath
import re
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.toc import get_toc
from mkdocs.utils import get_relative_url

MATHJAX_PLACEHOLDER = "minisnn-local-mathjax"
MATHJAX_SCRIPT = "assets/mathjax/tex-mml-chtml.js"
MATHJAX_CONFIG = ("<script>window.MathJax = {tex: {inlineMath: [['$', '$'], ['\\\\(', '\\\\)']], "
                  "processEscapes: true}};</script>")


def on_config(config):
    nav_file = Path(config["docs_dir"]) / ".nav.json"
    if not nav_file.is_file():
        raise PluginError(f"{nav_file} is missing: build the site with `python docs/site/build.py`")
    config["nav"] = json.loads(nav_file.read_text(encoding="utf-8"))
    return config


def on_post_page(output: str, page, config) -> str:
    if MATHJAX_PLACEHOLDER not in output:
        return output
    script = get_relative_url(MATHJAX_SCRIPT, page.url)
    tag = f'<script src="{MATHJAX_PLACEHOLDER}"> </script>'
    if tag not in output:
        raise PluginError(f"{page.file.src_uri}: the MathJax script tag of mkdocs-jupyter has changed")
    return output.replace(tag, f'{MATHJAX_CONFIG}<script src="{script}"></script>')


class _Headings(html.parser.HTMLParser):
    """(level, id, text) of the h1-h6 of an HTML fragment that carry an id."""

    def __init__(self):
        super().__init__()
        self.found: list[dict] = []
        self._open: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if re.fullmatch(r"h[1-6]", tag) and attrs.get("id"):
            self._open = {"level": int(tag[1]), "id": attrs["id"], "name": "", "children": []}
        elif self._open is not None and tag == "a" and "anchor-link" in (attrs.get("class") or ""):
            self._open["skip"] = True

    def handle_endtag(self, tag):
        if self._open is not None and tag == "a":
            self._open.pop("skip", None)
        elif self._open is not None and tag == f"h{self._open['level']}":
            self._open["name"] = html.escape(self._open["name"].strip())
            self.found.append(self._open)
            self._open = None

    def handle_data(self, data):
        if self._open is not None and not self._open.get("skip"):
            self._open["name"] += data


def _nest(flat: list[dict]) -> list[dict]:
    """Headings as the tree of toc tokens that mkdocs' get_toc takes."""
    roots: list[dict] = []
    stack: list[dict] = []
    for token in flat:
        while stack and stack[-1]["level"] >= token["level"]:
            stack.pop()
        (stack[-1]["children"] if stack else roots).append(token)
        stack.append(token)
    return roots


def _page_links(content: str, page, files) -> str:
    """Links of a notebook's markdown to other pages (`05_bptt_through_lif.ipynb`, `../docs/parity.md`)
    pointed at those pages, as mkdocs does for Markdown pages."""
    def relink(match: re.Match) -> str:
        path = posixpath.normpath(posixpath.join(posixpath.dirname(page.file.src_uri), match.group(2)))
        target = files.get_file_from_path(path)
        if target is None or not target.is_documentation_page():
            return match.group(0)
        return match.group(1) + target.url_relative_to(page.file) + (match.group(3) or "") + '"'

    return re.sub(r'(href=")([^"#:]+\.(?:ipynb|md))(#[^"]*)?"', relink, content)


def on_page_content(content: str, page, config, files) -> str:
    """For a notebook page: its table of contents from the headings of its HTML (mkdocs-jupyter slugs
    the headings of the toc from the markdown without its inline code, so `## 2. A `Value``
    got an address that no heading of the page has), and its links to other pages."""
    if not page.file.src_uri.endswith(".ipynb"):
        return content
    headings = _Headings()
    headings.feed(content)
    page.toc = get_toc(_nest(headings.found))
    return _page_links(content, page, files)
