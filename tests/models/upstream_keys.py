"""Expected upstream state_dict structure of the three CIFAR-10 models.

`spec_keys(family)` reads the key lists that the upstream code's `state_dict()` prints, recorded
in tests/models/data/upstream_keys_<family>.txt (one "key [shape]" a line); `expected_keys(family)`
rebuilds the same lists from a compact, independent description of the upstream modules, and a
test checks that the two agree.
"""
from __future__ import annotations

import re
from pathlib import Path

RECORDED = Path(__file__).resolve().parent / "data"
PARAM_COUNTS = {"spikformer": 9_330_874, "msvit": 7_558_762, "qkformer": 6_706_234}


def spec_keys(family: str):
    """[(key, shape)] of the upstream `family` model's state_dict, as recorded."""
    rows = []
    for line in (RECORDED / f"upstream_keys_{family}.txt").read_text(encoding="utf-8").splitlines():
        key, shape = line.split(" ", 1)
        rows.append((key, tuple(int(v) for v in re.findall(r"\d+", shape))))
    return rows


def _bn(prefix, c):
    return [(f"{prefix}.weight", (c,)), (f"{prefix}.bias", (c,)), (f"{prefix}.running_mean", (c,)),
            (f"{prefix}.running_var", (c,)), (f"{prefix}.num_batches_tracked", ())]


def _conv(prefix, shape, bias=False):
    return [(f"{prefix}.weight", shape)] + ([(f"{prefix}.bias", (shape[0],))] if bias else [])


def _conv_bn(prefix, name, shape, bias=False, bn_suffix="_bn", conv_suffix="_conv"):
    return _conv(f"{prefix}.{name}{conv_suffix}", shape, bias) + _bn(f"{prefix}.{name}{bn_suffix}", shape[0])


def _hier(E, d1, d2, multiscale, classes=10, depth=4):
    rows = []
    p = "patch_embed1"
    rows += _conv_bn(p, "proj", (d1 // 2, 3, 3, 3)) + _conv_bn(p, "proj1", (d1, d1 // 2, 3, 3))
    rows += _conv_bn(p, "proj_res", (d1, d1 // 2, 1, 1))
    for p, cin, c in (("patch_embed2", d1, d2), ("patch_embed3", d2, E)):
        rows += _conv_bn(p, "proj3", (c, cin, 3, 3)) + _conv_bn(p, "proj4", (c, c, 3, 3))
        rows += _conv_bn(p, "proj_res", (c, cin, 1, 1))

    def mlp(p, c):
        return _conv_bn(p, "mlp.mlp1", (4 * c, c, 1, 1), bias=True) + _conv_bn(p, "mlp.mlp2", (c, 4 * c, 1, 1), True)

    for stage, c in (("stage1", d1), ("stage2", d2)):
        p = f"{stage}.0"
        rows += _conv_bn(p, "tssa.q", (c, c, 1)) + _conv_bn(p, "tssa.k", (c, c, 1))
        if multiscale:
            rows += _conv_bn(p, "tssa.p", (c, c, 3))
        rows += _conv_bn(p, "tssa.proj", (c, c, 1), bias=True) + mlp(p, c)
    for i in range(depth - 2):
        p = f"stage3.{i}"
        for n in ("q", "k", "v"):
            rows += _conv_bn(p, f"ssa.{n}", (E, E, 1))
        rows += _conv_bn(p, "ssa.proj", (E, E, 1), bias=True) + mlp(p, E)
    return rows + [("head.weight", (classes, E)), ("head.bias", (classes,))]


def _spikformer(E=384, classes=10, depth=4):
    p = "patch_embed"
    rows = _conv_bn(p, "proj", (E // 8, 3, 3, 3))
    widths = [E // 8, E // 4, E // 2, E]
    for i in (1, 2, 3):
        rows += _conv(f"{p}.proj_conv{i}", (widths[i], widths[i - 1], 3, 3)) + _bn(f"{p}.proj_bn{i}", widths[i])
    rows += _conv_bn(p, "rpe", (E, E, 3, 3))
    for b in range(depth):
        q = f"block.{b}"
        ln = lambda n: [(f"{q}.{n}.weight", (E,)), (f"{q}.{n}.bias", (E,))]  # noqa: E731
        rows += ln("norm1")
        for n in ("q", "k", "v", "proj"):
            rows += _conv(f"{q}.attn.{n}_linear", (E, E), True) + _bn(f"{q}.attn.{n}_bn", E)
        rows += ln("norm2")
        rows += _conv(f"{q}.mlp.fc1_linear", (4 * E, E), True) + _bn(f"{q}.mlp.fc1_bn", 4 * E)
        rows += _conv(f"{q}.mlp.fc2_linear", (E, 4 * E), True) + _bn(f"{q}.mlp.fc2_bn", E)
    return rows + [("head.weight", (classes, E)), ("head.bias", (classes,))]


def expected_keys(family: str):
    """[(key, shape)] of the upstream CIFAR-10 model of `family`, in registration order."""
    if family == "spikformer":
        return _spikformer()
    if family == "msvit":
        return _hier(384, 192, 192, multiscale=True)
    if family == "qkformer":
        return _hier(384, 96, 192, multiscale=False)
    raise ValueError(family)


def upstream_keys(family: str):
    """The recorded upstream list (equal to the rebuilt one: test_structure checks it)."""
    return spec_keys(family)
