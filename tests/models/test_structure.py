"""Full-size models: state_dict keys/shapes equal the upstream lists, parameter counts, registry, bad input."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minisnn import models
from minisnn.nn.module import StateDictError
from minisnn.models import MSViT, QKFormer, Spikformer

from .upstream_keys import PARAM_COUNTS, expected_keys, spec_keys, upstream_keys

FULL = {"spikformer": "spikformer-cifar10", "msvit": "msvit-cifar10", "qkformer": "qkformer-cifar10"}


@pytest.fixture(scope="module")
def full_models():
    return {fam: models.create(name) for fam, name in FULL.items()}


@pytest.mark.parametrize("family", sorted(FULL))
def test_rebuilt_key_list_matches_spec(family):
    assert expected_keys(family) == spec_keys(family)


@pytest.mark.parametrize("family", sorted(FULL))
def test_state_dict_equals_upstream(full_models, family):
    model = full_models[family]
    sd = model.state_dict()
    assert [(k, tuple(v.shape)) for k, v in sd.items()] == upstream_keys(family)
    for k, v in sd.items():
        if k.endswith("num_batches_tracked"):
            assert v.dtype == np.int64 and v.shape == ()
        else:
            assert v.dtype == np.float32, k


@pytest.mark.parametrize("family", sorted(FULL))
def test_parameter_counts(full_models, family):
    model = full_models[family]
    assert model.num_parameters() == PARAM_COUNTS[family]
    assert model.T == 4 and model.num_classes == 10


def test_spikformer_layernorms_are_counted(full_models):
    sd = full_models["spikformer"].state_dict()
    norms = sum(v.size for k, v in sd.items() if ".norm1." in k or ".norm2." in k)
    assert norms == 6_144
    assert full_models["spikformer"].num_parameters() - norms == 9_324_730


def test_upstream_quirk_defaults(full_models):
    msvit, qk, sf = full_models["msvit"], full_models["qkformer"], full_models["spikformer"]
    assert msvit.config["attn_threshold"] == 1.0 and msvit.config["stage3_proj_lif"] == "merged"
    assert qk.config["attn_threshold"] == 0.5 and qk.config["stage3_proj_lif"] == "merged"
    assert sf.config["attn_threshold"] == 0.5
    thresholds = {n: m.v_threshold for n, m in msvit.neurons()}
    assert len(thresholds) == 37 and set(thresholds.values()) == {1.0}
    qk_attn = {n: m.v_threshold for n, m in qk.neurons() if n.endswith("attn_lif")}
    assert set(qk_attn.values()) == {0.5} and len(qk_attn) == 4
    assert msvit.stage3[0].ssa.stage3_proj_lif == "merged"


# ----------------------------------------------------------------------------- registry
def test_registry_names_and_descriptions():
    names = models.names()
    for required in ("spikformer-cifar10", "msvit-cifar10", "qkformer-cifar10",
                     "spikformer-tiny", "msvit-tiny", "qkformer-tiny"):
        assert required in names
        assert models.describe(required)
    assert names == sorted(names)


@pytest.mark.parametrize("name", ["spikformer-tiny", "msvit-tiny", "qkformer-tiny",
                                  "spikformer-small", "msvit-small", "qkformer-small"])
def test_presets_rebuild_from_config(name):
    model = models.create(name, num_classes=7)
    assert model.num_classes == 7 and model.config["num_classes"] == 7
    assert model.head.weight.shape[0] == 7
    rebuilt = type(model)(**model.config)
    assert [(k, v.shape) for k, v in rebuilt.state_dict().items()] == \
           [(k, v.shape) for k, v in model.state_dict().items()]
    assert model.T == model.config["T"] <= 2


def test_create_overrides_and_errors():
    m = models.create("qkformer-tiny", T=1, stage3_proj_lif="per_sample")
    assert m.T == 1 and m.stage3[0].ssa.stage3_proj_lif == "per_sample"
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        models.create("nope")
    with pytest.raises(TypeError, match="no argument.*embed_dims"):
        models.create("msvit-tiny", embed_dims=64)


def test_register_own_model():
    def factory(num_classes=10):
        return QKFormer(embed_dim=32, num_heads=2, depth=2, T=1, img_size=8, num_classes=num_classes)

    models.register("test-only-qkformer-micro", factory, description="micro test model", replace=True)
    assert "test-only-qkformer-micro" in models.names()
    assert models.create("test-only-qkformer-micro", num_classes=3).num_classes == 3
    with pytest.raises(ValueError, match="already registered"):
        models.register("test-only-qkformer-micro", lambda: None)


def test_registry_reports_a_module_that_fails_to_import(monkeypatch):
    from minisnn.models import registry

    real = registry._import_model_module

    def importer(mod):
        if mod == "broken_for_test":
            raise ImportError("needs a package that is not installed")
        return real(mod)

    monkeypatch.setattr(registry, "_loaded", False)
    monkeypatch.setattr(registry, "_IMPORT_ERRORS", {})
    monkeypatch.setattr(registry, "MODEL_MODULES", registry.MODEL_MODULES + ("missing_module", "broken_for_test"))
    monkeypatch.setattr(registry, "_import_model_module", importer)
    assert "msvit-cifar10" in models.names()                 # the other modules still register
    assert registry.import_errors() == {"broken_for_test": "ImportError: needs a package that is not installed"}
    with pytest.raises(ValueError, match="'broken_for_test' could not be imported"):
        models.create("broken-model")


# ----------------------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def micro():
    return {"spikformer": Spikformer(embed_dim=32, num_heads=2, depth=1, T=1, img_size=8),
            "msvit": MSViT(embed_dim=32, num_heads=2, depth=2, T=1, img_size=8),
            "qkformer": QKFormer(embed_dim=32, num_heads=2, depth=2, T=1, img_size=8)}


@pytest.mark.parametrize("family", ["spikformer", "msvit", "qkformer"])
@pytest.mark.parametrize("shape", [(2, 3, 16, 16), (2, 1, 8, 8), (3, 8, 8), (2, 3, 8, 4)])
def test_wrong_image_shape(micro, family, shape):
    with pytest.raises(ValueError, match=r"expects images of shape \[B, 3, 8, 8\]"):
        micro[family](np.zeros(shape, np.float32))


def test_integer_images_rejected(micro):
    with pytest.raises(TypeError, match="floating-point"):
        micro["msvit"](np.zeros((1, 3, 8, 8), np.uint8))


@pytest.mark.parametrize("cls", [Spikformer, MSViT, QKFormer])
@given(T=st.integers(-3, 0))
def test_T_below_one(cls, T):
    with pytest.raises(ValueError, match="T must be an integer >= 1"):
        cls(embed_dim=32, num_heads=2, depth=2, img_size=8, T=T)


@pytest.mark.parametrize("kwargs, message", [
    (dict(embed_dim=32, num_heads=3), "not divisible by num_heads=3"),
    (dict(img_size=10), "multiple of 4"),
    (dict(depth=1), "depth"),
    (dict(stage3_proj_lif="per-batch"), "stage3_proj_lif"),
    (dict(attn_threshold=0), "attn_threshold"),
    (dict(T=1.5), "T must be an integer"),
])
def test_bad_hierarchical_config(kwargs, message):
    base = dict(embed_dim=32, num_heads=2, depth=2, T=1, img_size=8)
    with pytest.raises(ValueError, match=message):
        MSViT(**{**base, **kwargs})


def test_bad_spikformer_config():
    with pytest.raises(ValueError, match="multiple of 8"):
        Spikformer(embed_dim=36, num_heads=2)
    with pytest.raises(ValueError, match="not divisible by num_heads=5"):
        Spikformer(embed_dim=32, num_heads=5)


@pytest.mark.parametrize("src, dst", [("spikformer", "msvit"), ("msvit", "qkformer"), ("qkformer", "spikformer")])
def test_state_dict_of_another_model(micro, src, dst):
    with pytest.raises(StateDictError, match=f"does not belong to {type(micro[dst]).__name__}"):
        micro[dst].load_state_dict(micro[src].state_dict())


def test_msvit_and_qkformer_keys_overlap_but_shapes_differ():
    """Same key names except p_conv, different widths: a clear shape-mismatch error."""
    a = MSViT(embed_dim=64, num_heads=2, depth=3, T=1, img_size=8)
    b = QKFormer(embed_dim=64, num_heads=2, depth=3, T=1, img_size=8)
    sd = {k: v for k, v in a.state_dict().items() if ".p_" not in k}
    with pytest.raises(StateDictError, match="shape mismatches"):
        b.load_state_dict(sd)
