"""FLOP counting (checked against traced layer shapes), the firing-rate monitor and the energy estimate."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minisnn import models, no_grad
from minisnn.models import (E_AC_PJ, E_MAC_PJ, FiringRateMonitor, MSViT, QKFormer, Spikformer, count_flops,
                            energy_report, total_flops)
from minisnn.models.monitor import SYNAPTIC_LAYERS

SMALL = {
    "spikformer": lambda: Spikformer(embed_dim=32, num_heads=2, depth=2, T=2, img_size=16),
    "msvit": lambda: MSViT(embed_dim=32, num_heads=2, depth=3, T=2, img_size=16),
    "qkformer": lambda: QKFormer(embed_dim=32, num_heads=2, depth=3, T=2, img_size=16),
}


def images(batch=2, size=16, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, 3, size, size)).astype(np.float32)


def traced_macs(model, x):
    """MACs per image and step of every conv/linear, from the output shapes seen in a real forward."""
    seen = {}
    wrapped = []
    for name, m in model.named_modules():
        if isinstance(m, SYNAPTIC_LAYERS):
            def fwd(z, *args, _orig=m.forward, _name=name, _m=m, **kwargs):
                y = _orig(z, *args, **kwargs)
                positions = int(np.prod(y.shape[2:])) if _m.weight.ndim > 2 else int(np.prod(y.shape[:-1]))
                batch = y.shape[0] if _m.weight.ndim > 2 else 1
                seen[_name] = positions * batch * _m.weight.size
                return y
            m.forward = fwd
            wrapped.append(m)
    try:
        model(x)     # with a graph, so every layer sees all T·B frames (without one, repeated images run once)
    finally:
        for m in wrapped:
            del m.forward
    B = x.shape[0]
    return {k: v / (B if k == "head" else B * model.T) for k, v in seen.items()}


@pytest.mark.parametrize("family", sorted(SMALL))
def test_flops_match_traced_shapes(family):
    model = SMALL[family]().eval()
    traced = traced_macs(model, images())
    rows = {r.name: r for r in count_flops(model) if r.kind in ("conv", "linear")}
    assert set(rows) == set(traced)
    for name, macs in traced.items():
        assert rows[name].flops == macs, name
    assert total_flops(model) == sum(r.flops * (1 if r.source == "dense" else model.T) for r in count_flops(model))


def test_full_size_flops_by_hand():
    sf = {r.name: r for r in count_flops(models.create("spikformer-cifar10"))}
    assert sf["patch_embed.proj_conv"].flops == 32 * 32 * 48 * 3 * 9 and sf["patch_embed.proj_conv"].source == "dense"
    assert sf["block.0.attn.q_linear"].flops == 64 * 384 * 384
    assert sf["block.3.attn.q_matmul_k"].flops == 64 * 64 * 384
    assert sf["block.3.attn.q_matmul_k"].source == "block.3.attn.q_lif"
    ms = {r.name: r for r in count_flops(models.create("msvit-cifar10"))}
    assert ms["patch_embed1.proj1_conv"].flops == 1024 * 192 * 96 * 9
    assert ms["patch_embed2.proj_res_conv"].flops == 256 * 192 * 192
    assert ms["stage1.0.tssa.p_conv"].flops == 1024 * 192 * 192 * 3
    assert ms["stage1.0.tssa.p_column_sum"].flops == 1024 * 192
    assert ms["stage3.1.ssa.kt_matmul_v"].flops == 64 * 384 * 48
    assert ms["head"].flops == 3840
    qk = {r.name: r for r in count_flops(models.create("qkformer-cifar10"))}
    assert "stage1.0.tssa.p_conv" not in qk and qk["stage1.0.tssa.q_conv"].flops == 1024 * 96 * 96


def test_count_flops_rejects_other_models():
    with pytest.raises(TypeError, match="count_flops supports"):
        count_flops(object())


# ---------------------------------------------------------------------------- monitor
@pytest.mark.parametrize("family", sorted(SMALL))
def test_monitor_leaves_outputs_unchanged_and_cleans_up(family):
    model = SMALL[family]().eval()
    x = images()
    with no_grad():
        plain = model(x).data.copy()
        with FiringRateMonitor(model) as mon:
            watched = model(x).data.copy()
            model(x)
        after = model(x).data
    np.testing.assert_array_equal(plain, watched)
    np.testing.assert_array_equal(plain, after)
    assert mon.passes == 2
    for _, m in model.named_modules():
        assert "forward" not in m.__dict__
    assert all(m.record is False for _, m in model.neurons())
    rates = mon.rates()
    assert list(rates) == [n for n, _ in model.neurons()]
    assert all(0.0 <= r <= 1.0 for r in rates.values())
    assert "neuron" in mon.table() and f"{mon.mean_rate():.4f}" in mon.table()


def test_input_rates_follow_the_firing_rates():
    """A layer fed by one neuron sees that neuron's rate; a residual-stream layer sees the sum of rates."""
    model = SMALL["msvit"]().eval()
    with no_grad(), FiringRateMonitor(model) as mon:
        model(images(seed=3))
    r, ins = mon.rates(), mon.input_rates()
    assert ins["patch_embed1.proj1_conv"] == pytest.approx(r["patch_embed1.proj_lif"], rel=1e-12)
    assert ins["stage2.0.mlp.mlp2_conv"] == pytest.approx(r["stage2.0.mlp.mlp1_lif"], rel=1e-12)
    assert ins["stage1.0.tssa.q_conv"] == pytest.approx(
        r["patch_embed1.proj1_lif"] + r["patch_embed1.proj_res_lif"], rel=1e-12)
    mon.reset()
    assert mon.rates() == {} and mon.passes == 0
    with pytest.raises(RuntimeError, match="no spikes recorded"):
        mon.mean_rate()


@settings(max_examples=5)
@given(seed=st.integers(0, 2**16))
def test_energy_report_formula(seed):
    model = SMALL["qkformer"]().eval()
    with no_grad(), FiringRateMonitor(model) as mon:
        model(images(seed=seed))
    rep = energy_report(model, mon)
    rates = {**mon.rates(), **mon.input_rates()}
    rows = count_flops(model)
    sops = sum(rates[r.source] * model.T * r.flops for r in rows if r.source != "dense")
    macs = sum(r.flops for r in rows if r.source == "dense")
    assert rep.sops == pytest.approx(sops, rel=1e-12)
    assert rep.mac_ops == macs
    assert rep.energy_mj == pytest.approx((E_MAC_PJ * macs + E_AC_PJ * sops) * 1e-9, rel=1e-12)
    assert rep.energy_mj < rep.ann_energy_mj
    first = energy_report(model, mon, first_layer_steps=model.T)
    assert first.mac_ops - rep.mac_ops == (model.T - 1) * rows[0].flops
    assert "SOPs" in rep.format() and len(rep.rows) == len(rows)


def test_energy_report_needs_a_recorded_pass():
    model = SMALL["spikformer"]()
    with FiringRateMonitor(model) as mon:
        pass
    with pytest.raises(KeyError, match="run a forward pass"):
        energy_report(model, mon)
