"""Which model a checkpoint belongs to, from its keys and shapes (no torch needed)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minisnn import models
from minisnn.models.dysvit import DySViT
from minisnn.parity.infer import detect_family, registered_config, resolve_config, shape_config

FAMILY_OF = {"spikformer": models.Spikformer, "msvit": models.MSViT, "qkformer": models.QKFormer, "dysvit": DySViT}


@pytest.mark.parametrize("name", models.names())
def test_every_registered_model_is_recognised_from_its_state_dict(name):
    """A checkpoint of any preset (the upstream *-cifar10 ones included) resolves to exactly that preset;
    a speedrun preset's, to the network it trains."""
    family, cfg = registered_config(name)
    state = models.create(name).state_dict()
    assert detect_family(state) == family
    resolved = resolve_config(state)
    assert resolved.family == family and resolved.preset == models.network_of(name)
    assert {k: resolved.config[k] for k in cfg} == cfg


@settings(max_examples=10)
@given(family=st.sampled_from(["spikformer", "msvit", "qkformer"]), E=st.sampled_from([16, 32, 48]),
       depth=st.integers(2, 4), mlp=st.sampled_from([1, 2, 3, 4]), classes=st.integers(2, 20),
       in_ch=st.sampled_from([1, 3]))
def test_shapes_give_widths_depth_classes_and_mlp_ratio(family, E, depth, mlp, classes, in_ch):
    cfg = dict(embed_dim=E, depth=depth, mlp_ratio=mlp, num_classes=classes, in_channels=in_ch, num_heads=1)
    state = FAMILY_OF[family](**cfg).state_dict()
    got = shape_config(state, family)
    assert got == {k: v for k, v in cfg.items() if k != "num_heads"}


@settings(max_examples=8)
@given(dim=st.sampled_from([16, 32]), depth=st.integers(1, 3), mlp=st.sampled_from([1, 2, 4]),
       patch=st.sampled_from([4, 8]), img=st.sampled_from([16, 32]), dynamic=st.booleans(), stability=st.booleans(),
       hidden=st.sampled_from([4, 16]), stem=st.sampled_from(["patch", "conv"]))
def test_dysvit_shapes_give_everything_but_heads(dim, depth, mlp, patch, img, dynamic, stability, hidden, stem):
    if stem == "conv":
        patch = 4                                # the conv stem down-samples by 4
    cfg = dict(dim=dim, depth=depth, mlp_ratio=mlp, patch_size=patch, img_size=img, dynamic_slope=dynamic,
               stability=stability, hypernet_hidden=hidden, num_classes=10, stem=stem)
    state = DySViT(heads=2, **cfg).state_dict()
    got = shape_config(state, "dysvit")
    if not dynamic:
        cfg.pop("hypernet_hidden")               # no hypernetwork, no width to read
    assert got == cfg
    resolved = resolve_config(state, overrides={"heads": 2})
    assert resolved.config["heads"] == 2 and resolved.source["heads"] == "--set"


def test_heads_and_T_must_be_given_when_no_preset_matches():
    state = models.MSViT(embed_dim=32, num_heads=2, depth=3, T=2).state_dict()
    with pytest.raises(ValueError, match=r"not num_heads and T.*--set num_heads=\.\.\. --set T=\.\.\.") as exc:
        resolve_config(state)
    assert "\n" not in str(exc.value)
    with pytest.raises(ValueError, match=r"not num_heads, ") as exc:     # T from the training script's args
        resolve_config(state, args={"time_step": 2, "model": "vitsnn"})
    r = resolve_config(state, args={"time_step": 2, "num_heads": 8}, overrides={"num_heads": 2})
    assert (r.config["T"], r.source["T"]) == (2, "checkpoint args")
    assert (r.config["num_heads"], r.source["num_heads"]) == (2, "--set")   # MSViT ignores args.num_heads
    assert r.source["embed_dim"] == "shapes" and r.preset is None


def test_spikformer_heads_come_from_the_training_args():
    state = models.Spikformer(embed_dim=32, num_heads=2, depth=1, T=3).state_dict()
    r = resolve_config(state, args={"time_step": 3, "num_heads": 2})
    assert (r.config["num_heads"], r.config["T"]) == (2, 3)


def test_args_override_a_preset_and_set_overrides_args():
    state = models.create("msvit-cifar10").state_dict()
    r = resolve_config(state, args={"time_step": 2}, overrides={"T": 1})
    assert r.config["T"] == 1 and r.config["num_heads"] == 8 and r.source["num_heads"] == "preset msvit-cifar10"
    assert r.preset is None                       # no longer exactly the preset


def test_bad_input_is_refused_in_one_line():
    with pytest.raises(ValueError, match="cannot tell which model"):
        resolve_config({"foo.weight": np.zeros(3), "bar": np.zeros(1)})
    state = models.create("qkformer-tiny").state_dict()
    with pytest.raises(ValueError, match="--set heads: QKFormer has no argument 'heads'"):
        resolve_config(state, overrides={"heads": 2})
    del state["head.weight"]
    with pytest.raises(ValueError, match="no 'head.weight'"):
        resolve_config(state)
    assert detect_family({"x": np.zeros(1)}) is None


@pytest.mark.parametrize("args, key", [({"T": 10**6}, "T"), ({"time_steps": 0}, "T"),
                                       ({"img_size": 10**5}, "img_size"), ({"T": 4, "num_heads": 10**7}, "num_heads")])
def test_saved_arguments_cannot_size_an_enormous_model(args, key):
    """A checkpoint's `args` are untrusted: T = 10^6 would make both networks ask for tens of GB."""
    state = models.create("spikformer-tiny").state_dict()
    with pytest.raises(ValueError, match=f"give {key}=.*refusing to size the model from them; pass --set {key}="):
        resolve_config(state, args=args)
    resolve_config(state, args=args, overrides={"T": 2, "num_heads": 2, "img_size": 32})   # --set wins, no error
