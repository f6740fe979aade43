"""The registered Spikformer / MSViT / QKFormer models take a surrogate family, which their checkpoints record.

`surrogate=` (also `--set surrogate=NAME`) makes every neuron fire with that family; model.config then
holds the family's spec, so `minisnn.train.load_trained` rebuilds it.  A family of one's own must be
defined again in the loading process, else loading stops with a one-line error that says so.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minisnn import Tensor, models
from minisnn.spiking import named_neurons, surrogate
from minisnn.train import Trainer, config_for

ROOT = Path(__file__).resolve().parents[2]
SMALL = dict(embed_dim=32, num_heads=2, depth=2, T=1)
GAUSSIAN = '''
import math
from minisnn.spiking import surrogate
surrogate.define("model_test_gaussian", lambda x, a: 0.5 * (1.0 + math.erf(a * x / math.sqrt(2.0))),
                 default_alpha=2.0)
'''


def families(model) -> set:
    return {repr(n.surrogate) for _, n in named_neurons(model)}


@pytest.mark.parametrize("name", ["spikformer-tiny", "msvit-tiny", "qkformer-tiny"])
def test_every_neuron_takes_the_family_and_the_config_records_it(name):
    default = models.create(name)
    assert "surrogate" not in default.config and families(default) == {"Sigmoid(alpha=4.0)"}
    model = models.create(name, surrogate="atan(alpha=3.0)")
    assert model.config["surrogate"] == "atan(alpha=3.0)" and families(model) == {"ATan(alpha=3.0)"}
    assert {n.params.kind for _, n in named_neurons(model)} == {surrogate.ATan.kind}
    again = models.create(name, **model.config)
    assert families(again) == families(model)


def test_the_family_changes_the_gradient_not_the_forward():
    x = Tensor(np.random.default_rng(0).standard_normal((2, 3, 32, 32)))
    weights = models.create("spikformer-tiny", **SMALL).to_dtype(np.float64).state_dict()
    grads = []
    for family in (None, "rectangular"):
        model = models.create("spikformer-tiny", surrogate=family, **SMALL).to_dtype(np.float64)
        model.load_state_dict(weights)
        logits = model(x)
        logits.sum().backward()
        grads.append((logits.data, model.head.weight.grad, model.patch_embed.proj_conv.weight.grad))
    assert np.array_equal(grads[0][0], grads[1][0])                       # spikes do not depend on the surrogate
    assert np.array_equal(grads[0][1], grads[1][1])                       # nor does the head's gradient
    assert not np.allclose(grads[0][2], grads[1][2])                      # the gradient through the neurons does


def test_the_torch_twin_refuses_a_family_it_does_not_have():
    pytest.importorskip("torch")
    from minisnn.torch import to_torch
    with pytest.raises(ValueError, match="surrogate='atan'.*no PyTorch twin"):
        to_torch(models.create("spikformer-tiny", surrogate="atan", **SMALL))


def test_a_checkpoint_rebuilds_a_family_of_ones_own_in_a_new_process(tmp_path, embedded_sample_only):
    namespace: dict = {}
    exec(GAUSSIAN, namespace)                                             # the family, as a user defines it
    cfg = config_for("spikformer-tiny", epochs=1, batch_size=16, train_limit=16, val_size=16, eval_batch_size=16,
                     model_overrides=dict(SMALL, surrogate="model_test_gaussian(alpha=1.5)"), out=str(tmp_path / "run"))
    Trainer(cfg, progress=False, log=lambda *_: None).fit()
    load = ("from minisnn.spiking import named_neurons\nfrom minisnn.train import load_trained\n"
            f"model, _ = load_trained({str(tmp_path / 'run' / 'last.npz')!r})\n"
            "print(json.dumps(sorted({repr(n.surrogate) for _, n in named_neurons(model)})))\n")
    defined = subprocess.run([sys.executable, "-c", "import json\n" + GAUSSIAN + load], cwd=ROOT,
                             capture_output=True, text=True, timeout=300)
    assert defined.returncode == 0, defined.stderr
    assert json.loads(defined.stdout.strip().splitlines()[-1]) == ["ModelTestGaussian(alpha=1.5)"]
    missing = subprocess.run([sys.executable, "-c", "import json\n" + load], cwd=ROOT, capture_output=True, text=True,
                             timeout=300)
    assert missing.returncode != 0
    last = missing.stderr.strip().splitlines()[-1]
    assert "unknown surrogate 'model_test_gaussian(alpha=1.5)'" in last and "define" in last
