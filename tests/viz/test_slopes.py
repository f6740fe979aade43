"""slope_heatmap (fixed colour range), upsample_grid and slope_histograms."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from minisnn import Tensor
from minisnn.viz import slope_heatmap, slope_histograms, upsample_grid

from .helpers import check_png, colorbars, plot_axes

CIFAR_MEAN = np.array([0.4914, 0.4822, 0.4465])
CIFAR_STD = np.array([0.2470, 0.2435, 0.2616])


@pytest.fixture
def image(rng):
    return rng.integers(0, 256, (3, 32, 32), dtype=np.uint8)


@pytest.fixture
def k_map(rng):
    return 1.0 + 4.0 / (1.0 + np.exp(-rng.normal(0.0, 1.0, (8, 8))))


def test_slope_heatmap_colour_range_is_exactly_one_to_five(tmp_path, image, k_map):
    path = tmp_path / "precision.png"
    fig = slope_heatmap(image, k_map, path=path)
    check_png(path)
    (ax,) = plot_axes(fig)
    background, overlay = ax.get_images()
    assert overlay.get_clim() == (1.0, 5.0)
    assert overlay.get_alpha() == 0.5
    assert overlay.get_cmap().name == "viridis"
    (cbar_ax,) = colorbars(fig)
    assert cbar_ax.get_ylim() == (1.0, 5.0)
    assert cbar_ax.get_ylabel() == "surrogate slope k"
    assert ax.get_title() == f"k ∈ [{k_map.min():.2f}, {k_map.max():.2f}]"
    np.testing.assert_allclose(np.asarray(background.get_array()), np.moveaxis(image, 0, -1) / 255.0)
    np.testing.assert_allclose(np.asarray(overlay.get_array()), np.kron(k_map, np.ones((4, 4))))


def test_colour_range_does_not_follow_the_data(image):
    flat = np.full(64, 2.0) + np.linspace(0.0, 0.01, 64)  # a nearly flat map keeps the [1, 5] scale
    ax = plot_axes(slope_heatmap(image, flat))[0]
    assert ax.get_images()[1].get_clim() == (1.0, 5.0)
    assert ax.get_title() == "k ∈ [2.00, 2.01]"
    ax = plot_axes(slope_heatmap(image, np.full((8, 8), 6.0), title="SN_in"))[0]
    assert ax.get_title() == "SN_in\nk ∈ [6.00, 6.00] (clipped)"


def test_flat_tokens_equal_row_major_grid(image, k_map):
    a = plot_axes(slope_heatmap(image, k_map))[0].get_images()[1].get_array()
    b = plot_axes(slope_heatmap(image, k_map.reshape(64)))[0].get_images()[1].get_array()
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_normalised_float_image_is_denormalised(image, k_map):
    x = (image / 255.0 - CIFAR_MEAN[:, None, None]) / CIFAR_STD[:, None, None]
    ax = plot_axes(slope_heatmap(Tensor(x.astype(np.float32)), k_map, mean=CIFAR_MEAN, std=CIFAR_STD,
                                 upsample="bilinear", alpha=0.3, cmap="plasma"))[0]
    background, overlay = ax.get_images()
    np.testing.assert_allclose(np.asarray(background.get_array()), np.moveaxis(image, 0, -1) / 255.0, atol=1e-6)
    assert overlay.get_alpha() == 0.3 and overlay.get_cmap().name == "plasma"
    assert overlay.get_clim() == (1.0, 5.0)


def test_batch_gives_one_panel_per_image(tmp_path, rng):
    images = rng.integers(0, 256, (5, 3, 32, 32), dtype=np.uint8)
    ks = rng.uniform(1.0, 5.0, (5, 64))
    path = tmp_path / "batch.png"
    fig = slope_heatmap(images, ks, ncols=3, title="block 1 SN_in", path=path)
    check_png(path)
    axes = plot_axes(fig)
    assert len(axes) == 5 and len(colorbars(fig)) == 1
    for b, ax in enumerate(axes):
        assert ax.get_title() == f"[{b}] k ∈ [{ks[b].min():.2f}, {ks[b].max():.2f}]"
        assert ax.get_images()[1].get_clim() == (1.0, 5.0)
    assert fig._suptitle.get_text() == "block 1 SN_in"


@pytest.mark.parametrize(
    "img, k, kwargs, match",
    [
        (np.zeros((32, 32, 3), np.uint8), np.ones((8, 8)), {}, "channels first"),
        (np.zeros((3, 32, 32), np.uint8), np.ones(60), {}, "row-major"),
        (np.zeros((3, 32, 32), np.uint8), np.ones((2, 8, 8)), {}, "does not match"),
        (np.zeros((3, 32, 32), np.uint8), np.ones((8, 8)), {"mean": CIFAR_MEAN, "std": CIFAR_STD}, "uint8"),
        (np.full((3, 32, 32), -1.5), np.ones((8, 8)), {}, "mean and std"),
        (np.zeros((3, 32, 32)), np.ones((8, 8)), {"mean": CIFAR_MEAN}, "both mean and std"),
        (np.zeros((3, 32, 32)), np.ones((8, 8)), {"mean": 255 * CIFAR_MEAN, "std": CIFAR_STD}, "0-1 scale"),
        (np.zeros((3, 32, 32), np.uint8), np.ones((8, 8)), {"upsample": "cubic"}, "upsample"),
        (np.zeros((3, 32, 32), np.uint8), np.ones((8, 8)), {"vmin": 5, "vmax": 1}, "vmin < vmax"),
        (np.zeros((3, 32, 32), np.uint8), np.ones((8, 8)), {"alpha": 2.0}, "alpha"),
        (np.zeros((3, 32, 32), np.uint8), np.full((8, 8), np.nan), {}, "NaN"),
    ],
)
def test_slope_heatmap_rejects_bad_input(img, k, kwargs, match):
    with pytest.raises(ValueError, match=match):
        slope_heatmap(img, k, **kwargs)


grids = arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 6)), elements=st.floats(1.0, 5.0))


@settings(max_examples=30)
@given(grid=grids, factor=st.integers(1, 5))
def test_upsample_nearest_repeats_patches(grid, factor):
    out = upsample_grid(grid, (grid.shape[0] * factor, grid.shape[1] * factor), "nearest")
    np.testing.assert_array_equal(out, np.kron(grid, np.ones((factor, factor))))


@settings(max_examples=30)
@given(grid=grids, H=st.integers(1, 40), W=st.integers(1, 40))
def test_upsample_bilinear_stays_within_the_grid_range(grid, H, W):
    out = upsample_grid(grid, (H, W), "bilinear")
    assert out.shape == (H, W)
    assert out.min() >= grid.min() - 1e-12 and out.max() <= grid.max() + 1e-12


def test_upsample_bilinear_is_exact_on_linear_ramps():
    grid = np.add.outer(np.arange(8.0), 2 * np.arange(8.0))  # k = r + 2c
    out = upsample_grid(grid, (32, 32), "bilinear")
    centre = (np.arange(32) + 0.5) / 4 - 0.5  # pixel centre in patch coordinates
    inner = (centre >= 0) & (centre <= 7)
    expected = np.add.outer(centre, 2 * centre)
    np.testing.assert_allclose(out[np.ix_(inner, inner)], expected[np.ix_(inner, inner)], atol=1e-12)
    np.testing.assert_allclose(out[0, 0], grid[0, 0])  # clamped at the border


def test_slope_histograms_fractions_and_baseline(tmp_path, rng):
    trained = {"block0.SN_in": rng.uniform(1, 5, (10, 64)), "block1.SN_in": rng.uniform(2, 4, 500)}
    init = {"block0.SN_in": np.full(640, 3.0)}
    path = tmp_path / "hist.png"
    fig = slope_histograms(trained, baseline=init, bins=20, path=path)
    check_png(path)
    axes = plot_axes(fig)
    assert len(axes) == 2
    for ax, (name, vals) in zip(axes, trained.items()):
        assert ax.get_xlabel() == "slope k" and ax.get_ylabel() == "fraction of values"
        assert ax.get_title() == f"{name}: mean k {vals.mean():.2f}"
        assert ax.get_xlim() == (1.0, 5.0)
        filled = [p for p in ax.patches if p.get_fill()]
        assert len(filled) == 20
        np.testing.assert_allclose(sum(p.get_height() for p in filled), 1.0)
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["trained", "init"]
    assert axes[1].get_legend() is None


def test_slope_histograms_reports_values_outside_range():
    ax = plot_axes(slope_histograms({"x": np.array([0.5, 2.0, 3.0, 7.0])}))[0]
    assert ax.get_title() == "x: mean k 3.12, 2 outside"


@pytest.mark.parametrize(
    "data, kwargs, err, match",
    [
        ({}, {}, TypeError, "non-empty dict"),
        ({"a": np.ones(3)}, {"baseline": [1.0]}, TypeError, "baseline"),
        ({"a": np.ones(3)}, {"bins": 0}, ValueError, "bins"),
        ({"a": np.ones(3)}, {"k_range": (5.0, 1.0)}, ValueError, "low < high"),
        ({"a": np.array([])}, {}, ValueError, "empty"),
    ],
)
def test_slope_histograms_rejects_bad_input(data, kwargs, err, match):
    with pytest.raises(err, match=match):
        slope_histograms(data, **kwargs)
