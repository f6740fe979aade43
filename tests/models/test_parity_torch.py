"""Forward and backward of every seed model against the PyTorch + SpikingJelly oracle.

Small configurations (dim 64, B = 2, T = 2, 16×16 input), random weights transferred through
the state_dict, BatchNorm calibrated so every neuron fires at a rate in (5 %, 95 %).
float64 (all five configurations, eval and train mode): identical spikes in every neuron;
logits, BN running statistics, all parameter gradients and the input gradient equal to
~1e-10.  float32 (each model once, each stage-3 mode once): the same weights, spikes agree
on >= 99.9 % of the elements of every neuron, logits and gradients to the tolerances below.
"""
from __future__ import annotations

import functools

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("spikingjelly")

from minisnn import Tensor  # noqa: E402
from minisnn.models import MSViT, QKFormer, Spikformer, FiringRateMonitor  # noqa: E402
from minisnn.parity.oracles.calibrate import is_oracle_neuron  # noqa: E402
from minisnn.parity.oracles.upstream import (  # noqa: E402
    build_msvit, build_qkformer, build_spikformer, calibrate_bn, lif_firing_rates)

SMALL = dict(embed_dim=64, mlp_ratio=4, T=2, img_size=16)
CASES = {
    "spikformer": (Spikformer, build_spikformer, dict(SMALL, num_heads=2, depth=2)),
    "msvit-merged": (MSViT, build_msvit, dict(SMALL, num_heads=4, depth=3, stage3_proj_lif="merged")),
    "msvit-per_sample": (MSViT, build_msvit, dict(SMALL, num_heads=4, depth=3, stage3_proj_lif="per_sample")),
    "qkformer-merged": (QKFormer, build_qkformer, dict(SMALL, num_heads=4, depth=3, stage3_proj_lif="merged")),
    "qkformer-per_sample": (QKFormer, build_qkformer,
                            dict(SMALL, num_heads=4, depth=3, stage3_proj_lif="per_sample")),
}
B = 2
F32_LOGIT_TOL = 2e-4      # max |Δ logits| / max |logits| in float32
F32_GRAD_TOL = 2e-3       # max |Δ grad| / max |grad| per parameter in float32
F32_SPIKE_AGREEMENT = 0.999


def to_numpy_state(oracle):
    return {k: v.detach().cpu().numpy().copy() for k, v in oracle.state_dict().items()}


@functools.lru_cache(maxsize=None)
def calibrated(name):
    """(calibrated float64 state_dict as arrays, images) for configuration `name`."""
    cls, build, cfg = CASES[name]
    seed = sorted(CASES).index(name)
    torch.manual_seed(seed)
    oracle = build(**cfg).double()
    x = torch.randn(B, 3, cfg["img_size"], cfg["img_size"], dtype=torch.float64)
    calibrate_bn(oracle, x, seed=seed)
    return to_numpy_state(oracle), x


@pytest.fixture(params=sorted(CASES))
def case(request):
    return (request.param, *calibrated(request.param))


def make_pair(name, state, dtype=np.float64):
    """Fresh (minisnn model, oracle) of configuration `name` holding `state`, in `dtype`."""
    cls, build, cfg = CASES[name]
    oracle = build(**cfg).to(torch.float64 if dtype == np.float64 else torch.float32)
    oracle.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    model = cls(**cfg).to_dtype(dtype)
    model.load_state_dict(state)
    return model, oracle


@pytest.fixture
def pair(case):
    name, state, x = case
    model, oracle = make_pair(name, state)
    return name, model, oracle, x


def run_oracle(oracle, x, cot):
    """One oracle forward (+ backward of <cot, logits> when cot is given).

    Returns logits, {neuron path: spikes}, {parameter: grad}, input grad (or None)."""
    spikes, hooks = {}, []
    for name, m in oracle.named_modules():
        if is_oracle_neuron(m):
            hooks.append(m.register_forward_hook(
                lambda m, i, o, name=name: spikes.__setitem__(name, o.detach().numpy().copy())))
    xt = x.clone().requires_grad_(cot is not None)
    oracle.zero_grad()
    try:
        logits = oracle(xt)
    finally:
        for h in hooks:
            h.remove()
    grads, dx = {}, None
    if cot is not None:
        (logits * torch.from_numpy(cot)).sum().backward()
        grads = {k: p.grad.numpy() for k, p in oracle.named_parameters() if p.grad is not None}
        dx = xt.grad.numpy()
    return logits.detach().numpy(), spikes, grads, dx


