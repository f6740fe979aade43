"""Properties of the stage-3 projection-neuron modes on random inputs (no PyTorch needed).

* "per_sample": a batch gives the same logits as its images one at a time;
* with one image per batch, "merged" and "per_sample" agree exactly;
* "merged" runs the projection neuron over the merged T·B axis: its spikes equal an ordinary
  LIF run on the [T·B, C, N] sequence, which differs from running it per sample.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minisnn import Tensor, no_grad
from minisnn.models import MSViT, QKFormer
from minisnn.spiking import LIF

CFG = dict(embed_dim=32, num_heads=2, depth=3, T=2, img_size=8)


def firing_model(cls, mode, seed):
    """A small model in eval mode whose BN layers are set so that its neurons fire."""
    model = cls(**CFG, stage3_proj_lif=mode).to_dtype(np.float64).eval()
    rng = np.random.default_rng(seed)
    state = model.state_dict()
    for k, v in state.items():
        if k.endswith("_bn.weight"):
            state[k] = rng.uniform(2.0, 4.0, v.shape)
        elif k.endswith("_bn.bias"):
            state[k] = rng.uniform(0.8, 1.6, v.shape)
    model.load_state_dict(state)
    return model


def pair(cls, seed):
    """The same weights in both modes."""
    merged = firing_model(cls, "merged", seed)
    per_sample = cls(**CFG, stage3_proj_lif="per_sample").to_dtype(np.float64).eval()
    per_sample.load_state_dict(merged.state_dict())
    return merged, per_sample


@pytest.mark.parametrize("cls", [MSViT, QKFormer])
@settings(max_examples=4)
@given(seed=st.integers(0, 2**16), batch=st.integers(2, 3))
def test_stage3_modes(cls, seed, batch):
    merged, per_sample = pair(cls, seed)
    x = np.random.default_rng(seed + 1).standard_normal((batch, 3, 8, 8))
    with no_grad():
        batched = per_sample(x).data
        singles_p = np.concatenate([per_sample(x[i:i + 1]).data for i in range(batch)])
        singles_m = np.concatenate([merged(x[i:i + 1]).data for i in range(batch)])
    np.testing.assert_allclose(batched, singles_p, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(singles_m, singles_p, rtol=1e-12, atol=1e-12)


@settings(max_examples=4)
@given(seed=st.integers(0, 2**16))
def test_merged_proj_lif_runs_over_the_merged_axis(seed):
    merged, _ = pair(QKFormer, seed)
    att = merged.stage3[0].ssa
    seen = {}

    def record_input(u, _orig=att.proj_lif.forward):
        seen["u"] = u.data.copy()
        return _orig(u)

    att.proj_lif.forward = record_input
    att.proj_lif.record = True
    with no_grad():
        merged(np.random.default_rng(seed).standard_normal((3, 3, 8, 8)))
    del att.proj_lif.forward
    u = seen["u"]                                           # [T·B, C, N]
    T = merged.T
    assert u.shape[0] == T * 3
    reference = LIF(tau=2.0, v_threshold=1.0)
    with no_grad():
        over_tb = reference(Tensor(u)).data                 # one sequence of length T·B
        over_t = reference(Tensor(u.reshape((T, 3) + u.shape[1:]))).data.reshape(u.shape)
    assert np.array_equal(att.proj_lif.last_s_seq, over_tb)
    assert 0.05 < over_tb.mean() < 0.95
    assert not np.array_equal(over_tb, over_t)              # carrying potential across samples matters
