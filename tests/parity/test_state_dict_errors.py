"""load_state_dict on all four families: missing, unexpected and mis-shaped keys are all listed in one
error; keys that exist upstream but do nothing in the forward pass load without complaint."""
from __future__ import annotations

import numpy as np
import pytest

from minisnn.models import MSViT, QKFormer, Spikformer
from minisnn.models.dysvit import DySViT
from minisnn.nn.module import StateDictError

SMALL = {
    "spikformer": lambda: Spikformer(embed_dim=16, num_heads=2, depth=1, T=1, img_size=16),
    "msvit": lambda: MSViT(embed_dim=16, num_heads=2, depth=3, T=1, img_size=16),
    "qkformer": lambda: QKFormer(embed_dim=16, num_heads=2, depth=3, T=1, img_size=16),
    "dysvit": lambda: DySViT(dim=16, heads=2, depth=1, img_size=16),
}


@pytest.fixture(params=sorted(SMALL))
def family(request):
    return request.param


def _random_state(model, seed=0):
    rng = np.random.default_rng(seed)
    return {k: (rng.standard_normal(v.shape).astype(v.dtype) if v.dtype.kind == "f" else v + 7)
            for k, v in model.state_dict().items()}


def test_all_three_kinds_of_problem_are_listed_together(family):
    model = SMALL[family]()
    state = _random_state(model)
    keys = list(state)
    gone, bent = keys[1], next(k for k in keys if k.endswith(".weight") and state[k].ndim >= 1 and k != keys[1])
    del state[gone]
    state[bent] = np.zeros(state[bent].shape[:-1] + (state[bent].shape[-1] + 1,), dtype=state[bent].dtype)
    state["not.a.real.key"] = np.zeros(3, dtype=np.float32)
    with pytest.raises(StateDictError) as exc:
        model.load_state_dict(state)
    msg = str(exc.value)
    assert "\n" not in msg
    assert f"missing keys (1): {gone}" in msg
    assert "unexpected keys (1): not.a.real.key" in msg
    assert f"shape mismatches (1): {bent}: checkpoint" in msg


def test_a_complete_upstream_state_dict_loads_every_value(family):
    model = SMALL[family]()
    state = _random_state(model, seed=1)
    result = model.load_state_dict(state)
    assert result == {"missing": [], "unexpected": [], "ignored": []}
    loaded = model.state_dict()
    for k, v in state.items():
        np.testing.assert_array_equal(loaded[k], v.astype(loaded[k].dtype), err_msg=k)
    tracked = [k for k in state if k.endswith("num_batches_tracked")]
    assert tracked and all(loaded[k].dtype == np.int64 and loaded[k].shape == () for k in tracked)


def test_spikformer_layernorm_keys_are_accepted():
    """Upstream Spikformer blocks own norm1/norm2 LayerNorms that forward never uses: their keys load."""
    model = SMALL["spikformer"]()
    state = _random_state(model, seed=2)
    norms = [k for k in state if ".norm1." in k or ".norm2." in k]
    assert len(norms) == 4
    model.load_state_dict(state)
    x = np.random.default_rng(3).standard_normal((1, 3, 16, 16)).astype(np.float32)
    before = model(x).data
    for k in norms:                                   # changing them changes nothing
        state[k] = state[k] * 5 + 1
    model.load_state_dict(state)
    np.testing.assert_array_equal(model(x).data, before)


def test_keys_of_another_family_are_named_as_such():
    msvit_state = SMALL["msvit"]().state_dict()
    with pytest.raises(StateDictError, match="keys are those of a MSViT model"):
        SMALL["qkformer"]().load_state_dict(msvit_state)
    with pytest.raises(StateDictError, match=r"missing keys \(\d+\): .*unexpected keys"):
        SMALL["dysvit"]().load_state_dict(msvit_state)