def run_model(model, x, cot):
    """The same for the minisnn model; spikes come through the neurons' record flag."""
    neurons = model.neurons()
    for _, m in neurons:
        m.record = True
    xm = Tensor(x.numpy().copy(), requires_grad=cot is not None)
    model.zero_grad()
    try:
        logits = model(xm)
        spikes = {n: np.asarray(m.last_s_seq) for n, m in neurons}
    finally:
        for _, m in neurons:
            m.record = False
    grads, dx = {}, None
    if cot is not None:
        logits.backward(cot)
        grads = {k: p.grad for k, p in model.named_parameters()}
        dx = xm.grad
    return logits.data, spikes, grads, dx


def rel_err(a, b, floor=1e-30):
    """max |a − b| / max(max |b|, floor)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), floor))


def grad_floor(grads, relative=1e-6):
    """Scale below which a gradient is rounding noise: a conv bias followed by training-mode BN
    has an exactly zero gradient in real arithmetic, so both sides only hold noise there."""
    return relative * max(float(np.max(np.abs(g))) for g in grads)


def check_grads(name, grads, ref_grads, tol, floor_relative):
    unused = [k for k in grads if k not in ref_grads]     # Spikformer's LayerNorms never see a gradient
    assert all(".norm" in k for k in unused), unused
    floor = grad_floor(ref_grads.values(), floor_relative)
    for k, g in ref_grads.items():
        assert grads[k] is not None and grads[k].dtype == g.dtype, k
        assert rel_err(grads[k], g, floor) < tol, f"{name}: gradient of {k}"
    assert any(np.abs(g).max() > 0 for k, g in ref_grads.items() if "patch_embed1" in k or "patch_embed." in k)


def check_spikes(name, spikes, ref_spikes, agreement=1.0):
    assert sorted(spikes) == sorted(ref_spikes), "neurons differ in name"
    for path, ref in ref_spikes.items():            # upstream keeps a size-1 axis in the attention masks
        assert spikes[path].size == ref.size, path
        agree = float(np.mean(spikes[path].reshape(ref.shape) == ref))
        assert agree >= agreement, f"{name}: {path} agrees on only {agree:.5f} of its spikes"


# ------------------------------------------------------------------------------- float64
def test_eval_float64_exact_spikes_logits_and_gradients(pair):
    """Eval mode (BN running statistics, as with a checkpoint): forward and backward."""
    name, model, oracle, x = pair
    oracle.eval(), model.eval()
    cot = np.random.default_rng(3).standard_normal((B, model.num_classes))
    ref_logits, ref_spikes, ref_grads, ref_dx = run_oracle(oracle, x, cot)
    logits, spikes, grads, dx = run_model(model, x, cot)
    check_spikes(name, spikes, ref_spikes)
    for path, s in ref_spikes.items():               # calibration makes every neuron fire, never saturate
        assert 0.05 < s.mean() < 0.95, f"{name}: {path} fires at rate {s.mean():.3f}"
    assert rel_err(logits, ref_logits) < 1e-10
    check_grads(name, grads, ref_grads, 1e-9, 1e-6)
    assert rel_err(dx, ref_dx) < 1e-9


def test_train_float64_running_stats_and_gradients(pair):
    """Training mode: BN batch statistics pooled over T·B, running statistics updated."""
    name, model, oracle, x = pair
    oracle.train(), model.train()
    cot = np.random.default_rng(7).standard_normal((B, model.num_classes))
    ref_logits, ref_spikes, ref_grads, ref_dx = run_oracle(oracle, x, cot)
    logits, spikes, grads, dx = run_model(model, x, cot)
    check_spikes(name, spikes, ref_spikes)
    assert rel_err(logits, ref_logits) < 1e-10
    ref_state, state = to_numpy_state(oracle), model.state_dict()
    for k, v in ref_state.items():
        if "running" in k or "num_batches" in k:
            np.testing.assert_allclose(state[k], v, rtol=1e-12, atol=1e-13, err_msg=k)
    check_grads(name, grads, ref_grads, 1e-9, 1e-6)
    assert rel_err(dx, ref_dx) < 1e-9


# ------------------------------------------------------------------------------- float32
@pytest.mark.parametrize("name", ["spikformer", "msvit-merged", "qkformer-per_sample"])  # each model, each mode
def test_train_float32_agreement(name):
    state, x64 = calibrated(name)
    model, oracle = make_pair(name, state, np.float32)
    oracle.train(), model.train()
    x = x64.float()
    cot = np.random.default_rng(11).standard_normal((B, model.num_classes)).astype(np.float32)
    ref_logits, ref_spikes, ref_grads, ref_dx = run_oracle(oracle, x, cot)
    logits, spikes, grads, dx = run_model(model, x, cot)
    assert logits.dtype == np.float32 and dx.dtype == np.float32
    check_spikes(name, spikes, ref_spikes, F32_SPIKE_AGREEMENT)
    assert rel_err(logits, ref_logits) < F32_LOGIT_TOL
    check_grads(name, grads, ref_grads, F32_GRAD_TOL, 1e-4)


def test_monitor_rates_equal_oracle_rates():
    """FiringRateMonitor reports the same per-neuron rates as hooks on the oracle's neurons."""
    name = "msvit-merged"
    cls, build, cfg = CASES[name]
    torch.manual_seed(1)
    oracle = build(**cfg).double()
    x = torch.randn(B, 3, cfg["img_size"], cfg["img_size"], dtype=torch.float64)
    calibrate_bn(oracle, x, seed=1)
    model, oracle = make_pair(name, to_numpy_state(oracle))
    ref = lif_firing_rates(oracle.eval(), x)
    with FiringRateMonitor(model.eval()) as mon:
        model(x.numpy())
    assert set(mon.rates()) == set(ref)
    for path, r in mon.rates().items():
        assert r == pytest.approx(ref[path], abs=1e-12), path


