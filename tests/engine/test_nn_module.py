"""Module mechanics (registration, traversal, modes, dtype), containers, reprs and initialisers vs PyTorch."""
from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest

from minisnn import Tensor, nn

torch = pytest.importorskip("torch")


def pair_of_models():
    """The same small network in minisnn and in torch (names, nesting, layer types)."""
    ours = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.MaxPool2d(3, 2, 1),
        nn.Sequential(nn.Conv2d(4, 6, 1, stride=2), nn.Identity()),
        nn.ModuleList([nn.Conv1d(6, 6, 3, padding=1), nn.BatchNorm1d(6)]),
        nn.LayerNorm(6), nn.Dropout(0.25), nn.Linear(6, 10),
    )
    theirs = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1, bias=False), torch.nn.BatchNorm2d(4), torch.nn.MaxPool2d(3, 2, 1),
        torch.nn.Sequential(torch.nn.Conv2d(4, 6, 1, stride=2), torch.nn.Identity()),
        torch.nn.ModuleList([torch.nn.Conv1d(6, 6, 3, padding=1), torch.nn.BatchNorm1d(6)]),
        torch.nn.LayerNorm(6), torch.nn.Dropout(0.25), torch.nn.Linear(6, 10),
    )
    return ours, theirs


def test_repr_matches_torch():
    ours, theirs = pair_of_models()
    assert repr(ours) == repr(theirs)


def test_traversal_names_and_order_match_torch():
    ours, theirs = pair_of_models()
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    assert ours.num_parameters() == sum(p.numel() for p in theirs.parameters())


def test_shared_module_is_listed_once_like_torch():
    shared, tshared = nn.Linear(2, 2), torch.nn.Linear(2, 2)
    ours = nn.Sequential(shared, nn.Sequential(shared))
    theirs = torch.nn.Sequential(tshared, torch.nn.Sequential(tshared))
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())  # the state_dict keeps both paths
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    np.testing.assert_array_equal(shared.weight.data, tshared.weight.detach().numpy())


def test_train_eval_reach_every_module():
    ours, _ = pair_of_models()
    ours.eval()
    assert all(not m.training for m in ours.modules())
    ours.train()
    assert all(m.training for m in ours.modules())
    assert ours.train(False) is ours and not ours[1].training


def test_forward_chain_and_zero_grad():
    ours, theirs = pair_of_models()
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    ours.eval()
    theirs.eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)

    def run_ours(x):
        h = ours[3](ours[2](ours[1](ours[0](x))))  # [2, 6, 2, 2]
        h = h.reshape(2, 6, 4)
        for m in ours[4]:
            h = m(h)
        return ours[7](ours[6](ours[5](h.permute(0, 2, 1))))

    def run_theirs(x):
        h = theirs[3](theirs[2](theirs[1](theirs[0](x)))).reshape(2, 6, 4)
        for m in theirs[4]:
            h = m(h)
        return theirs[7](theirs[6](theirs[5](h.permute(0, 2, 1))))

    y = run_ours(Tensor(x))
    np.testing.assert_allclose(y.data, run_theirs(torch.tensor(x)).detach().numpy(), rtol=1e-4, atol=1e-5)
    y.sum().backward()
    assert all(p.grad is not None for p in ours.parameters())
    ours.zero_grad()
    assert all(p.grad is None for p in ours.parameters())


def test_reassigning_a_parameter_keeps_its_place():
    ours, theirs = nn.Linear(2, 3), torch.nn.Linear(2, 3)
    ours.weight = nn.Parameter(np.zeros((3, 2), np.float32))
    theirs.weight = torch.nn.Parameter(torch.zeros(3, 2))
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight", "bias"]
    ours.bias = None
    assert list(ours.state_dict()) == ["weight"]
    ours.bias = nn.Parameter(np.zeros(3, np.float32))
    assert list(ours.state_dict()) == ["weight", "bias"]


def test_assigning_plain_tensor_to_parameter_is_an_error():
    layer = nn.Linear(2, 3)
    with pytest.raises(TypeError, match="plain Tensor to parameter 'weight'"):
        layer.weight = Tensor(np.zeros((3, 2), np.float32))
    assert "weight" in layer.state_dict()


def test_buffer_name_clash_is_an_error():
    layer = nn.Linear(2, 3)
    with pytest.raises(KeyError, match="already has a parameter"):
        layer.register_buffer("weight", np.zeros(3))


def test_module_without_super_init_is_an_error():
    class Broken(nn.Module):
        def __init__(self):
            self.layer = nn.Linear(1, 1)

    with pytest.raises(RuntimeError, match=r"must call super\(\)\.__init__\(\)"):
        Broken()


def test_apply_visits_children_first():
    order = []
    model = nn.Sequential(nn.Linear(1, 1), nn.Sequential(nn.Identity()))
    model.apply(lambda m: order.append(type(m).__name__))
    assert order == ["Linear", "Identity", "Sequential", "Sequential"]


def test_to_dtype_casts_floats_and_keeps_counters():
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3))
    model.to_dtype(np.float64)
    for name, value in model.state_dict().items():
        expected = np.int64 if name.endswith("num_batches_tracked") else np.float64
        assert value.dtype == expected, name
    y = model(np.ones((2, 2, 4, 4)))
    assert y.dtype == np.float64
    assert int(model[1].num_batches_tracked) == 1


