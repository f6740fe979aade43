"""attention_map: attention maps per head and token masks on the patch grid."""
from __future__ import annotations

import numpy as np
import pytest

from minisnn import Tensor
from minisnn.viz import attention_map
from minisnn.viz._figure import new_figure

from .helpers import check_png, colorbars, plot_axes


def test_single_attention_map(tmp_path, rng):
    path = tmp_path / "attn.png"
    A = rng.integers(0, 5, (16, 16)).astype(float)
    fig = attention_map(A, path=path)
    check_png(path)
    (ax,) = plot_axes(fig)
    assert len(colorbars(fig)) == 1
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("key token", "query token")
    assert ax.get_title() == "attention"
    (image,) = ax.get_images()
    np.testing.assert_array_equal(np.asarray(image.get_array()), A)
    assert image.get_clim() == (A.min(), A.max())


def test_heads_share_one_colour_range(rng):
    q = (rng.random((6, 10, 4)) < 0.3).astype(float)
    k = (rng.random((6, 10, 4)) < 0.3).astype(float)
    A = q @ k.transpose(0, 2, 1)
    fig = attention_map(Tensor(A), ncols=3, title="block 0")
    axes = plot_axes(fig)
    assert len(axes) == 6 and len(colorbars(fig)) == 1
    assert [ax.get_title() for ax in axes] == [f"head {h}" for h in range(6)]
    for h, ax in enumerate(axes):
        (image,) = ax.get_images()
        np.testing.assert_array_equal(np.asarray(image.get_array()), A[h])
        assert image.get_clim() == (A.min(), A.max())
    assert fig._suptitle.get_text() == "block 0"


def test_token_mask_from_flat_tokens_is_row_major(tmp_path, rng):
    path = tmp_path / "mask.png"
    mask = (rng.random((4, 64)) < 0.5).astype(float)
    fig = attention_map(mask, kind="token_mask", vmin=0, vmax=1, path=path)
    check_png(path)
    axes = plot_axes(fig)
    assert len(axes) == 4
    for h, ax in enumerate(axes):
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("patch column", "patch row")
        grid = np.asarray(ax.get_images()[0].get_array())
        assert grid[2, 5] == mask[h, 8 * 2 + 5]  # token n = 8·row + col
        np.testing.assert_array_equal(grid, mask[h].reshape(8, 8))
        assert ax.get_title() == f"head {h}: mean {mask[h].mean():.2f}"


def test_token_mask_grid_layouts(rng):
    one = attention_map(np.ones((4, 4)), kind="token_mask")  # a constant map still renders
    assert plot_axes(one)[0].get_title() == "token mask: mean 1.00"
    three = attention_map(rng.random((2, 4, 6)), kind="token_mask")
    assert len(plot_axes(three)) == 2


def test_draws_into_given_axes(rng):
    fig = new_figure((6, 3))
    axes = fig.subplots(1, 2)
    assert attention_map(rng.random((2, 5, 5)), ax=list(axes)) is fig
    assert all(len(ax.get_images()) == 1 for ax in axes)
    with pytest.raises(ValueError, match="needs 2 axes"):
        attention_map(rng.random((2, 5, 5)), ax=axes[0])


@pytest.mark.parametrize(
    "A, kind, match",
    [
        (np.ones((2, 4, 8, 8)), "attention", "select one sample"),
        (np.ones((4, 5)), "attention", r"\[N, N\]"),
        (np.ones((3, 4, 5)), "attention", "pass kind='token_mask'"),
        (np.ones((4, 10)), "token_mask", "square number"),
        (np.ones((2, 3, 4, 4)), "token_mask", "select one sample"),
        (np.ones((4, 4)), "heads", "kind must be one of"),
    ],
)
def test_attention_map_rejects_bad_input(A, kind, match):
    with pytest.raises(ValueError, match=match):
        attention_map(A, kind=kind)
