"""Optimisers, gradient clipping and parameter groups against torch.optim."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, strategies as st  # noqa: E402

from minisnn import Tensor  # noqa: E402
from minisnn import functional as F  # noqa: E402
from minisnn.nn.module import Module, Parameter  # noqa: E402
from minisnn.optim import (SGD, Adam, AdamW, WarmupCosine, clip_grad_norm_, decay_groups,  # noqa: E402
                           decay_split_names)

# trajectories agree to a few ULPs (torch fuses some multiply-adds)
TRAJ_TOL = {np.float64: dict(rtol=1e-12, atol=1e-14), np.float32: dict(rtol=1e-5, atol=1e-6)}

OPTIMISERS = {
    "sgd": (SGD, torch.optim.SGD, dict(lr=0.1)),
    "sgd_wd": (SGD, torch.optim.SGD, dict(lr=0.1, weight_decay=0.05)),
    "momentum": (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9)),
    "momentum_dampening_wd": (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01)),
    "nesterov": (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    "adam": (Adam, torch.optim.Adam, dict(lr=0.01)),
    "adam_l2": (Adam, torch.optim.Adam, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    "adam_amsgrad": (Adam, torch.optim.Adam, dict(lr=0.01, amsgrad=True)),
    "adamw": (AdamW, torch.optim.AdamW, dict(lr=0.01, weight_decay=0.1)),
    "adamw_default_decay": (AdamW, torch.optim.AdamW, dict(lr=0.02)),
    "adamw_amsgrad": (AdamW, torch.optim.AdamW, dict(lr=0.01, weight_decay=0.05, amsgrad=True)),
}


def make_params(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((3, 4)).astype(dtype), rng.standard_normal(4).astype(dtype),
            rng.standard_normal((2, 1, 3)).astype(dtype)]


def run_pair(name, dtype, steps=20, groups=None, seed=0):
    """Feed the same gradient sequence to both optimisers; return final (ours, torch) parameter lists."""
    ours_cls, torch_cls, kwargs = OPTIMISERS[name]
    init = make_params(dtype, seed)
    mine = [Parameter(a.copy()) for a in init]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    if groups is None:
        opt, topt = ours_cls(mine, **kwargs), torch_cls(theirs, **kwargs)
    else:
        opt = ours_cls([dict(g, params=[mine[i] for i in idx]) for idx, g in groups], **kwargs)
        topt = torch_cls([dict(g, params=[theirs[i] for i in idx]) for idx, g in groups], **kwargs)
    rng = np.random.default_rng(seed + 1)
    for _ in range(steps):
        for m, t in zip(mine, theirs):
            g = (rng.standard_normal(m.shape) * 2).astype(dtype)
            m.grad, t.grad = g, torch.from_numpy(g.copy())
        opt.step()
        topt.step()
    return mine, theirs


@pytest.mark.parametrize("name", sorted(OPTIMISERS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_trajectory_matches_torch(name, dtype):
    mine, theirs = run_pair(name, dtype)
    for m, t in zip(mine, theirs):
        assert m.dtype == dtype
        np.testing.assert_allclose(m.data, t.detach().numpy(), **TRAJ_TOL[dtype])


@pytest.mark.parametrize("name", ["momentum", "adam", "adamw"])
def test_param_groups_with_own_hyperparameters_match_torch(name):
    groups = [((0,), {"lr": 0.003, "weight_decay": 0.2}), ((1, 2), {"weight_decay": 0.0})]
    mine, theirs = run_pair(name, np.float64, groups=groups)
    for m, t in zip(mine, theirs):
        np.testing.assert_allclose(m.data, t.detach().numpy(), **TRAJ_TOL[np.float64])


@pytest.mark.parametrize("name", ["nesterov", "adamw"])
def test_gradients_from_autograd_drive_the_same_trajectory(name):
    """Least squares trained 20 steps, each framework computing its own gradients."""
    ours_cls, torch_cls, kwargs = OPTIMISERS[name]
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((16, 5)), rng.standard_normal((16, 2))
    w0, b0 = rng.standard_normal((5, 2)) * 0.1, np.zeros(2)
    w, b = Parameter(w0.copy()), Parameter(b0.copy())
    tw, tb = torch.tensor(w0.copy(), requires_grad=True), torch.tensor(b0.copy(), requires_grad=True)
    opt, topt = ours_cls([w, b], **kwargs), torch_cls([tw, tb], **kwargs)
    for _ in range(20):
        opt.zero_grad()
        topt.zero_grad()
        ((Tensor(x) @ w + b - y) ** 2).mean().backward()
        ((torch.from_numpy(x) @ tw + tb - torch.from_numpy(y)) ** 2).mean().backward()
        opt.step()
        topt.step()
    np.testing.assert_allclose(w.data, tw.detach().numpy(), rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(b.data, tb.detach().numpy(), rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("name", ["momentum", "adamw"])
def test_params_without_grad_are_skipped(name):
    ours_cls, _, kwargs = OPTIMISERS[name]
    a, b = Parameter(np.ones(3)), Parameter(np.ones(2))
    opt = ours_cls([a, b], **kwargs)
    a.grad = np.ones(3)
    opt.step()
    np.testing.assert_array_equal(b.data, np.ones(2))
    assert b not in opt.state and a in opt.state
    assert not np.array_equal(a.data, np.ones(3))


@pytest.mark.parametrize("name", ["momentum", "adamw"])
def test_update_is_in_place_and_keeps_float32(name):
    ours_cls, _, kwargs = OPTIMISERS[name]
    p = Parameter(np.ones((2, 3), dtype=np.float32))
    buffer = p.data
    opt = ours_cls([p], **kwargs)
    p.grad = np.full((2, 3), 0.5, dtype=np.float32)
    opt.step()
    assert p.data is buffer and p.dtype == np.float32
    assert all(v.dtype == np.float32 for v in opt.state[p].values() if isinstance(v, np.ndarray))


def test_read_only_parameter_data_is_copied_before_update():
    arr = np.ones(3)
    arr.flags.writeable = False
    p = Parameter(arr)
    opt = SGD([p], lr=1.0)
    p.grad = np.ones(3)
    opt.step()
    np.testing.assert_array_equal(p.data, np.zeros(3))
    np.testing.assert_array_equal(arr, np.ones(3))


def test_zero_grad_sets_none():
    p = Parameter(np.ones(2))
    opt = Adam([p])
    p.grad = np.ones(2)
    opt.zero_grad()
    assert p.grad is None


# ------------------------------------------------------------------------------ state dict / resume

@pytest.mark.parametrize("name", ["momentum", "nesterov", "adam_amsgrad", "adamw"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_state_dict_resume_is_bit_exact(name, dtype):
    ours_cls, _, kwargs = OPTIMISERS[name]
    rng = np.random.default_rng(3)
    grads = [[rng.standard_normal(a.shape).astype(dtype) for a in make_params(dtype)] for _ in range(20)]

    def steps(params, opt, seq):
        for gs in seq:
            for p, g in zip(params, gs):
                p.grad = g.copy()
            opt.step()

    straight = [Parameter(a) for a in make_params(dtype)]
    opt = ours_cls([{"params": straight[:1], "lr": 0.003}, {"params": straight[1:]}], **kwargs)
    steps(straight, opt, grads)

    first = [Parameter(a) for a in make_params(dtype)]
    opt1 = ours_cls([{"params": first[:1], "lr": 0.003}, {"params": first[1:]}], **kwargs)
    steps(first, opt1, grads[:10])
    saved = opt1.state_dict()
    params_at_10 = [p.data.copy() for p in first]
    snapshot = {k: {n: np.copy(v) for n, v in s.items()} for k, s in saved["state"].items()}
    steps(first, opt1, grads[10:11])  # training on must not alter the saved copy
    for k, s in saved["state"].items():
        for n, v in s.items():
            np.testing.assert_array_equal(v, snapshot[k][n])

    fresh = [Parameter(a) for a in params_at_10]
    opt2 = ours_cls([{"params": fresh[:1], "lr": 0.5}, {"params": fresh[1:]}], **kwargs)
    opt2.load_state_dict(saved)
    assert opt2.param_groups[0]["lr"] == 0.003  # hyper-parameters come back too
    steps(fresh, opt2, grads[10:])
    for p, q in zip(fresh, straight):
        np.testing.assert_array_equal(p.data, q.data)


def test_state_dict_layout_matches_torch_for_adam():
    p = Parameter(np.ones(2))
    opt = AdamW([p], lr=0.1)
    p.grad = np.ones(2)
    opt.step()
    sd = opt.state_dict()
    assert set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq"} and sd["state"][0]["step"] == 1
    assert sd["param_groups"][0]["params"] == [0]
    tp = torch.ones(2, requires_grad=True)
    topt = torch.optim.AdamW([tp], lr=0.1)
    tp.grad = torch.ones(2)
    topt.step()
    tsd = topt.state_dict()
    assert set(sd["state"][0]) == set(tsd["state"][0])
    assert {"lr", "betas", "eps", "weight_decay", "amsgrad"} <= set(tsd["param_groups"][0])
    assert {"lr", "betas", "eps", "weight_decay", "amsgrad"} <= set(sd["param_groups"][0])


def test_load_state_dict_rejects_mismatched_layout():
    a, b = Parameter(np.ones(2)), Parameter(np.ones(3))
    opt = Adam([a, b])
    a.grad, b.grad = np.ones(2), np.ones(3)
    opt.step()
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="param groups"):
        Adam([{"params": [a]}, {"params": [b]}]).load_state_dict(sd)
    with pytest.raises(ValueError, match="2 parameters"):
        Adam([a]).load_state_dict(sd)
    with pytest.raises(ValueError, match="shape"):
        Adam([Parameter(np.ones(3)), Parameter(np.ones(2))]).load_state_dict(sd)


# ------------------------------------------------------------------------------ hyper-parameters

@pytest.mark.parametrize("make", [
    lambda p: SGD(p, lr=-0.1),
    lambda p: SGD(p, lr=0.1, momentum=-0.5),
    lambda p: SGD(p, lr=0.1, nesterov=True),
    lambda p: SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
    lambda p: Adam(p, betas=(0.9, 1.0)),
    lambda p: Adam(p, eps=-1.0),
    lambda p: AdamW(p, weight_decay=-0.1),
    lambda p: Adam(p, lr=float("nan")),
])
def test_bad_hyperparameters(make):
    with pytest.raises(ValueError):
        make([Parameter(np.ones(2))])


def test_bad_params():
    p = Parameter(np.ones(2))
    with pytest.raises(ValueError, match="empty"):
        SGD([], lr=0.1)
    with pytest.raises(TypeError, match="single Tensor"):
        SGD(p, lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        SGD([p, p], lr=0.1)
    with pytest.raises(ValueError, match="leaf"):
        SGD([p * 2], lr=0.1)
    with pytest.raises(TypeError, match="Tensors"):
        SGD([np.ones(2)], lr=0.1)


# ------------------------------------------------------------------------------------- clipping

@given(seed=st.integers(0, 10_000), max_norm=st.sampled_from([0.1, 1.0, 5.0, 1e6]),
       norm_type=st.sampled_from([2.0, 1.0, 3.0, math.inf]), dtype=st.sampled_from([np.float64, np.float32]))
def test_clip_grad_norm_matches_torch(seed, max_norm, norm_type, dtype):
    rng = np.random.default_rng(seed)
    shapes = [(3, 4), (4,), (2, 2, 2)]
    grads = [(rng.standard_normal(s) * rng.uniform(0.1, 3)).astype(dtype) for s in shapes]
    mine = [Parameter(np.zeros(s, dtype=dtype)) for s in shapes] + [Parameter(np.zeros(2, dtype=dtype))]
    theirs = [torch.zeros(s, dtype=torch.from_numpy(np.zeros(1, dtype)).dtype, requires_grad=True)
              for s in shapes] + [torch.zeros(2, requires_grad=True)]
    for m, t, g in zip(mine, theirs, grads):
        m.grad, t.grad = g.copy(), torch.from_numpy(g.copy())
    total = clip_grad_norm_(mine, max_norm, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    assert isinstance(total, float)
    np.testing.assert_allclose(total, expected.item(), rtol=rtol)
    for m, t in zip(mine[:3], theirs[:3]):
        assert m.grad.dtype == dtype
        np.testing.assert_allclose(m.grad, t.grad.numpy(), rtol=rtol, atol=1e-7 if dtype == np.float32 else 0)
    assert mine[3].grad is None


def test_clip_does_not_touch_small_gradients_and_accepts_one_tensor():
    p = Parameter(np.array([0.3, -0.4]))
    p.grad = np.array([0.3, -0.4])
    assert clip_grad_norm_(p, 1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(p.grad, [0.3, -0.4])
    assert clip_grad_norm_(p, 0.25) == pytest.approx(0.5)
    np.testing.assert_allclose(p.grad, np.array([0.3, -0.4]) * 0.25 / (0.5 + 1e-6))


@pytest.mark.parametrize("bad", [np.inf, np.nan])
@pytest.mark.parametrize("max_norm", [1.0, math.inf])
def test_clip_non_finite_like_torch(bad, max_norm):
    g = np.array([1.0, bad, 2.0])
    p = Parameter(np.zeros(3))
    p.grad = g.copy()
    t = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    t.grad = torch.from_numpy(g.copy())
    total = clip_grad_norm_([p], max_norm)
    expected = torch.nn.utils.clip_grad_norm_([t], max_norm)
    assert not math.isfinite(total)
    np.testing.assert_equal(total, expected.item())
    np.testing.assert_array_equal(p.grad, t.grad.numpy())
    p.grad = g.copy()
    with pytest.raises(RuntimeError, match="norm"):
        clip_grad_norm_([p], max_norm, error_if_nonfinite=True)


def test_clip_without_gradients_returns_zero():
    assert clip_grad_norm_([Parameter(np.ones(2))], 1.0) == 0.0


# ------------------------------------------------------------------------------- param groups

class Norm(Module):
    def __init__(self, c):
        super().__init__()
        self.weight = Parameter(np.ones(c))
        self.bias = Parameter(np.zeros(c))


class Dense(Module):
    def __init__(self, i, o):
        super().__init__()
        self.weight = Parameter(np.zeros((o, i)))
        self.bias = Parameter(np.zeros(o))


class Net(Module):
    def __init__(self):
        super().__init__()
        self.pos_embed = Parameter(np.zeros((1, 4, 8)))
        self.conv = Dense(3, 8)
        self.conv.weight = Parameter(np.zeros((8, 3, 3, 3)))  # a conv kernel
        self.norm = Norm(8)
        self.head = Dense(8, 10)
        self.gate = Dense(8, 8)
        self.gate.bias = Parameter(np.zeros((1, 8)))  # 2-D, but still a bias
        self.tau = Parameter(np.array(2.0))
        self.frozen = Parameter(np.zeros((4, 4)), requires_grad=False)
        self.table = Parameter(np.zeros((5, 8)))


def test_decay_groups_rules():
    net = Net()
    decay, no_decay = decay_split_names(net)
    assert sorted(decay) == ["conv.weight", "gate.weight", "head.weight", "table"]
    assert sorted(no_decay) == ["conv.bias", "gate.bias", "head.bias", "norm.bias", "norm.weight",
                                "pos_embed", "tau"]
    groups = decay_groups(net, 0.05)
    assert [g["weight_decay"] for g in groups] == [0.05, 0.0]
    assert all(p.requires_grad for g in groups for p in g["params"])
    # the groups plug straight into an optimiser
    opt = AdamW(groups, lr=1e-3)
    assert opt.param_groups[0]["weight_decay"] == 0.05 and opt.param_groups[1]["weight_decay"] == 0.0


def test_decay_groups_skip_list_and_model_hook():
    net = Net()
    decay, _ = decay_split_names(net, skip=["table", "head.weight"])
    assert sorted(decay) == ["conv.weight", "gate.weight"]
    net.no_weight_decay = lambda: {"conv.weight"}
    decay, _ = decay_split_names(net)
    assert sorted(decay) == ["gate.weight", "head.weight", "table"]
    with pytest.raises(ValueError, match="weight_decay"):
        decay_groups(net, -1.0)


def test_adamw_decay_only_touches_the_decay_group():
    net = Net()
    for p in net.parameters():
        p.data = np.ones(p.shape)
    opt = AdamW(decay_groups(net, 0.5), lr=0.1)
    for p in net.parameters():
        p.grad = np.zeros(p.shape)  # zero gradient: only the decoupled decay moves a parameter
    opt.step()
    np.testing.assert_allclose(net.head.weight.data, 1 - 0.1 * 0.5)
    np.testing.assert_array_equal(net.head.bias.data, 1.0)
    np.testing.assert_array_equal(net.pos_embed.data, 1.0)


def test_training_loop_smoke_reduces_loss():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 4))
    y = (x @ rng.standard_normal(4) > 0).astype(np.int64)
    w = Parameter(np.zeros((4, 2)))
    opt = AdamW([w], lr=0.1)
    sched = WarmupCosine(opt, warmup=2, total=30, base_lr=0.1)
    losses = []
    for _ in range(30):
        loss = F.cross_entropy(Tensor(x) @ w, y)
        opt.zero_grad()
        loss.backward()
        clip_grad_norm_([w], 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
