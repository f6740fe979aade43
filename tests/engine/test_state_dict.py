"""state_dict keys/shapes/dtypes equal PyTorch's for every layer; loading torch weights reproduces torch outputs;
load_state_dict reports missing / unexpected / mis-shaped keys."""
from __future__ import annotations

import numpy as np
import pytest

from minisnn import Tensor, nn

torch = pytest.importorskip("torch")

# name -> (constructor taking the nn namespace (minisnn.nn or torch.nn), input shape)
LAYERS = {
    "linear": (lambda m: m.Linear(5, 3), (2, 4, 5)),
    "linear_nobias": (lambda m: m.Linear(5, 3, bias=False), (4, 5)),
    "conv1d_k1": (lambda m: m.Conv1d(4, 6, 1, bias=False), (2, 4, 7)),
    "conv1d_k3": (lambda m: m.Conv1d(4, 6, 3, padding=1), (2, 4, 7)),
    "conv2d_k3": (lambda m: m.Conv2d(3, 5, 3, padding=1, bias=False), (2, 3, 6, 6)),
    "conv2d_k1_s2": (lambda m: m.Conv2d(3, 5, 1, stride=2), (2, 3, 6, 6)),
    "batchnorm1d": (lambda m: m.BatchNorm1d(4), (3, 4, 5)),
    "batchnorm1d_2d": (lambda m: m.BatchNorm1d(4), (6, 4)),
    "batchnorm2d": (lambda m: m.BatchNorm2d(3), (2, 3, 4, 4)),
    "layernorm": (lambda m: m.LayerNorm(6), (2, 3, 6)),
    "maxpool": (lambda m: m.MaxPool2d(3, stride=2, padding=1), (2, 3, 8, 8)),
    "identity": (lambda m: m.Identity(), (2, 3)),
    "dropout": (lambda m: m.Dropout(0.3), (2, 3)),
    "sequential": (lambda m: m.Sequential(m.Conv2d(3, 4, 3, padding=1), m.BatchNorm2d(4), m.MaxPool2d(2)),
                   (2, 3, 6, 6)),
}


def torch_state(module) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_state_dict_keys_shapes_dtypes_match_torch(name):
    make, _ = LAYERS[name]
    ours, theirs = make(nn), make(torch.nn)
    mine, ref = ours.state_dict(), torch_state(theirs)
    assert list(mine) == list(ref)
    for k in ref:
        assert mine[k].shape == ref[k].shape, k
        assert mine[k].dtype == ref[k].dtype, k  # float32 weights, int64 num_batches_tracked


def _train_torch_a_little(theirs, shape, rng):
    """A few train-mode forwards so BatchNorm running statistics are not trivial."""
    theirs.train()
    with torch.no_grad():
        for p in theirs.parameters():
            p.add_(torch.tensor(rng.standard_normal(tuple(p.shape)) * 0.1, dtype=p.dtype))
        for _ in range(3):
            theirs(torch.tensor(rng.standard_normal(shape).astype(np.float32) * 2 + 1))


@pytest.mark.parametrize("name", sorted(set(LAYERS) - {"dropout"}))
def test_loading_torch_weights_reproduces_torch_outputs(name):
    make, shape = LAYERS[name]
    rng = np.random.default_rng(0)
    ours, theirs = make(nn), make(torch.nn)
    _train_torch_a_little(theirs, shape, rng)
    report = ours.load_state_dict(torch_state(theirs))
    assert report["missing"] == [] and report["unexpected"] == []
    for mode in ("eval", "train"):
        getattr(ours, mode)()
        getattr(theirs, mode)()
        x = rng.standard_normal(shape).astype(np.float32)
        y = ours(Tensor(x))
        expected = theirs(torch.tensor(x)).detach().numpy()
        assert y.dtype == np.float32
        np.testing.assert_allclose(y.data, expected, rtol=1e-4, atol=1e-5, err_msg=mode)
    for k, v in torch_state(theirs).items():  # the train-mode step moved both sets of statistics alike
        np.testing.assert_allclose(ours.state_dict()[k], v, rtol=1e-5, atol=1e-6, err_msg=k)


def test_our_state_dict_loads_into_torch():
    rng = np.random.default_rng(1)
    ours = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4))
    ours(rng.standard_normal((2, 3, 5, 5)).astype(np.float32))  # move the running statistics
    ours.eval()
    theirs = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4)).eval()
    theirs.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()})
    x = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(ours(x).data, theirs(torch.tensor(x)).detach().numpy(), rtol=1e-4, atol=1e-5)
    assert int(theirs[1].num_batches_tracked) == 1


def test_load_copies_and_casts():
    layer = nn.Linear(2, 3)
    state = {"weight": np.ones((3, 2)), "bias": np.zeros(3)}  # float64 into a float32 layer
    layer.load_state_dict(state)
    assert layer.weight.dtype == np.float32
    state["weight"][...] = 5.0
    assert np.all(layer.weight.data == 1.0)  # not aliased
    bn = nn.BatchNorm1d(2)
    bn.load_state_dict({"weight": np.ones(2), "bias": np.zeros(2), "running_mean": np.ones(2),
                        "running_var": np.ones(2), "num_batches_tracked": np.array(7)})
    assert bn.num_batches_tracked.dtype == np.int64 and int(bn.num_batches_tracked) == 7
    layer.load_state_dict({"weight": Tensor(np.zeros((3, 2))), "bias": Tensor(np.zeros(3))})  # Tensors welcome
    assert np.all(layer.weight.data == 0)


def one_line(info) -> str:
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_load_reports_missing_unexpected_and_misshaped_keys():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    state = {k: np.array(v) for k, v in model.state_dict().items()}
    del state["1.running_var"]
    state["1.extra"] = np.zeros(1)
    state["0.weight"] = np.zeros((4, 2))
    with pytest.raises(nn.StateDictError) as info:
        model.load_state_dict(state)
    msg = one_line(info)
    assert "missing keys (1): 1.running_var" in msg
    assert "unexpected keys (1): 1.extra" in msg
    assert "0.weight: checkpoint (4, 2) vs model (3, 2)" in msg
    assert isinstance(info.value, KeyError)


def test_non_strict_load_tolerates_missing_and_unexpected_but_not_shapes():
    model = nn.Linear(2, 3)
    report = model.load_state_dict({"weight": np.ones((3, 2)), "other": np.zeros(1)}, strict=False)
    assert report["missing"] == ["bias"] and report["unexpected"] == ["other"]
    assert np.all(model.weight.data == 1)
    with pytest.raises(nn.StateDictError, match="shape mismatches"):
        model.load_state_dict({"weight": np.ones((2, 2))}, strict=False)


def test_ignored_state_keys_are_dropped_and_reported():
    class WithUnusedKeys(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)

        def ignored_state_keys(self):
            return ("*.unused_*",)

    model = WithUnusedKeys()
    state = {k: np.array(v) for k, v in model.state_dict().items()}
    state["fc.unused_mp"] = np.zeros(3)
    report = model.load_state_dict(state)
    assert report["ignored"] == ["fc.unused_mp"] and report["unexpected"] == []
