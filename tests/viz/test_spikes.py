"""spike_raster and membrane_trace: rendering, what is drawn, input validation."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure

from minisnn import Tensor
from minisnn.viz import membrane_trace, spike_raster
from minisnn.viz._figure import new_figure

from .helpers import check_png, plot_axes


def _spikes(rng, shape, p=0.3):
    return (rng.random(shape) < p).astype(np.float32)


def test_spike_raster_renders_png(tmp_path, rng):
    path = tmp_path / "raster.png"
    fig = spike_raster(_spikes(rng, (6, 2, 4, 5)), path=path)
    check_png(path)
    assert isinstance(fig, Figure)
    (ax,) = plot_axes(fig)
    assert ax.get_xlabel() == "time step t"
    assert ax.get_ylabel() == "neuron"
    assert "spike raster" in ax.get_title()
    assert "20 neurons" in ax.get_title()


@settings(max_examples=15)
@given(T=st.integers(1, 12), N=st.integers(1, 30), seed=st.integers(0, 2**16))
def test_spike_raster_draws_exact_spike_matrix(T, N, seed):
    s = _spikes(np.random.default_rng(seed), (T, N))
    fig = spike_raster(s)
    ax = plot_axes(fig)[0]
    (image,) = ax.get_images()
    np.testing.assert_array_equal(np.asarray(image.get_array()), s.T)
    assert f"firing rate {100 * s.astype(np.float64).mean():.1f}%" in ax.get_title()


def test_spike_raster_selects_sample_and_flattens(rng):
    s = _spikes(rng, (4, 3, 2, 5))
    fig = spike_raster(Tensor(s), sample=2)
    (image,) = plot_axes(fig)[0].get_images()
    np.testing.assert_array_equal(np.asarray(image.get_array()), s[:, 2].reshape(4, 10).T)


def test_spike_raster_caps_neurons(rng):
    s = _spikes(rng, (5, 300))
    ax = plot_axes(spike_raster(s, max_neurons=100))[0]
    assert np.asarray(ax.get_images()[0].get_array()).shape == (100, 5)
    assert "first 100 of 300 neurons" in ax.get_title()
    # the reported rate is over all neurons, not only the drawn ones
    assert f"{100 * s.astype(np.float64).mean():.1f}%" in ax.get_title()


def test_spike_raster_draws_into_given_axes(rng):
    fig = new_figure((6, 3))
    left, right = fig.subplots(1, 2)
    out = spike_raster(_spikes(rng, (4, 8)), ax=right)
    assert out is fig
    assert len(right.get_images()) == 1 and len(left.get_images()) == 0


@pytest.mark.parametrize(
    "bad, kwargs, match",
    [
        (np.ones(5), {}, r"\[T, N\]"),
        (np.full((3, 4), 0.5), {}, "binary"),
        (np.ones((3, 2, 4)), {"sample": 2}, "sample=2 is out of range"),
        (np.array([[0.0, np.nan]]), {}, "NaN"),
        (np.ones((3, 4)), {"max_neurons": 0}, "max_neurons"),
    ],
)
def test_spike_raster_rejects_bad_input(bad, kwargs, match):
    with pytest.raises(ValueError, match=match):
        spike_raster(bad, **kwargs)


def _lif_trace(rng, T=10, N=6, tau=2.0, theta=1.0):
    """Charge h_seq and spikes s_seq of a hard-reset LIF driven by noise."""
    x = rng.normal(0.8, 0.8, (T, N))
    v = np.zeros(N)
    hs, ss = [], []
    for t in range(T):
        h = v + (x[t] - v) / tau
        s = (h >= theta).astype(np.float64)
        v = h * (1 - s)
        hs.append(h)
        ss.append(s)
    return np.array(hs), np.array(ss)


def test_membrane_trace_renders_lines_threshold_and_spikes(tmp_path, rng):
    h_seq, s_seq = _lif_trace(rng)
    path = tmp_path / "trace.png"
    fig = membrane_trace(h_seq, s_seq, v_threshold=1.0, v_reset=0.0, neurons=[0, 2, 5], path=path)
    check_png(path)
    (ax,) = plot_axes(fig)
    assert ax.get_xlabel() == "time step t"
    assert ax.get_ylabel() == "membrane potential"
    lines = ax.get_lines()
    traces = [ln for ln in lines if ln.get_label().startswith("neuron")]
    assert [ln.get_label() for ln in traces] == ["neuron 0", "neuron 2", "neuron 5"]
    for ln, n in zip(traces, [0, 2, 5]):
        np.testing.assert_allclose(ln.get_ydata(), h_seq[:, n])
    threshold = [ln for ln in lines if ln.get_label().startswith("threshold")]
    assert len(threshold) == 1 and np.allclose(threshold[0].get_ydata(), 1.0)
    markers = [ln for ln in lines if ln.get_marker() == "*"]
    drawn = sum(len(ln.get_xdata()) for ln in markers)
    assert drawn == int(s_seq[:, [0, 2, 5]].sum())
    for ln, n in zip(markers, [0, 2, 5]):  # stars sit on the trace where the neuron fired
        np.testing.assert_array_equal(ln.get_xdata(), np.flatnonzero(s_seq[:, n]))
        assert np.all(np.asarray(ln.get_ydata()) >= 1.0)
    assert f"{drawn} shown" in ax.get_title()


def test_membrane_trace_single_neuron_and_default_lines(rng):
    h_seq, _ = _lif_trace(rng, N=9)
    ax = plot_axes(membrane_trace(h_seq[:, 0]))[0]
    assert [ln.get_label() for ln in ax.get_lines() if ln.get_label().startswith("neuron")] == ["neuron 0"]
    ax = plot_axes(membrane_trace(h_seq, max_lines=4))[0]
    assert sum(ln.get_label().startswith("neuron") for ln in ax.get_lines()) == 4


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        ({"s_seq": np.zeros((10, 5))}, ValueError, "must equal v_seq shape"),
        ({"s_seq": np.full((10, 6), 2.0)}, ValueError, "binary"),
        ({"neurons": [7]}, ValueError, "out of range"),
        ({"neurons": [0.5]}, TypeError, "integer indices"),
    ],
)
def test_membrane_trace_rejects_bad_input(rng, kwargs, err, match):
    h_seq, _ = _lif_trace(rng)
    with pytest.raises(err, match=match):
        membrane_trace(h_seq, **kwargs)
