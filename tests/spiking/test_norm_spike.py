"""BatchNorm → spike fused (`spiking.batch_norm_spike`, kernels `bn_spike_*`): Numba == NumPy reference,
and the fused Function == the two layers it replaces (spikes, gradients, running statistics)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minisnn import functional as F
from minisnn.autograd.tensor import Tensor
from minisnn.kernels.jit import bn_spike as jit
from minisnn.kernels.jit.surrogate import SERIAL_BELOW
from minisnn.kernels.reference import bn_spike as ref
from minisnn.kernels.reference.surrogate import KIND_NAMES
from minisnn.models.dysvit import DySViT
from minisnn.models.dysvit_neuron import guard
from minisnn.nn import BatchNorm1d
from minisnn.spiking import BatchNormSpike, batch_norm_spike, spike

seeds = st.integers(0, 2**32 - 1)
# row counts on both sides of the serial / thread-pool switch of the backward kernel (for 50 channels)
ROWS = st.sampled_from([1, 2, 7, 64, SERIAL_BELOW // 50 + 3])


def _case(seed, rows, channels, dtype, n_bad):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.3, 2.0, (rows, channels)).astype(dtype)
    bad = rng.choice(x.size, min(n_bad, x.size), replace=False)
    x.reshape(-1)[bad] = np.array([np.nan, np.inf, -np.inf])[np.arange(bad.size) % 3]
    centre = rng.normal(0.0, 1.0, channels).astype(dtype)
    scale = rng.uniform(0.3, 2.0, channels).astype(dtype)
    shift = rng.normal(0.0, 1.0, channels).astype(dtype)
    mean = rng.normal(0.0, 1.0, channels)
    g = rng.normal(size=x.shape).astype(dtype)
    return x, centre, scale, shift, mean, g


@pytest.mark.parametrize("kind", sorted(KIND_NAMES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=12, deadline=None)
@given(seed=seeds, rows=ROWS, channels=st.sampled_from([1, 3, 50]), threshold=st.sampled_from([0.5, 1.0, -0.25]),
       alpha=st.sampled_from([1.0, 2.0, 4.0]), per_row=st.booleans(), nan_guard=st.booleans(),
       n_bad=st.integers(0, 4))
def test_kernels_jit_match_reference(kind, dtype, seed, rows, channels, threshold, alpha, per_row, nan_guard, n_bad):
    """Spikes bit-identical (the same float operations, no contraction in either); du and the slope
    gradient to rounding of the surrogate; the float64 sums to rounding of Σ|terms|.  NaN is counted only
    without the guard, replaced values only with it.  One slope for all rows, or one per row."""
    x, centre, scale, shift, mean, g = _case(seed, rows, channels, dtype, n_bad)
    (rs, rn, rr), (js, jn, jr) = (m.bn_spike_forward(x, centre, scale, shift, threshold, nan_guard) for m in (ref, jit))
    assert js.dtype == rs.dtype == dtype and js.shape == x.shape
    np.testing.assert_array_equal(js, rs)
    replaced = ~np.isfinite((x - centre) * scale + shift)
    assert jn == rn and (rn == 0 if nan_guard else rn == int(np.isnan(x).sum()))
    assert jr == rr == (int(replaced.sum()) if nan_guard else 0)
    if not nan_guard and n_bad:
        return                                      # NaN is refused by the caller: no backward
    slopes = (alpha * np.random.default_rng(seed).uniform(0.5, 1.5, rows) if per_row else np.full(1, alpha))
    slopes = slopes.astype(dtype)
    for need_alpha in (False, True):
        args = (g, x, centre, scale, shift, mean, threshold, slopes, kind, nan_guard, need_alpha)
        want, got = ref.bn_spike_backward(*args), jit.bn_spike_backward(*args)
        rtol = 2e-6 if dtype == np.float32 else 1e-13
        assert got[0].dtype == dtype and got[1].dtype == got[2].dtype == np.float64
        np.testing.assert_allclose(got[0], want[0], rtol=rtol, atol=rtol * float(np.abs(want[0]).max(initial=0.0)))
        if nan_guard:
            assert not np.any(got[0][replaced])                           # the guard's gradient is 0 there
        centred = np.abs(x.astype(np.float64) - mean)
        centred[~np.isfinite(centred)] = 0.0
        for got_sum, want_sum, weight in ((got[1], want[1], 1.0), (got[2], want[2], centred)):
            scale_of_sum = float((np.abs(want[0]) * weight).sum(axis=0).max(initial=0.0))
            np.testing.assert_allclose(got_sum, want_sum, rtol=rtol, atol=rtol * max(scale_of_sum, 1e-300))
        assert got[3].shape == want[3].shape == ((rows,) if need_alpha else (0,)) and got[3].dtype == dtype
        if need_alpha:
            terms = g * ref.surrogate_d_alpha(ref.membrane(x, centre, scale, shift, nan_guard)[0] - dtype(threshold),
                                              slopes.reshape(-1, 1), kind)
            row_scale = np.abs(terms.astype(np.float64)).sum(axis=1)
            bound = rtol * row_scale + (np.finfo(dtype).tiny if dtype == np.float32 else 0.0)
            assert np.all(np.abs(got[3].astype(np.float64) - want[3]) <= bound + np.abs(want[3]) * rtol), "dα"


def _layers(x, bn, threshold, slope, nan_guard):
    """What the fused call replaces: BatchNorm over the last axis, the guard, then spike()."""
    c = x.shape[-1]
    u = bn(x.reshape(-1, c)).reshape(x.shape)
    return spike(guard(u) if nan_guard else u, slope=slope, threshold=threshold, surrogate="sigmoid")


def _run(fused, x0, state, training, nan_guard, threshold=0.8, slope=2.0):
    bn = BatchNorm1d(x0.shape[-1], dtype=x0.dtype)
    bn.load_state_dict({k: np.array(v, copy=True) for k, v in state.items()})
    bn.train(training)
    x = Tensor(x0.copy(), requires_grad=True)
    s = (batch_norm_spike(x, bn, threshold=threshold, slope=slope, nan_guard=nan_guard) if fused
         else _layers(x, bn, threshold, slope, nan_guard))
    w = np.random.default_rng(3).normal(size=x0.shape)
    (s * Tensor(w.astype(x0.dtype))).sum().backward()
    return s.data, x.grad, bn.weight.grad, bn.bias.grad, {k: np.array(v) for k, v in bn.state_dict().items()}


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("nan_guard", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_function_equals_batch_norm_then_spike(training, nan_guard, dtype):
    rng = np.random.default_rng(1)
    x0 = rng.normal(0.5, 1.5, (4, 9, 6)).astype(dtype)           # [B, N, C]: BatchNorm over C, pooled over B·N
    bn = BatchNorm1d(6, dtype=dtype)
    bn.weight.data[:] = rng.uniform(0.5, 1.5, 6)
    bn.bias.data[:] = rng.normal(0.0, 0.5, 6)
    bn.running_mean[:] = rng.normal(0.0, 0.3, 6)
    bn.running_var[:] = rng.uniform(0.5, 2.0, 6)
    state = bn.state_dict()
    fused, layers = (_run(f, x0, state, training, nan_guard) for f in (True, False))
    np.testing.assert_array_equal(fused[0], layers[0])
    assert 0.1 < fused[0].mean() < 0.9
    rtol = 1e-12 if dtype == np.float64 else 2e-5
    for name, a, b in zip(("dx", "dgamma", "dbeta"), fused[1:4], layers[1:4]):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * float(np.abs(b).max()), err_msg=name)
    for key in layers[4]:                                            # running statistics and the batch count
        np.testing.assert_allclose(fused[4][key], layers[4][key], rtol=rtol, err_msg=key)
    assert int(fused[4]["num_batches_tracked"]) == (1 if training else 0)


def test_non_finite_membranes_follow_the_guard_or_are_refused():
    x0 = np.random.default_rng(2).normal(size=(5, 4)).astype(np.float64)
    x0[1, 2] = np.inf                                   # a whole channel's statistics become NaN
    bn = BatchNorm1d(4, dtype=np.float64)
    bn.eval()                                           # eval: running statistics, so only that value is inf
    x = Tensor(x0, requires_grad=True)
    s = batch_norm_spike(x, bn, nan_guard=True)
    s.sum().backward()
    assert s.data[1, 2] == 1.0 and x.grad[1, 2] == 0.0   # +inf → 1e4 fires; no gradient through the guard
    x0[1, 2] = np.nan
    with pytest.raises(ValueError, match="spike: membrane u contains NaN"):
        batch_norm_spike(x0, bn, nan_guard=False)
    assert batch_norm_spike(x0, bn, nan_guard=True).data[1, 2] == 0.0      # NaN → 0: no spike at θ = 1


def test_bad_input_is_refused_in_one_line():
    bn = BatchNorm1d(4)
    with pytest.raises(ValueError, match=r"does not end in the 4 channels of BatchNorm1d\(4\)"):
        batch_norm_spike(np.zeros((3, 5), np.float32), bn)
    with pytest.raises(TypeError, match="floating-point"):
        batch_norm_spike(np.zeros((3, 4), np.int64), bn)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        batch_norm_spike(np.zeros((1, 4), np.float32), bn)


@pytest.mark.parametrize("stem", ["patch", "conv"])
def test_static_dysvit_runs_fused_with_the_numbers_of_the_two_layers(stem, monkeypatch):
    """A fixed-slope Dy-SViT fuses every BatchNorm → neuron pair of its blocks (and of the conv stem);
    logits, gradients and BatchNorm buffers equal those of the layers run one by one."""
    state = DySViT(dim=32, depth=1, heads=2, mlp_ratio=2, dynamic_slope=False, stem=stem).to_dtype(np.float64)
    state = state.state_dict()
    x = np.random.default_rng(4).standard_normal((3, 3, 32, 32))
    calls = []
    forward = BatchNormSpike.forward
    monkeypatch.setattr(BatchNormSpike, "forward", staticmethod(lambda *a, **k: calls.append(1) or forward(*a, **k)))

    def run(fused):
        m = DySViT(dim=32, depth=1, heads=2, mlp_ratio=2, dynamic_slope=False, stem=stem).to_dtype(np.float64)
        m.load_state_dict(state)
        if not fused:
            for _, n in m.neurons():
                n.record = True                       # a recording neuron runs its two layers one by one
        out = m(x)
        F.cross_entropy(out, np.array([1, 2, 3])).backward()
        return out.data, {k: p.grad for k, p in m.named_parameters()}, m.state_dict()

    fused = run(True)
    assert len(calls) == 6 + (stem == "conv")     # the two pre-norms, q, k, v, the MLP's hidden layer (+ the stem)
    calls.clear()
    layers = run(False)
    assert not calls
    np.testing.assert_allclose(fused[0], layers[0], rtol=1e-12, atol=1e-14)
    for k, g in layers[1].items():
        np.testing.assert_allclose(fused[1][k], g, rtol=1e-10, atol=1e-13, err_msg=k)
    for k, v in layers[2].items():
        np.testing.assert_allclose(np.asarray(fused[2][k], float), np.asarray(v, float), rtol=1e-12, err_msg=k)


def test_a_dynamic_slope_neuron_with_a_graph_runs_the_hypernetwork_fused_function(monkeypatch):
    """With a graph the slope matters, so a dynamic neuron runs `BatchNormHypernetSpike` (its numbers:
    tests/models/test_dysvit_fused.py), not the fixed-slope `BatchNormSpike`."""
    from minisnn.models import dysvit_neuron

    calls = {"fixed": 0, "dynamic": 0}
    fixed, dynamic = BatchNormSpike.forward, dysvit_neuron.BatchNormHypernetSpike.forward

    def count(name, forward):
        return staticmethod(lambda *a, **k: calls.__setitem__(name, calls[name] + 1) or forward(*a, **k))
    monkeypatch.setattr(BatchNormSpike, "forward", count("fixed", fixed))
    monkeypatch.setattr(dysvit_neuron.BatchNormHypernetSpike, "forward", count("dynamic", dynamic))
    m = DySViT(dim=32, depth=1, heads=2, mlp_ratio=2)
    m(np.zeros((2, 3, 32, 32), np.float32))
    assert calls == {"fixed": 0, "dynamic": 6}
