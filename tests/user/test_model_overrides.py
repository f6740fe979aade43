"""Constructor overrides (`--set KEY=VALUE`): checked once, in `models.create`, with one-line errors.

A misspelled key, a value of the wrong type, a size a constructor cannot build and a size too
large to allocate all end as a `ModelArgumentError` (a ValueError) naming the key, and on the
command line as one line on stderr with exit status 2.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from minisnn import models
from minisnn.models.registry import ModelArgumentError
from ..command_line import run

pytestmark = pytest.mark.usefixtures("embedded_sample_only")






def test_a_misspelled_key_names_the_key_a_guess_and_the_accepted_ones():
    with pytest.raises(ModelArgumentError) as info:
        models.create("dysvit-tiny", depht=3)
    text = str(info.value)
    assert "'depht'" in text and "did you mean 'depth'?" in text and "it accepts: num_classes, dim, depth" in text
    assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)


@pytest.mark.parametrize("name, key, value, says", [
    ("dysvit-tiny", "dim", "abc", "dim must be an integer like its default 128, got 'abc' (str)"),
    ("dysvit-tiny", "dim", True, "dim must be an integer"),
    ("dysvit-tiny", "dim", 64.0, "dim must be an integer"),
    ("dysvit-tiny", "mlp_ratio", 2.5, "mlp_ratio must be an integer"),     # Dy-SViT: hidden = dim * mlp_ratio
    ("dysvit-tiny", "dynamic_slope", 1, "dynamic_slope must be true or false"),
    ("spikformer-tiny", "attn_threshold", "high", "attn_threshold must be a number"),
    ("msvit-tiny", "stage3_proj_lif", 2, "stage3_proj_lif must be a string"),
])
def test_a_value_of_the_wrong_type_names_the_key_and_the_type(name, key, value, says):
    with pytest.raises(ModelArgumentError, match=re.escape(says)):
        models.create(name, **{key: value})


def test_values_that_fit_the_signature_are_accepted():
    assert models.create("spikformer-tiny", mlp_ratio=2.5).config["mlp_ratio"] == 2.5     # annotated float
    assert models.create("spikformer-tiny", attn_threshold=1).config["attn_threshold"] == 1  # an int is a number
    assert models.create("dysvit-tiny", dim=64, heads=2, dynamic_slope=False).config["dim"] == 64


@pytest.mark.parametrize("name, overrides, says", [
    ("dysvit-tiny", {"patch_size": 0}, "patch_size must be an integer >= 1, got 0"),
    ("dysvit-tiny", {"img_size": 0}, "img_size must be an integer >= 1"),
    ("dysvit-tiny", {"mlp_ratio": -1}, "mlp_ratio must be an integer >= 1"),
    ("dysvit-tiny", {"hypernet_hidden": 0}, "hypernet_hidden must be an integer >= 1"),
    ("dysvit-tiny", {"heads": 3}, "dim 128 is not divisible by heads 3"),
    ("spikformer-tiny", {"mlp_ratio": 0.001}, "leaves the MLP of a 128-channel block without hidden channels"),
    ("qkformer-tiny", {"mlp_ratio": 0.01}, "leaves the MLP of a 32-channel block without hidden channels"),
])
def test_sizes_a_constructor_cannot_build_are_one_line_value_errors(name, overrides, says):
    with pytest.raises(ModelArgumentError, match=re.escape(says)) as info:
        models.create(name, **overrides)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("overrides, needs, peak_gib", [
    ({"dim": 30000}, "with dim=30000 is too large to build", 0.5),        # one 3.4 GiB weight matrix
    ({"dim": 10**9}, "with dim=1000000000 is too large to build", 0.5),
    ({"mlp_ratio": 10**6}, "with mlp_ratio=1000000 is too large to build", 0.5),
    ({"depth": 10**5}, "with depth=100000 is too large to build", 3.0),   # 20 GiB of blocks; 1 GiB budget
])
def test_absurd_sizes_are_refused_before_their_memory_is_used(overrides, needs, peak_gib):
    """The parameter budget (1 GiB) refuses before values are drawn: a single huge tensor is never touched,
    and a model of many small blocks stops at the budget (plus the blocks' Python objects and the
    temporaries of drawing the last tensor), far below what it would need.  One process per case, so
    each peak is its own."""
    # The peak is VmHWM of the child's own memory: getrusage's ru_maxrss would include the forking parent's
    # (the test process's) resident set, which Linux carries across exec.
    script = ("import json, re, sys\nfrom minisnn import models\n"
              "try:\n    models.create('dysvit-tiny', **json.loads(sys.argv[1]))\n    error = None\n"
              "except ValueError as exc:\n    error = str(exc)\n"
              "peak = int(re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1))\n"
              "print(json.dumps({'error': error, 'rss_kb': peak}))\n")
    r = subprocess.run([sys.executable, "-c", script, json.dumps(overrides)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["error"] and needs in result["error"] and "choose smaller values" in result["error"]
    assert "\n" not in result["error"]
    assert result["rss_kb"] < peak_gib * 2**20


@pytest.mark.parametrize("argv, says", [
    (("--set", "depht=3"), "has no argument 'depht' (did you mean 'depth'?); it accepts:"),
    (("--set", "dim=abc"), "dim must be an integer"),
    (("--set", "dim=10**9"), "dim must be an integer"),
    (("--set", "dim=1000000000"), "dim=1000000000 is too large to build"),
    (("--set", "patch_size=0"), "patch_size must be an integer >= 1"),
    (("--crop-padding", "1000000000"), "--crop-padding must be at most the image size (32)"),
    (("--seed", "-1"), "--seed must be >= 0"),
])
def test_train_reports_bad_model_values_in_one_line(capsys, tmp_path, argv, says):
    rc, out, err = run(capsys, "train", "--model", "dysvit-tiny", "--out", str(tmp_path / "run"), "--no-progress",
                       *argv)
    assert rc == 2, err
    assert err.count("\n") == 1 and err.startswith("minisnn train: error:") and "Traceback" not in err
    assert says in err
    assert not (tmp_path / "run").exists()          # nothing was created for a run that could not start
