"""surrogate_curves: panels per family, curves per slope, the derivative consistency report."""
from __future__ import annotations

import re

import numpy as np
import pytest

from minisnn.viz import surrogate_curves

from .helpers import check_png, plot_axes


def sigmoid_primitive(x, alpha):
    return 1.0 / (1.0 + np.exp(-alpha * x))


def sigmoid_derivative(x, alpha):
    p = sigmoid_primitive(x, alpha)
    return alpha * p * (1.0 - p)


class ATanFamily:
    """Duck-typed object, the way a surrogate class exposes its curves."""

    def primitive(self, x, alpha):
        return 0.5 + np.arctan(0.5 * np.pi * alpha * x) / np.pi

    def derivative(self, x, alpha):
        return 0.5 * alpha / (1.0 + (0.5 * np.pi * alpha * x) ** 2)


def _reported_error(ax) -> float:
    return float(re.search(r"= ([0-9.e+-]+)$", ax.get_title()).group(1))


def test_surrogate_curves_layout_and_png(tmp_path):
    path = tmp_path / "surrogates.png"
    fig = surrogate_curves({"sigmoid": (sigmoid_primitive, sigmoid_derivative), "atan": ATanFamily()},
                           slopes={"sigmoid": [1.0, 4.0, 8.0], "atan": [2.0]}, path=path, title="families")
    check_png(path)
    axes = plot_axes(fig)
    assert len(axes) == 4
    assert fig._suptitle.get_text() == "families"
    titles = [ax.get_title() for ax in axes]
    assert titles[0].startswith("sigmoid: forward primitive") and titles[2].startswith("atan: forward primitive")
    assert titles[1].startswith("sigmoid: surrogate") and titles[3].startswith("atan: surrogate")
    for ax in axes:
        assert ax.get_xlabel() == "x = u − θ"
    assert [ax.get_ylabel() for ax in axes[:2]] == ["Φ_α(x)", "g_α(x)"]
    # primitive panels: the step plus one curve per slope; derivative panels: one curve per slope
    curves = lambda ax: [ln for ln in ax.get_lines() if ln.get_label().startswith(("α=", "step"))]
    assert len(curves(axes[0])) == 4 and len(curves(axes[1])) == 3
    assert len(curves(axes[2])) == 2 and len(curves(axes[3])) == 1


def test_surrogate_curves_plot_the_given_functions():
    x = np.linspace(-2, 2, 81)
    fig = surrogate_curves({"sigmoid": (sigmoid_primitive, sigmoid_derivative)}, slopes=[4.0], x=x)
    ax_p, ax_g = plot_axes(fig)
    (phi,) = [ln for ln in ax_p.get_lines() if ln.get_label() == "α=4"]
    (g,) = [ln for ln in ax_g.get_lines() if ln.get_label() == "α=4"]
    np.testing.assert_allclose(phi.get_ydata(), sigmoid_primitive(x, 4.0))
    np.testing.assert_allclose(g.get_ydata(), sigmoid_derivative(x, 4.0))
    (step,) = [ln for ln in ax_p.get_lines() if ln.get_label() == "step H(x)"]
    np.testing.assert_array_equal(step.get_ydata(), (x >= 0).astype(float))


def test_derivative_check_separates_matching_and_mismatched_pairs():
    good = surrogate_curves({"s": (sigmoid_primitive, sigmoid_derivative)}, slopes=[1.0, 4.0])
    # a classic slip: the derivative without the chain-rule factor alpha
    bad = surrogate_curves({"s": (sigmoid_primitive, lambda x, a: sigmoid_derivative(x, a) / a)}, slopes=[1.0, 4.0])
    assert _reported_error(plot_axes(good)[1]) < 1e-2
    assert _reported_error(plot_axes(bad)[1]) > 0.5


@pytest.mark.parametrize(
    "surrogates, slopes, kwargs, err, match",
    [
        ({}, [1.0], {}, TypeError, "non-empty dict"),
        ({"s": sigmoid_primitive}, [1.0], {}, TypeError, "primitive_fn, derivative_fn"),
        ({"s": (sigmoid_primitive, sigmoid_derivative)}, [0.0], {}, ValueError, "positive"),
        ({"s": (sigmoid_primitive, sigmoid_derivative)}, {"t": [1.0]}, {}, ValueError, "no entry"),
        ({"s": (sigmoid_primitive, lambda x, a: np.ones(3))}, [1.0], {}, ValueError, "returned shape"),
        ({"s": (sigmoid_primitive, sigmoid_derivative)}, [1.0], {"x": [1.0, 0.0, 2.0]}, ValueError, "increasing"),
    ],
)
def test_surrogate_curves_rejects_bad_input(surrogates, slopes, kwargs, err, match):
    with pytest.raises(err, match=match):
        surrogate_curves(surrogates, slopes, **kwargs)
