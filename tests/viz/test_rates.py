"""firing_rate_bars and energy_bars: bar values, totals, validation."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minisnn import Tensor
from minisnn.viz import energy_bars, firing_rate_bars

from .helpers import check_png, plot_axes


def _bar_widths(ax):
    return np.array([p.get_width() for p in ax.patches])


def test_firing_rate_bars_png_and_labels(tmp_path):
    path = tmp_path / "rates.png"
    rates = {"patch_embed.lif": 0.21, "block0.q_lif": 0.05, "block0.attn_lif": 0.5, "head": 0.0}
    fig = firing_rate_bars(rates, path=path)
    check_png(path)
    (ax,) = plot_axes(fig)
    assert ax.get_xlabel().startswith("firing rate")
    assert ax.get_ylabel() == "layer"
    assert ax.get_title() == "firing rate per layer"
    assert [t.get_text() for t in ax.get_yticklabels()] == list(rates)
    texts = [t.get_text().strip() for t in ax.texts]
    assert texts == ["21.0%", "5.0%", "50.0%", "0.0%"]


@settings(max_examples=15)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12))
def test_firing_rate_bars_heights_equal_rates(values):
    rates = {f"layer{i}": v for i, v in enumerate(values)}
    ax = plot_axes(firing_rate_bars(rates))[0]
    np.testing.assert_allclose(_bar_widths(ax), values)
    (mean_line,) = [ln for ln in ax.get_lines() if ln.get_label().startswith("mean")]
    np.testing.assert_allclose(mean_line.get_xdata(), np.mean(values))


def test_firing_rate_bars_accepts_scalar_tensors_and_arrays():
    ax = plot_axes(firing_rate_bars({"a": Tensor(np.float64(0.25)), "b": np.float32(0.5)}))[0]
    np.testing.assert_allclose(_bar_widths(ax), [0.25, 0.5])


@pytest.mark.parametrize(
    "rates, err, match",
    [
        ({}, TypeError, "non-empty dict"),
        ([0.1, 0.2], TypeError, "non-empty dict"),
        ({"a": 1.5}, ValueError, r"outside \[0, 1\]"),
        ({"a": -0.1}, ValueError, "outside"),
        ({"a": float("nan")}, ValueError, "outside"),
        ({"a": "high"}, TypeError, "must be a number"),
    ],
)
def test_firing_rate_bars_rejects_bad_input(rates, err, match):
    with pytest.raises(err, match=match):
        firing_rate_bars(rates)


def test_energy_bars_values_and_total(tmp_path):
    path = tmp_path / "energy.png"
    sops = {"block0": 2.0e7, "block1": 1.0e7, "head": 5.0e4}
    macs = {"conv1": 1.5e7, "block0": 1.0e6}
    fig = energy_bars(sops, macs, path=path, title="Spikformer-4-384")
    check_png(path)
    ax_ops, ax_e = plot_axes(fig)
    names = ["block0", "block1", "head", "conv1"]
    assert [t.get_text() for t in ax_e.get_yticklabels()] == names
    assert ax_ops.get_xlabel() == "operations per image (millions)"
    assert ax_e.get_xlabel() == "energy per image (µJ)"
    sop = np.array([2.0e7, 1.0e7, 5.0e4, 0.0])
    mac = np.array([1.0e6, 0.0, 0.0, 1.5e7])
    e_ac, e_mac = 0.9e-6 * sop, 4.6e-6 * mac
    widths = _bar_widths(ax_e)
    np.testing.assert_allclose(widths[:4], e_ac)
    np.testing.assert_allclose(widths[4:], e_mac)
    total = (e_ac + e_mac).sum()
    assert f"total {total:.4g} µJ" in ax_e.get_title()
    np.testing.assert_allclose(_bar_widths(ax_ops), np.concatenate([sop, mac]) / 1e6)


def test_energy_bars_custom_energies_and_sops_only():
    ax_ops, ax_e = plot_axes(energy_bars({"a": 1e6, "b": 3e6}, e_ac_pj=2.0))
    np.testing.assert_allclose(_bar_widths(ax_e)[:2], [2.0, 6.0])
    assert "total 8 µJ" in ax_e.get_title()
    assert len(ax_ops.patches) == 2  # no MAC bars without macs


@pytest.mark.parametrize(
    "sops, macs, kwargs, match",
    [
        ({"a": -1.0}, None, {}, ">= 0"),
        ({"a": 1.0}, {"b": float("inf")}, {}, ">= 0"),
        ({"a": 1.0}, None, {"e_ac_pj": -0.9}, "picojoules"),
    ],
)
def test_energy_bars_rejects_bad_input(sops, macs, kwargs, match):
    with pytest.raises(ValueError, match=match):
        energy_bars(sops, macs, **kwargs)
