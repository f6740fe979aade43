"""Every code block in README.md and docs/*.md runs as written.

* ```python blocks run in order, one namespace per file (like a notebook), in a scratch folder.
* Shell blocks: every `minisnn ...` line must be accepted by the command's argument parser
  (placeholders such as DATA are plain strings to it); `python path/to/script.py` must name a
  file of the repository; `pip install` lines are what CI itself runs.
Blocks that train for an hour are not run here: their argument lines are checked instead.
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from minisnn.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def blocks(path: Path, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(path.read_text(encoding="utf-8")) if lang == language]


def _commands(body: str) -> list[list[str]]:
    """Shell lines of a block split into commands (&&, ;), comments dropped."""
    out = []
    for line in body.splitlines():
        line = line.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        for part in re.split(r"&&|;", line):
            if part.strip():
                out.append(shlex.split(part))
    return out


@pytest.mark.parametrize("path", [p for p in DOCS if blocks(p, "python")], ids=lambda p: p.name)
def test_python_blocks_run(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__doc_example__"}
    for i, body in enumerate(blocks(path, "python")):
        exec(compile(body, f"{path.name} python block {i + 1}", "exec"), namespace)


@pytest.mark.parametrize("path", [p for p in DOCS if blocks(p, "") or blocks(p, "bash")], ids=lambda p: p.name)
def test_shell_lines_are_valid_commands(path):
    parser = build_parser()
    for body in blocks(path, "") + blocks(path, "bash"):
        for argv in _commands(body):
            if argv[0] == "minisnn":
                try:
                    parser.parse_args(argv[1:])
                except SystemExit as exc:
                    pytest.fail(f"{path.name}: `{' '.join(argv)}` is rejected by the parser (exit {exc.code})")
            elif argv[0] in ("python", "python3") and argv[1:2] != ["-m"]:
                assert (ROOT / argv[1]).is_file(), f"{path.name}: {argv[1]} does not exist"
            elif argv[0] == "pip":
                assert argv[1] == "install", f"{path.name}: unexpected pip command {argv}"
