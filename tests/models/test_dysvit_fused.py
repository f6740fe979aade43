"""Dy-SViT's BatchNorm → dynamic-slope neuron as one Function (`BatchNormHypernetSpike`) against the layers it
replaces: BatchNorm, the NaN guard, the slope hypernetwork on the detached membrane and `spike(u, slope=k)`."""
from __future__ import annotations

import numpy as np
import pytest

import minisnn
from minisnn import F, Tensor
from minisnn.models import dysvit_neuron
from minisnn.models.dysvit import DySViT
from minisnn.models.dysvit_neuron import DynamicSlopeNeuron
from minisnn.nn import TokenBatchNorm

GRADS = ("x", "bn.weight", "bn.bias", "hyper.fc1.weight", "hyper.fc1.bias", "hyper.fc2.weight", "hyper.fc2.bias")


def _pair(dtype, training, channels=6, seed=0):
    """A TokenBatchNorm and a dynamic neuron with a hypernetwork that really varies the slope per token."""
    rng = np.random.default_rng(seed)
    bn = TokenBatchNorm(channels, dtype=dtype)
    bn.weight.data[:] = rng.uniform(0.5, 1.5, channels)
    bn.bias.data[:] = rng.normal(0.0, 0.5, channels)
    bn.running_mean[:] = rng.normal(0.0, 0.3, channels)
    bn.running_var[:] = rng.uniform(0.5, 2.0, channels)
    neuron = DynamicSlopeNeuron(channels, threshold=0.8, hidden=5, dtype=dtype)
    neuron.hyper.fc1.weight.data[:] = rng.normal(0.0, 0.7, neuron.hyper.fc1.weight.shape)
    neuron.hyper.fc1.bias.data[:] = rng.normal(0.0, 0.3, 5)
    neuron.hyper.fc2.weight.data[:] = rng.normal(0.0, 1.0, (1, 5))
    bn.train(training)
    neuron.train(training)
    return bn, neuron


def _run(fused, x0, dtype, training):
    bn, neuron = _pair(dtype, training)
    neuron.record = not fused                    # a recording neuron runs its layers one by one
    x = Tensor(x0.copy(), requires_grad=True)
    s = neuron.after_norm(bn, x)
    w = np.random.default_rng(3).normal(size=x0.shape).astype(dtype)
    (s * Tensor(w)).sum().backward()
    params = dict(bn.named_parameters(prefix="bn"), **dict(neuron.named_parameters(prefix="")))
    grads = {"x": x.grad, **{k.lstrip("."): p.grad for k, p in params.items()}}
    state = {k: np.array(v, dtype=np.float64) for k, v in bn.state_dict().items()}
    return s.data, grads, state


@pytest.mark.parametrize("guarded", [False, True])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_function_equals_the_layers(dtype, training, guarded, monkeypatch):
    x0 = np.random.default_rng(1).normal(0.5, 1.5, (4, 9, 6)).astype(dtype)     # [B, N, C]
    if guarded:                                  # eval keeps these to their own values; training spreads NaN
        x0[0, 1, 2], x0[2, 3, 4], x0[3, 0, 0] = np.inf, -np.inf, np.nan          # over the channel's statistics
    calls = []
    apply = dysvit_neuron.BatchNormHypernetSpike.apply
    monkeypatch.setattr(dysvit_neuron.BatchNormHypernetSpike, "apply",
                        lambda *a, **k: calls.append(1) or apply(*a, **k))
    fused = _run(True, x0, dtype, training)
    assert calls == [1]
    layers = _run(False, x0, dtype, training)
    assert calls == [1]
    np.testing.assert_array_equal(fused[0], layers[0])
    assert 0.1 < fused[0].mean() < 0.9
    rtol = 1e-10 if dtype == np.float64 else 2e-4
    for name in GRADS:
        want = layers[1][name]
        assert np.all(np.isfinite(want)) or guarded, name    # an infinite x: NaN sums (0·inf), as in the layers
        np.testing.assert_allclose(fused[1][name], want, rtol=rtol, atol=rtol * float(np.nanmax(np.abs(want))),
                                   err_msg=name)
    assert np.abs(layers[1]["hyper.fc1.weight"]).max() > 1e-3          # the slopes' learning signal is tested
    for key, want in layers[2].items():
        np.testing.assert_allclose(fused[2][key], want, rtol=1e-6 if dtype == np.float32 else 1e-13, err_msg=key)