def test_layers_keep_their_dtype():
    for layer in (nn.Linear(3, 2, dtype=np.float64), nn.Conv1d(3, 2, 1, dtype=np.float64),
                  nn.BatchNorm1d(3, dtype=np.float64), nn.LayerNorm(3, dtype=np.float64)):
        assert all(p.dtype == np.float64 for p in layer.parameters())
    with pytest.raises(TypeError, match="float32 or float64"):
        nn.Linear(3, 2, dtype=np.int32)


# ------------------------------------------------------------------------------ containers

def test_sequential_indexing_and_slicing():
    layers = [nn.Linear(2, 2), nn.Identity(), nn.Linear(2, 3)]
    seq = nn.Sequential(*layers)
    assert len(seq) == 3 and seq[0] is layers[0] and seq[-1] is layers[2]
    assert [m for m in seq] == layers
    tail = seq[1:]
    assert isinstance(tail, nn.Sequential) and list(tail.state_dict()) == ["2.weight", "2.bias"]
    named = nn.Sequential(OrderedDict(first=nn.Linear(2, 2), second=nn.Linear(2, 1)))
    assert list(named.state_dict()) == ["first.weight", "first.bias", "second.weight", "second.bias"]
    assert named[1] is named.second
    with pytest.raises(IndexError, match="out of range"):
        seq[3]
    with pytest.raises(TypeError, match="Modules only"):
        nn.Sequential(nn.Linear(1, 1), lambda x: x)


def test_module_list_edits_renumber_like_torch():
    ours = nn.ModuleList([nn.Linear(1, 1), nn.Linear(1, 2)])
    theirs = torch.nn.ModuleList([torch.nn.Linear(1, 1), torch.nn.Linear(1, 2)])
    for m in (ours, theirs):
        m.append(type(m[0])(2, 3))
        m.extend([type(m[0])(3, 4)])
    ours.insert(1, nn.Linear(5, 5))
    theirs.insert(1, torch.nn.Linear(5, 5))
    del ours[0]
    del theirs[0]
    expected = {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    assert {k: v.shape for k, v in ours.state_dict().items()} == expected
    with pytest.raises(NotImplementedError, match="iterate"):
        ours(1)


# ---------------------------------------------------------------------------- initialisers

@pytest.mark.parametrize("make, fan_in", [(lambda: nn.Linear(300, 200), 300), (lambda: nn.Conv2d(32, 64, 3), 288),
                                          (lambda: nn.Conv1d(40, 80, 3), 120)])
def test_default_init_is_uniform_one_over_sqrt_fan_in(make, fan_in):
    layer = make()
    bound = 1.0 / math.sqrt(fan_in)
    w, b = layer.weight.data, layer.bias.data
    assert w.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.03 * bound  # std of U(−a, a) is a/√3
    assert abs(w.mean()) < 0.03 * bound
    assert np.abs(b).max() <= bound


def test_norm_layers_start_as_identity():
    bn, ln = nn.BatchNorm2d(5), nn.LayerNorm((2, 3))
    np.testing.assert_array_equal(bn.weight.data, np.ones(5))
    np.testing.assert_array_equal(bn.bias.data, np.zeros(5))
    np.testing.assert_array_equal(bn.running_var, np.ones(5))
    np.testing.assert_array_equal(ln.weight.data, np.ones((2, 3)))
    np.testing.assert_array_equal(ln.bias.data, np.zeros((2, 3)))


def test_manual_seed_makes_init_reproducible():
    nn.init.manual_seed(3)
    a = nn.Conv2d(4, 4, 3).weight.data.copy()
    nn.init.manual_seed(3)
    b = nn.Conv2d(4, 4, 3).weight.data.copy()
    c = nn.Conv2d(4, 4, 3).weight.data.copy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(b, c)


def test_trunc_normal_statistics_and_bounds():
    w = nn.Parameter(np.empty((400, 500), np.float32))
    nn.init.trunc_normal_(w, std=0.02)
    assert w.dtype == np.float32 and abs(w.data.std() - 0.02) < 5e-4 and abs(w.data.mean()) < 5e-4
    # a tight window: samples stay inside and their mean is the truncated-normal mean
    t = np.empty(200_000)
    nn.init.trunc_normal_(t, mean=0.0, std=1.0, a=0.0, b=1.0, rng=np.random.default_rng(0))
    assert t.min() >= 0.0 and t.max() <= 1.0
    phi = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    expected_mean = (phi(0.0) - phi(1.0)) / (0.5 * (math.erf(1 / math.sqrt(2)) - 0.0))
    assert abs(t.mean() - expected_mean) < 5e-3


def test_other_initialisers():
    w = np.empty((64, 32, 3, 3), np.float32)
    nn.init.kaiming_uniform_(w, a=0.0, mode="fan_out", nonlinearity="relu")
    bound = math.sqrt(2.0) * math.sqrt(3.0 / (64 * 9))
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.98 * bound
    nn.init.constant_(w, 0.5)
    assert np.all(w == 0.5)
    assert nn.init.calculate_fan_in_and_fan_out((8, 4, 3, 3)) == (36, 72)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        nn.init.kaiming_uniform_(np.empty(3, np.float32))
    with pytest.raises(TypeError, match="floating-point"):
        nn.init.zeros_(np.empty(3, np.int64))
