"""Dy-SViT reconstruction: sizes, the slope hypernetwork's learning signal, and parity with a PyTorch oracle."""
from __future__ import annotations

import numpy as np
import pytest

import minisnn
from minisnn import F, Tensor, models
from minisnn.models.dysvit import DySViT
from minisnn.models.dysvit_neuron import DynamicSlopeNeuron


def test_parameter_counts_match_the_design():
    assert DySViT().num_parameters() == 3_370_150
    assert DySViT(dynamic_slope=False).num_parameters() == 3_205_386
    assert models.create("dysvit-cifar10").num_parameters() == 3_370_150
    assert models.create("dysvit-static-cifar10").num_parameters() == 3_205_386


def test_28_neurons_and_slopes_start_at_two():
    m = DySViT(dim=32, depth=4, heads=2)
    neurons = m.neurons()
    assert len(neurons) == 28
    for _, n in neurons:
        n.record = True
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    m(x)
    for _, n in neurons:
        assert n.last_slope.shape == (2, 64)
        np.testing.assert_allclose(n.last_slope, 2.0, rtol=1e-6)


def test_hypernetwork_gets_a_gradient_from_the_first_step():
    m = DySViT(dim=32, depth=1, heads=2, num_classes=10)
    x = np.random.default_rng(1).standard_normal((4, 3, 32, 32)).astype(np.float32)
    loss = F.cross_entropy(m(x), np.array([0, 1, 2, 3]))
    loss.backward()
    grads = {name: p.grad for name, p in m.named_parameters() if ".hyper." in name}
    assert grads, "no hypernetwork parameters"
    # w2 = 0 at init, so only fc2 (weight, bias) receive a gradient at step one
    nonzero = [n for n, g in grads.items() if g is not None and np.abs(g).sum() > 0]
    assert any(n.endswith("hyper.fc2.bias") for n in nonzero)
    assert any(n.endswith("hyper.fc2.weight") for n in nonzero)


def test_hypernetwork_does_not_change_logits():
    """The slope only shapes the backward pass: with gradients on (hypernetworks evaluated), logits stay put."""
    m = DySViT(dim=32, depth=2, heads=2)
    m.eval()
    x = np.random.default_rng(2).standard_normal((2, 3, 32, 32)).astype(np.float32)
    for _, n in m.neurons():
        n.record = True
    a = m(x).data
    slopes_before = [n.last_slope.copy() for _, n in m.neurons()]
    rng = np.random.default_rng(3)
    for _, n in m.neurons():
        n.hyper.fc2.weight.data[...] = rng.standard_normal(n.hyper.fc2.weight.shape) * 3
    b = m(x).data
    slopes_after = [n.last_slope for _, n in m.neurons()]
    assert max(np.abs(sa - sb).max() for sa, sb in zip(slopes_after, slopes_before)) > 0.1  # slopes really moved
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("stem", ["patch", "conv"])
def test_without_a_graph_dynamic_neurons_run_the_fused_batch_norm_spike(stem, monkeypatch):
    """No graph: the slope is not needed, so every BN → neuron pair runs as one `BatchNormSpike`, with the
    logits of the two-layer path (a recording neuron keeps it) to the bit."""
    from minisnn.spiking import norm_spike

    m = DySViT(dim=32, depth=2, heads=2, stem=stem)
    m.eval()
    x = np.random.default_rng(7).standard_normal((3, 3, 32, 32)).astype(np.float32)
    fused = []
    apply = norm_spike.BatchNormSpike.apply
    monkeypatch.setattr(norm_spike.BatchNormSpike, "apply", lambda *a, **k: fused.append(1) or apply(*a, **k))
    with minisnn.no_grad():
        a = m(x).data
    assert len(fused) == 6 * 2 + (stem == "conv")      # per block: 2 pre-norms, q, k, v, the MLP's hidden layer
    for _, n in m.neurons():
        n.record = True
    fused.clear()
    with minisnn.no_grad():
        b = m(x).data
    assert not fused
    np.testing.assert_array_equal(a, b)


def test_bad_input_is_refused():
    m = DySViT(dim=16, depth=1, heads=2)
    with pytest.raises(ValueError, match="expects images"):
        m(np.zeros((2, 1, 32, 32), dtype=np.float32))
    with pytest.raises(ValueError, match="expects images"):
        m(np.zeros((2, 3, 28, 28), dtype=np.float32))
    with pytest.raises(ValueError, match="T = 1"):
        DySViT(T=4)
    with pytest.raises(ValueError, match="divisible"):
        DySViT(dim=30, heads=4)


def test_nan_guard_keeps_logits_finite():
    m = DySViT(dim=16, depth=1, heads=2)
    x = np.random.default_rng(4).standard_normal((2, 3, 32, 32)).astype(np.float32)
    x[0, 0, :4, :4] = np.nan
    out = m(x)
    assert np.all(np.isfinite(out.data))


torch = pytest.importorskip("torch")


@pytest.mark.parametrize("dynamic,stability,stem", [(True, True, "patch"), (False, True, "patch"),
                                                   (False, False, "patch"), (True, True, "conv"),
                                                   (False, True, "conv")])