def test_the_fold_keeps_float32_slopes_close_to_float64():
    """The BatchNorm folded into the hypernetwork's first layer: float32 slope gradients sit as close to
    float64 as the layers' own do (a shifted, scaled input, where the fold's constant is large)."""
    x0 = np.random.default_rng(6).normal(20.0, 3.0, (8, 16, 6))
    grads = {}
    for fused in (True, False):
        for dtype in (np.float32, np.float64):
            grads[fused, dtype] = _run(fused, x0.astype(dtype), dtype, True)[1]["hyper.fc1.weight"]
    exact = grads[False, np.float64]
    assert np.abs(exact).max() > 1e-3
    error = {fused: np.abs(grads[fused, np.float32] - exact).max() / np.abs(exact).max() for fused in (True, False)}
    assert error[True] < 1e-4 and error[True] < 20 * max(error[False], 1e-7), error


@pytest.mark.parametrize("stem", ["patch", "conv"])
def test_dysvit_trains_fused_with_the_numbers_of_the_layers(stem, monkeypatch):
    """With a graph, every BatchNorm → dynamic neuron pair of a Dy-SViT runs as one Function; logits,
    every gradient (the hypernetworks' included) and the BatchNorm buffers equal the layers'."""
    cfg = dict(dim=32, depth=1, heads=2, mlp_ratio=2, stem=stem)
    m = DySViT(**cfg).to_dtype(np.float64)
    rng = np.random.default_rng(4)
    for name, p in m.named_parameters():
        if "hyper.fc2.weight" in name:
            p.data[...] = rng.normal(0.0, 0.5, p.shape)
    state = m.state_dict()
    x = rng.standard_normal((3, 3, 32, 32))
    calls = []
    apply = dysvit_neuron.BatchNormHypernetSpike.apply
    monkeypatch.setattr(dysvit_neuron.BatchNormHypernetSpike, "apply",
                        lambda *a, **k: calls.append(1) or apply(*a, **k))

    def run(fused):
        model = DySViT(**cfg).to_dtype(np.float64)
        model.load_state_dict(state)
        for _, n in model.neurons():
            n.record = not fused
        out = model(x)
        F.cross_entropy(out, np.array([1, 2, 3])).backward()
        return out.data, {k: p.grad for k, p in model.named_parameters()}, model.state_dict()

    fused = run(True)
    assert len(calls) == 6 + (stem == "conv")     # the two pre-norms, q, k, v, the MLP's hidden layer (+ the stem)
    layers = run(False)
    assert len(calls) == 6 + (stem == "conv")
    np.testing.assert_allclose(fused[0], layers[0], rtol=1e-12, atol=1e-14)
    hyper_grads = 0
    for k, g in layers[1].items():
        np.testing.assert_allclose(fused[1][k], g, rtol=1e-9, atol=1e-13, err_msg=k)
        hyper_grads += ".hyper.fc1.weight" in k and np.abs(g).max() > 0
    assert hyper_grads >= 6
    for k, v in layers[2].items():
        np.testing.assert_allclose(np.asarray(fused[2][k], float), np.asarray(v, float), rtol=1e-12, err_msg=k)


def test_nan_without_the_guard_is_refused():
    bn, neuron = _pair(np.float64, False)
    neuron.nan_guard = False
    x0 = np.ones((2, 3, 6))
    x0[1, 1, 1] = np.nan
    with pytest.raises(ValueError, match="spike: membrane u contains NaN"):
        neuron.after_norm(bn, Tensor(x0, requires_grad=True))
    with minisnn.no_grad(), pytest.raises(ValueError, match="membrane u contains NaN"):
        neuron.after_norm(bn, x0)
