"""Property-based parity suite: upstream-style checkpoints, loaded without torch, against the PyTorch oracles.

For each family and a random small configuration (widths, heads, depth, T, thresholds, batch,
image size, stage-3 mode / slope and stability switches), every example:

1. builds the PyTorch oracle with random weights and calibrates its BatchNorms on the test
   batch so that every neuron fires at a rate strictly inside (5 %, 95 %) (asserted);
2. torch.saves it the way the upstream trainers do (timm CheckpointSaver dict or MAE-style
   dict for Spikformer/MSViT/QKFormer, a bare `pytorch_model.bin` for Dy-SViT);
3. loads that file into minisnn with `minisnn.load_checkpoint` (no torch involved) and into a
   fresh oracle with `torch.load`, as the upstream evaluation scripts do;
4. compares logits, the spikes and input current of every neuron, and the gradients of every
   parameter and of the input (eval or training mode, drawn):
   float64: identical spikes, relative differences <= 1e-10;
   float32: >= 99.9 % of spikes equal, and the float32 tolerances of `CRITERIA` when none differs.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("spikingjelly")

from hypothesis import example, given, settings, strategies as st  # noqa: E402

import minisnn  # noqa: E402
from minisnn.parity import compare_with_oracle  # noqa: E402
from minisnn.parity.report import CRITERIA  # noqa: E402

from .upstream_checkpoints import (BUILDERS, MODELS, STYLES, calibrated_oracle, configs, oracle_rates,  # noqa: E402
                                   save_like_upstream, split)

WRAPPER = {"timm": "state_dict", "mae": "model", "hf": None}
EXAMPLES = int(os.environ.get("MINISNN_PARITY_EXAMPLES", "6"))     # per family; raise it for a thorough run


def _load_oracle_like_upstream(family, kwargs, path, style, dtype):
    """A fresh oracle holding the file's weights, read with torch.load as the upstream scripts do."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    state = ckpt if WRAPPER[style] is None else ckpt[WRAPPER[style]]
    oracle = BUILDERS[family](**kwargs).to(dtype)
    oracle.load_state_dict(state)
    return oracle


def _minisnn_model(family, kwargs, state, dtype):
    model = MODELS[family](**kwargs).to_dtype(dtype)
    result = model.load_state_dict(state)
    assert result["missing"] == [] and result["unexpected"] == [], result
    return model


def _check_structure(report, family, model, oracle, rates):
    """Every oracle neuron has a row (in execution order); every parameter is in the gradient table."""
    assert [r.name for r in report.layers] == list(rates), "neuron rows differ from the oracle's neurons"
    assert not report.unmatched_neurons
    assert len(report.layers) == len(model.neurons())
    n_params = len(dict(model.named_parameters()))
    assert sum(g.tensors for g in report.grad_groups) + len(report.unused_params) == n_params
    expected_unused = [k for k in dict(model.named_parameters()) if ".norm1." in k or ".norm2." in k] \
        if family == "spikformer" else []
    assert report.unused_params == expected_unused      # Spikformer's LayerNorms: loaded, never used
    assert not report.grad_presence_mismatch


def run_example(family: str, cfg: dict, style: str, train: bool, seed: int) -> None:
    kwargs, batch = split(cfg)
    calibrated, x = calibrated_oracle(family, kwargs, batch, seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = save_like_upstream(calibrated, family, kwargs, Path(tmp), style)
        state = minisnn.load_checkpoint(path)                      # NumPy only
        assert state.source == "torch-zip" + (f"[{WRAPPER[style]!r}]" if WRAPPER[style] else "")
        oracle = _load_oracle_like_upstream(family, kwargs, path, style, torch.float64)
        oracle32 = _load_oracle_like_upstream(family, kwargs, path, style, torch.float32)

    rates = oracle_rates(oracle.eval(), x)
    assert len(rates) > 0
    for name, r in rates.items():
        assert 0.05 < r < 0.95, f"{family} {cfg}: {name} fires at rate {r:.3f} on the test batch"

    # float64: exact
    model = _minisnn_model(family, kwargs, state, np.float64)
    report = compare_with_oracle(model, oracle, x, name=family, dtype="float64", train=train, seed=seed)
    _check_structure(report, family, model, oracle, rates)
    assert report.spikes_differing == 0, report.format()
    assert report.logits_rel <= 1e-10, report.format()
    assert report.grads_rel <= 1e-10 and report.input_grad_rel <= 1e-10, report.format()
    if train:
        assert report.buffers_rel <= 1e-10, report.format()
    assert report.ok, report.format()
    for row in report.layers:                     # minisnn's rates are the oracle's rates (same spikes)
        if not train:
            assert row.rate == pytest.approx(rates[row.name], abs=1e-12)

    # float32: rounding-level differences; a spike may flip only where the membrane sits at the threshold
    model32 = _minisnn_model(family, kwargs, state, np.float32)
    r32 = compare_with_oracle(model32, oracle32, x, name=family, dtype="float32", train=train, seed=seed)
    _check_structure(r32, family, model32, oracle32, rates)
    check_float32(r32)


def check_float32(r32) -> None:
    """No flip: values within the float32 tolerances (gradients too unless a max-pool window routes its
    gradient elsewhere, which is allowed only between candidates at rounding distance).  Flips: the first
    layer with any differing spike has them all within rounding distance of the threshold (later layers
    inherit the change, and in these narrow random networks one flip can spread to more than 0.1 % of
    all spikes: docs/parity.md)."""
    c = CRITERIA["float32"]
    first = r32.first_divergence
    if first is None:
        assert r32.agreement == 1.0
        assert r32.logits_rel <= c["logits_rtol"], r32.format()
        if r32.pool_differing == 0:
            assert r32.grads_rel <= c["grad_rtol"] and r32.input_grad_rel <= c["grad_rtol"], r32.format()
        else:
            assert max(p.gap for p in r32.pools if p.differing) <= c["rounding_margin"], r32.format()
        assert r32.ok, r32.format()
    else:
        assert first.flip_margin <= c["rounding_margin"], r32.format()
        assert first.agreement >= c["spike_agreement"] or first.differing == 1, r32.format()
    checks = {ch.name: ch.passed for ch in r32.checks()}
    assert checks["first divergence"] is True


def _given(family):
    return given(cfg=configs(family), style=st.sampled_from(STYLES[family]), train=st.booleans(),
                 seed=st.integers(0, 2**16))


@settings(max_examples=EXAMPLES)
@_given("spikformer")
def test_spikformer_parity(cfg, style, train, seed):
    run_example("spikformer", cfg, style, train, seed)


@settings(max_examples=EXAMPLES)
@_given("msvit")
# found by the suite: in float32 one max-pool window's two best candidates differ by 1.2e-7 and the
# implementations order them differently, so the gradient goes to another position (docs/parity.md)
@example(cfg={"T": 3, "img_size": 32, "mlp_ratio": 4, "num_classes": 3, "attn_threshold": 0.75, "embed_dim": 48,
              "num_heads": 2, "depth": 2, "stage3_proj_lif": "merged", "B": 1}, style="timm", train=False, seed=1155)
def test_msvit_parity(cfg, style, train, seed):
    run_example("msvit", cfg, style, train, seed)


@settings(max_examples=EXAMPLES)
@_given("qkformer")
def test_qkformer_parity(cfg, style, train, seed):
    run_example("qkformer", cfg, style, train, seed)


@settings(max_examples=EXAMPLES)
@_given("dysvit")
def test_dysvit_parity(cfg, style, train, seed):
    run_example("dysvit", cfg, style, train, seed)
