"""to_torch / from_torch: the same architecture and state_dict, bit for bit, for every registered model."""
from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from minisnn import models  # noqa: E402
from minisnn.torch import from_torch, load_torch_state_dict, to_torch  # noqa: E402

HAS_SPIKINGJELLY = importlib.util.find_spec("spikingjelly") is not None
FULL_SIZE = [n for n in models.names() if n.endswith("-cifar10")]
SMALL = [n for n in models.names() if n not in FULL_SIZE]


def needs_backend(name: str) -> None:
    if not name.startswith("dysvit") and not HAS_SPIKINGJELLY:
        pytest.skip("Spikformer/MSViT/QKFormer in PyTorch use SpikingJelly's LIF neuron (not installed)")


def assert_same_state(ours: dict, theirs: dict) -> None:
    """Same keys in the same order, same dtypes, same bits (NaN-free, so array_equal is bitwise)."""
    assert list(ours) == list(theirs)
    for k in ours:
        a = np.asarray(ours[k])
        b = theirs[k].detach().cpu().numpy() if torch.is_tensor(theirs[k]) else np.asarray(theirs[k])
        assert a.dtype == b.dtype and a.shape == b.shape, k
        assert np.array_equal(a.view(np.uint8), b.view(np.uint8)) if a.ndim else a == b, k


def images(n: int = 2, dtype=np.float32) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, 3, 32, 32)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", SMALL)
def test_round_trip_is_bit_exact_with_trained_buffers(name, dtype):
    needs_backend(name)
    model = models.create(name).to_dtype(dtype)
    module = to_torch(model)
    assert next(module.parameters()).dtype == (torch.float64 if dtype == np.float64 else torch.float32)
    assert_same_state(model.state_dict(), module.state_dict())
    with torch.no_grad():                               # a training-mode forward moves every BN buffer
        module.train()(torch.from_numpy(images(dtype=dtype)))
    back = from_torch(module, name)
    assert back.training
    assert_same_state(back.state_dict(), module.state_dict())
    assert_same_state(back.state_dict(), to_torch(back).state_dict())
    assert int(back.state_dict()[[k for k in back.state_dict() if k.endswith("num_batches_tracked")][0]]) == 1


@pytest.mark.parametrize("name", FULL_SIZE)
def test_full_size_models_round_trip_and_run(name):
    needs_backend(name)
    model = models.create(name)
    module = to_torch(model).eval()
    assert_same_state(from_torch(module, name).state_dict(), module.state_dict())
    with torch.no_grad():
        logits = module(torch.from_numpy(images(1)))
    assert logits.shape == (1, 10) and torch.isfinite(logits).all()


@pytest.mark.parametrize("name", ["dysvit-tiny", "spikformer-tiny", "msvit-tiny", "qkformer-tiny"])
def test_to_torch_computes_the_same_logits_in_float64(name):
    needs_backend(name)
    model = models.create(name, img_size=16) if not name.startswith("dysvit") else models.create(name)
    model = model.to_dtype(np.float64).eval()
    size = model.config["img_size"]
    x = np.random.default_rng(1).standard_normal((2, 3, size, size))
    with torch.no_grad():
        theirs = to_torch(model)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model(x).data, theirs, rtol=1e-9, atol=1e-12)


def test_overrides_and_strict_keys():
    module = to_torch(models.create("dysvit-tiny", num_classes=7, stability=False))
    assert from_torch(module, "dysvit-tiny", num_classes=7, stability=False).config["num_classes"] == 7
    with pytest.raises(KeyError, match="missing keys"):             # the stability BNs are absent
        from_torch(module, "dysvit-tiny", num_classes=7)
    model = models.create("dysvit-tiny", num_classes=7, stability=False)
    with pytest.raises(KeyError, match="unexpected keys"):
        load_torch_state_dict(model, {**module.state_dict(), "extra.weight": torch.zeros(1)})
    with pytest.raises(TypeError, match="registered minisnn models"):
        to_torch(models.create("dysvit-tiny").blocks)


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_import_minisnn_stays_torch_free_and_minisnn_torch_names_the_extra():
    done = run_python("import sys, minisnn, minisnn.models, minisnn.train, minisnn.parity\n"
                      "assert 'torch' not in sys.modules, 'torch was imported'\n"
                      "sys.modules['torch'] = None\n"
                      "try:\n    import minisnn.torch\nexcept ImportError as e:\n    print(e)\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == 'minisnn.torch needs PyTorch, which is not installed: pip install "minisnn[torch]"'


def test_upstream_families_name_spikingjelly_when_it_is_missing():
    done = run_python("import sys; sys.modules['spikingjelly'] = None\n"
                      "from minisnn import models; from minisnn.torch import to_torch\n"
                      "to_torch(models.create('dysvit-tiny'))\n"
                      "try:\n    to_torch(models.create('spikformer-tiny'))\nexcept ImportError as e:\n    print(e)\n")
    assert done.returncode == 0, done.stderr
    assert "pip install spikingjelly==0.0.0.0.14 --no-deps" in done.stdout
