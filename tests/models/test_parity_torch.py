"""Forward and backward of every seed model against the PyTorch + SpikingJelly oracle.

Small configurations (dim 64, B = 2, T = 2, 16×16 input), random weights transferred through
the state_dict, BatchNorm calibrated so every neuron fires at a rate in (5 %, 95 %).
float64: identical spikes in every neuron, logits, BN running statistics and all parameter
gradients equal to ~1e-10.  float32: the same weights, spikes agree on >= 99.9 % of the
elements of every neuron and logits/gradients to a stated tolerance.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("spikingjelly")

from spikingjelly.clock_driven.neuron import MultiStepLIFNode  # noqa: E402

from minisnn import Tensor  # noqa: E402
from minisnn.models import MSViT, QKFormer, Spikformer, FiringRateMonitor  # noqa: E402
from tests.oracles.torch_upstream import (  # noqa: E402
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


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    """(name, calibrated float64 state_dict as arrays, images) for one model configuration."""
    cls, build, cfg = CASES[request.param]
    seed = sorted(CASES).index(request.param)
    torch.manual_seed(seed)
    oracle = build(**cfg).double()
    x = torch.randn(B, 3, cfg["img_size"], cfg["img_size"], dtype=torch.float64)
    calibrate_bn(oracle, x, seed=seed)
    return request.param, to_numpy_state(oracle), x


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


def oracle_spikes(oracle, x):
    """{neuron path: output spikes} of one oracle forward (no grad)."""
    out, hooks = {}, []
    for name, m in oracle.named_modules():
        if isinstance(m, MultiStepLIFNode):
            hooks.append(m.register_forward_hook(lambda m, i, o, name=name: out.__setitem__(name, o.detach().numpy())))
    try:
        with torch.no_grad():
            logits = oracle(x).numpy()
    finally:
        for h in hooks:
            h.remove()
    return logits, out


def model_spikes(model, x):
    """{neuron path: output spikes} of one minisnn forward, through the neurons' record flag."""
    neurons = model.neurons()
    for _, m in neurons:
        m.record = True
    try:
        logits = model(x).data
        return logits, {n: np.asarray(m.last_s_seq) for n, m in neurons}
    finally:
        for _, m in neurons:
            m.record = False


