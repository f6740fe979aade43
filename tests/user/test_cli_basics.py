"""What a newcomer types first: --version, --help with examples, described options, help(minisnn)."""
from __future__ import annotations

import pydoc
import subprocess
import sys

import pytest

import minisnn
from minisnn.cli import TRAIN_DEFAULT_MODEL, build_parser
from ..command_line import run




def test_version(capsys):
    rc, out, _ = run(capsys, "--version")
    assert rc == 0 and out.strip() == f"minisnn {minisnn.__version__}"


def test_help_shows_examples_of_every_command(capsys):
    rc, out, _ = run(capsys, "--help")
    assert rc == 0 and "examples:" in out
    for command in ("train", "eval", "export", "models", "download", "verify"):
        assert f"\n    minisnn {command}" in out, command


def test_every_train_option_is_described_and_the_default_model_named(capsys):
    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    undescribed = [a.option_strings for a in train._actions if not a.help]
    assert undescribed == []
    rc, out, _ = run(capsys, "train", "--help")
    assert rc == 0 and f"default: {TRAIN_DEFAULT_MODEL}" in out
    assert "defaults: epochs 10" in out and "dysvit-*:" in out and "examples:" in out


@pytest.mark.parametrize("name", ["models", "pretrained", "predict", "load_checkpoint", "spiking", "train"])
def test_help_of_the_package_names_the_lazily_loaded_parts(name):
    text = pydoc.render_doc(minisnn, renderer=pydoc.plaintext)
    assert name in minisnn.__all__ and f"    {name}" in text


def test_the_console_script_answers_version_quickly():
    r = subprocess.run([sys.executable, "-m", "minisnn", "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("minisnn ")
