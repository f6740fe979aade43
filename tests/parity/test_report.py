"""The parity report's verdicts and text, on hand-made numbers (no torch needed)."""
from __future__ import annotations

import numpy as np
import pytest

from minisnn.parity.compare import grad_group, membrane_margin
from minisnn.parity.report import CRITERIA, GradGroup, LayerRow, ParityReport, PoolRow, relative


def make_report(dtype="float64", differing=(0, 0), margins=(None, None), logits_rel=0.0, grads_rel=0.0):
    rows = [LayerRow(f"layer{i}", (10, 100), 0.3, d, 0.0, 0.0, None, m)
            for i, (d, m) in enumerate(zip(differing, margins))]
    r = ParityReport("toy", dtype, 2, False, (2, 10), 0.0, 0.0, logits_rel, layers=rows)
    r.grad_groups = [GradGroup("head", 2, 1.0, grads_rel, "head.weight")]
    r.grads_checked, r.input_grad_rel = True, 0.0
    return r


def verdicts(report):
    return {c.name: c.passed for c in report.checks()}


def test_float64_requires_every_spike_and_1e_10():
    assert make_report().ok
    assert not make_report(differing=(0, 1), margins=(None, 1e-12)).ok       # one flip is a failure in float64
    assert not make_report(logits_rel=2e-10).ok
    assert not make_report(grads_rel=2e-10).ok
    assert make_report(grads_rel=0.9e-10).ok


def test_float32_agreement_and_first_divergence():
    ok = make_report("float32", differing=(0, 1), margins=(None, 1e-7), logits_rel=0.3, grads_rel=0.5)
    v = verdicts(ok)
    assert v["spikes"] and v["first divergence"] and ok.ok
    assert v["logits"] is None and v["gradients"] is None        # after a flip: reported, not judged
    far = make_report("float32", differing=(0, 1), margins=(None, 0.3))
    assert verdicts(far)["first divergence"] is False and not far.ok  # a flip far from the threshold is a bug
    many = make_report("float32", differing=(2, 0), margins=(1e-7, None))   # 2 of 2000 = 99.9 %: still fine
    assert many.ok and many.agreement == pytest.approx(0.999)
    too_many = make_report("float32", differing=(3, 0), margins=(1e-7, None))
    assert verdicts(too_many)["spikes"] is False and not too_many.ok
    clean = make_report("float32", logits_rel=2e-4)                  # no flip: float32 tolerances apply
    assert verdicts(clean)["logits"] is False


def test_float32_max_pool_routing():
    """A pool window may send its gradient elsewhere only between near-equal candidates; gradients are then
    reported, not judged, while logits still are."""
    r = make_report("float32", grads_rel=0.01)
    r.pools = [PoolRow("pe.proj4_maxpool", 100, 1, 1.2e-7)]
    v = verdicts(r)
    assert v["max-pool choices"] is True and v["gradients"] is None and v["logits"] is True and r.ok
    r.pools = [PoolRow("pe.proj4_maxpool", 100, 1, 0.5)]
    assert verdicts(r)["max-pool choices"] is False and not r.ok
    r.pools = [PoolRow("pe.proj4_maxpool", 100, 0, None)]
    assert verdicts(r)["gradients"] is False                        # no routing change: 0.01 > 2e-3
    assert "max-pool pe.proj4_maxpool: 0 of 100 windows" in r.format()


def test_text_has_rows_in_order_checks_and_verdict():
    r = make_report("float32", differing=(0, 1), margins=(None, 1e-7))
    r.header.append("configuration: toy")
    r.unused_params = ["block.0.norm1.weight"]
    text = r.format()
    lines = text.splitlines()
    assert lines[-1] == "PASS"
    assert text.index("layer0") < text.index("layer1")
    assert "configuration: toy" in text and "flip |H-θ|" in text and "block.0.norm1.weight" in text
    assert "[PASS] first divergence at layer1: 1 spike(s) differ" in text
    assert make_report(logits_rel=1.0).format().splitlines()[-1] == "FAIL"


def test_relative_uses_the_floor():
    a, b = np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-12])
    assert relative(a, b) == pytest.approx(1e-12 / 2.0)
    assert relative(np.zeros(3), np.full(3, 1e-17), floor=1e-4) == pytest.approx(1e-13)
    assert relative(a, a) == 0.0
    assert CRITERIA["float64"]["spike_agreement"] == 1.0 and CRITERIA["float32"]["spike_agreement"] == 0.999


def test_gradient_groups():
    assert grad_group("stage1.0.tssa.q_conv.weight") == "stage1.0.tssa"
    assert grad_group("patch_embed1.proj_bn.bias") == "patch_embed1"
    assert grad_group("head.weight") == "head"
    assert grad_group("blocks.1.attn.sn_q.hyper.fc2.bias") == "blocks.1 slope hypernetworks"
    assert grad_group("block.0.norm1.weight") == "block.0.norm1"
    assert grad_group("pos_embed") == "pos_embed"


class _LIF:
    tau, v_threshold, v_reset, decay_input = 2.0, 1.0, 0.0, True


class _Single:
    threshold = 0.5


def test_membrane_margin_follows_the_lif_recursion():
    x = np.array([[1.0], [1.5], [4.0]])                 # H = 0.5, 1.0 (fires), 2.0 (fires)
    s = np.array([[0.0], [1.0], [1.0]])
    np.testing.assert_allclose(membrane_margin(_LIF(), x, s)[:, 0], [0.5, 0.0, 1.0])
    x, s = np.array([[1.0], [3.0], [1.0]]), np.array([[0.0], [1.0], [0.0]])
    np.testing.assert_allclose(membrane_margin(_LIF(), x, s)[:, 0], [0.5, 0.75, 0.5])     # hard reset to 0
    soft = _LIF()
    soft.v_reset = None                                 # soft reset: V = H − θ = 0.75 after the spike
    np.testing.assert_allclose(membrane_margin(soft, x, s)[:, 0], [0.5, 0.75, 0.125])
    np.testing.assert_allclose(membrane_margin(_Single(), np.array([0.25, np.nan]), np.zeros(2)), [0.25, 0.5])