def rel_err(a, b, floor=1e-30):
    """max |a − b| / max(max |b|, floor)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), floor))


def grad_floor(grads, relative=1e-6):
    """Scale below which a gradient is rounding noise: a conv bias followed by training-mode BN
    has an exactly zero gradient in real arithmetic, so both sides only hold noise there."""
    return relative * max(float(np.max(np.abs(g))) for g in grads)


# ------------------------------------------------------------------------------- float64
def test_eval_forward_float64_exact_spikes(pair):
    name, model, oracle, x = pair
    oracle.eval(), model.eval()
    ref_logits, ref_spikes = oracle_spikes(oracle, x)
    logits, spikes = model_spikes(model, x.numpy())
    assert sorted(spikes) == sorted(ref_spikes), "neurons differ in name"
    for path in ref_spikes:
        ref = ref_spikes[path]                     # upstream keeps a size-1 axis in the attention masks
        assert spikes[path].size == ref.size, path
        assert np.array_equal(spikes[path].reshape(ref.shape), ref), f"{name}: spikes of {path} differ"
    assert rel_err(logits, ref_logits) < 1e-10


def test_neurons_fire_in_range_and_monitor_agrees(pair):
    name, model, oracle, x = pair
    oracle.eval(), model.eval()
    ref = lif_firing_rates(oracle, x)
    with FiringRateMonitor(model) as mon:
        model(x.numpy())
    rates = mon.rates()
    assert set(rates) == set(ref)
    for path, r in rates.items():
        assert 0.05 < r < 0.95, f"{name}: {path} fires at rate {r:.3f}"
        assert r == pytest.approx(ref[path], abs=1e-12)


def test_train_forward_backward_float64(pair):
    name, model, oracle, x = pair
    oracle.train(), model.train()
    rng = np.random.default_rng(7)
    cot = rng.standard_normal((B, model.num_classes))

    oracle.zero_grad()
    ref_logits = oracle(x)
    (ref_logits * torch.from_numpy(cot)).sum().backward()
    model.zero_grad()
    logits = model(x.numpy())
    logits.backward(cot)

    assert rel_err(logits.data, ref_logits.detach().numpy()) < 1e-10
    ref_state, state = to_numpy_state(oracle), model.state_dict()
    for k, v in ref_state.items():                       # running statistics updated identically
        if "running" in k or "num_batches" in k:
            np.testing.assert_allclose(state[k], v, rtol=1e-12, atol=1e-13, err_msg=k)
    ref_grads = {k: p.grad.numpy() for k, p in oracle.named_parameters() if p.grad is not None}
    grads = {k: p.grad for k, p in model.named_parameters()}
    unused = [k for k in grads if k not in ref_grads]   # Spikformer's LayerNorms never see a gradient
    assert all(".norm" in k for k in unused)
    floor = grad_floor(ref_grads.values())
    for k, g in ref_grads.items():
        assert grads[k] is not None, k
        assert rel_err(grads[k], g, floor) < 1e-9, f"{name}: gradient of {k}"
    assert any(np.abs(g).max() > 0 for k, g in ref_grads.items() if "patch_embed" in k)


def test_input_gradient_float64(pair):
    name, model, oracle, x = pair
    oracle.eval(), model.eval()
    xt = x.clone().requires_grad_(True)
    cot = np.random.default_rng(3).standard_normal((B, model.num_classes))
    (oracle(xt) * torch.from_numpy(cot)).sum().backward()
    xm = Tensor(x.numpy().copy(), requires_grad=True)
    model(xm).backward(cot)
    assert rel_err(xm.grad, xt.grad.numpy()) < 1e-9


# ------------------------------------------------------------------------------- float32
def test_float32_agreement(case):
    name, state, x64 = case
    x = x64.float()
    cot = np.random.default_rng(11).standard_normal((B, CASES[name][2].get("num_classes", 10))).astype(np.float32)

    model, oracle = make_pair(name, state, np.float32)
    oracle.train(), model.train()
    ref_logits, ref_spikes = oracle_spikes(oracle, x)
    logits, spikes = model_spikes(model, x.numpy())
    assert logits.dtype == np.float32
    for path, ref in ref_spikes.items():
        agree = float(np.mean(spikes[path].reshape(ref.shape) == ref))
        assert agree >= F32_SPIKE_AGREEMENT, f"{name}: {path} agrees on only {agree:.5f} of its spikes"
    assert rel_err(logits, ref_logits) < F32_LOGIT_TOL

    model, oracle = make_pair(name, state, np.float32)
    oracle.train(), model.train()
    (oracle(x) * torch.from_numpy(cot)).sum().backward()
    model(x.numpy()).backward(cot)
    params = dict(model.named_parameters())
    ref_grads = {k: p.grad.numpy() for k, p in oracle.named_parameters() if p.grad is not None}
    floor = grad_floor(ref_grads.values(), relative=1e-4)
    for k, g in ref_grads.items():
        assert params[k].grad.dtype == np.float32
        assert rel_err(params[k].grad, g, floor) < F32_GRAD_TOL, f"{name}: gradient of {k}"


# ------------------------------------------------------------------- the stage-3 quirk
@pytest.mark.parametrize("cls, build", [(MSViT, build_msvit), (QKFormer, build_qkformer)])
def test_merged_proj_lif_couples_samples_per_sample_does_not(cls, build):
    cfg = dict(SMALL, num_heads=4, depth=3)
    torch.manual_seed(5)
    oracle = build(**cfg, stage3_proj_lif="merged").double()
    x = torch.randn(3, 3, 16, 16, dtype=torch.float64)
    calibrate_bn(oracle, x, seed=5)
    state = to_numpy_state(oracle)
    merged = cls(**cfg, stage3_proj_lif="merged").to_dtype(np.float64).eval()
    per_sample = cls(**cfg, stage3_proj_lif="per_sample").to_dtype(np.float64).eval()
    merged.load_state_dict(state), per_sample.load_state_dict(state)
    xb = x.numpy()

    batch_m, batch_p = merged(xb).data, per_sample(xb).data
    single_m = np.concatenate([merged(xb[i:i + 1]).data for i in range(3)])
    single_p = np.concatenate([per_sample(xb[i:i + 1]).data for i in range(3)])
    assert np.abs(batch_m - batch_p).max() > 1e-6          # the quirk changes batched outputs
    np.testing.assert_allclose(batch_p, single_p, rtol=1e-12, atol=1e-12)   # per-sample: batch-independent
    np.testing.assert_allclose(single_m, single_p, rtol=1e-12, atol=1e-12)  # B = 1: both modes agree
    assert np.abs(batch_m - single_m).max() > 1e-6
    with torch.no_grad():
        np.testing.assert_allclose(batch_m, oracle.eval()(x).numpy(), rtol=1e-10, atol=1e-12)