# ------------------------------------------------------------------- the stage-3 quirk
@pytest.mark.parametrize("cls, build", [(MSViT, build_msvit), (QKFormer, build_qkformer)])
def test_merged_proj_lif_couples_samples_per_sample_does_not(cls, build):
    cfg = dict(SMALL, num_heads=4, depth=3)
    torch.manual_seed(5)
    oracle = build(**cfg, stage3_proj_lif="merged").double()
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    calibrate_bn(oracle, x, seed=5)
    state = to_numpy_state(oracle)
    merged = cls(**cfg, stage3_proj_lif="merged").to_dtype(np.float64).eval()
    per_sample = cls(**cfg, stage3_proj_lif="per_sample").to_dtype(np.float64).eval()
    merged.load_state_dict(state), per_sample.load_state_dict(state)
    xb = x.numpy()

    batch_m, batch_p = merged(xb).data, per_sample(xb).data
    single_m = np.concatenate([merged(xb[i:i + 1]).data for i in range(2)])
    single_p = np.concatenate([per_sample(xb[i:i + 1]).data for i in range(2)])
    assert np.abs(batch_m - batch_p).max() > 1e-6          # the quirk changes batched outputs
    np.testing.assert_allclose(batch_p, single_p, rtol=1e-12, atol=1e-12)   # per-sample: batch-independent
    np.testing.assert_allclose(single_m, single_p, rtol=1e-12, atol=1e-12)  # B = 1: both modes agree
    assert np.abs(batch_m - single_m).max() > 1e-6
    with torch.no_grad():
        np.testing.assert_allclose(batch_m, oracle.eval()(x).numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("family, build", [("spikformer", build_spikformer), ("msvit", build_msvit),
                                           ("qkformer", build_qkformer)])
def test_full_size_oracles_have_the_upstream_state_dict(family, build):
    from .upstream_keys import PARAM_COUNTS, upstream_keys

    oracle = build()
    assert [(k, tuple(v.shape)) for k, v in oracle.state_dict().items()] == upstream_keys(family)
    assert sum(p.numel() for p in oracle.parameters()) == PARAM_COUNTS[family]