def test_matches_pytorch_oracle_float64(dynamic, stability, stem):
    from minisnn.parity.oracles.dysvit import DySViTOracle

    cfg = dict(num_classes=10, dim=32, depth=2, heads=2, mlp_ratio=2, dynamic_slope=dynamic, stability=stability,
               stem=stem)
    torch.manual_seed(0)
    oracle = DySViTOracle(**cfg).double()
    with torch.no_grad():  # make the hypernetworks non-trivial so their gradients are tested for real
        for n, p in oracle.named_parameters():
            if "hyper.fc2.weight" in n:
                p.normal_(0, 0.5)
    ours = DySViT(**cfg).to_dtype(np.float64)
    ours.load_state_dict({k: v.detach().numpy() for k, v in oracle.state_dict().items()})
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 3, 32, 32))
    y = np.array([1, 4, 7])

    xt = torch.tensor(x)
    lt = oracle(xt)
    torch.nn.functional.cross_entropy(lt, torch.tensor(y)).backward()
    lo = ours(x)
    F.cross_entropy(lo, y).backward()

    np.testing.assert_allclose(lo.data, lt.detach().numpy(), rtol=1e-10, atol=1e-12)
    tgrads = {n: p.grad for n, p in oracle.named_parameters()}
    for name, p in ours.named_parameters():
        tg = tgrads[name]
        tg = np.zeros(p.shape) if tg is None else tg.numpy()
        got = np.zeros(p.shape) if p.grad is None else p.grad
        np.testing.assert_allclose(got, tg, rtol=1e-8, atol=1e-11, err_msg=name)
    # BN running statistics moved identically
    for k, v in oracle.state_dict().items():
        if "running" in k:
            np.testing.assert_allclose(ours.state_dict()[k], v.numpy(), rtol=1e-12, atol=1e-14, err_msg=k)


def test_flops_and_energy_report():
    m = DySViT()
    rows = models.count_flops(m)
    # per block: q, k, v, proj (N·C²) + fc1, fc2 (N·C·4C) + two attention products (N²·C)
    N, C = 64, 256
    per_block = 4 * N * C * C + 2 * N * C * 4 * C + 2 * N * N * C
    assert models.total_flops(m) == 4 * per_block + N * 48 * C + C * 10
    assert [r.name for r in rows][:2] == ["patch_embed", "blocks.0.attn.q"]
    small = DySViT(dim=32, depth=1, heads=2)
    small.train()
    x = np.random.default_rng(6).standard_normal((4, 3, 32, 32)).astype(np.float32)
    with minisnn.no_grad(), models.FiringRateMonitor(small) as mon:
        small(x)
    rep = models.energy_report(small, mon)
    assert rep.sops > 0 and 0 < rep.energy_mj < rep.ann_energy_mj


def test_conv_stem_shapes_flops_and_refusals():
    m = DySViT(dim=32, depth=1, heads=2, stem="conv")
    assert "patch_embed.weight" not in m.state_dict()
    assert m.state_dict()["stem.conv1.weight"].shape == (16, 3, 3, 3)
    assert m.state_dict()["stem.conv2.weight"].shape == (32, 16, 3, 3)
    assert [n for n, _ in m.neurons()][0] == "stem.sn1" and len(m.neurons()) == 1 + 7
    rows = models.count_flops(m)
    N = 64
    assert [(r.name, r.flops) for r in rows[:2]] == [("stem.conv1", 4 * N * 16 * 27), ("stem.conv2", N * 32 * 144)]
    assert rows[0].source == "dense" and rows[1].source == "stem.conv2"
    out = m(np.random.default_rng(2).standard_normal((2, 3, 32, 32)).astype(np.float32))
    assert out.shape == (2, 10)
    with pytest.raises(ValueError, match="stem must be one of"):
        DySViT(stem="conv3")
    with pytest.raises(ValueError, match="needs patch_size=4"):
        DySViT(stem="conv", patch_size=8)
    with pytest.raises(ValueError, match="even dim"):
        DySViT(dim=33, heads=3, stem="conv")


def test_matches_pytorch_oracle_float32():
    from minisnn.parity.oracles.dysvit import DySViTOracle

    cfg = dict(num_classes=10, dim=32, depth=2, heads=2, mlp_ratio=2)
    torch.manual_seed(1)
    oracle = DySViTOracle(**cfg)
    ours = DySViT(**cfg)
    ours.load_state_dict({k: v.detach().numpy() for k, v in oracle.state_dict().items()})
    for _, n in ours.neurons():
        n.record = True
    spikes = {}
    hooks = [mod.register_forward_hook(lambda _m, _i, out, name=name: spikes.__setitem__(name, out.detach().numpy()))
             for name, mod in oracle.named_modules() if type(mod).__name__ == "Neuron"]
    x = np.random.default_rng(7).standard_normal((4, 3, 32, 32)).astype(np.float32)
    lt = oracle(torch.tensor(x))
    lo = ours(x)
    for h in hooks:
        h.remove()
    for name, n in ours.neurons():
        agree = np.mean(n.last_s_seq[0] == spikes[name])
        assert agree >= 0.999, (name, agree)
    np.testing.assert_allclose(lo.data, lt.detach().numpy(), rtol=1e-3, atol=1e-3)
