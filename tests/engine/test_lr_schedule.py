"""Learning-rate schedules against their closed forms and torch.optim.lr_scheduler."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, strategies as st  # noqa: E402

from minisnn.nn.module import Parameter  # noqa: E402
from minisnn.optim import SGD, AdamW, TimmCosine, WarmupCosine, timm_cosine_lr  # noqa: E402


def closed_form_warmup_cosine(t, warmup, total, base, low, start):
    if t < warmup:
        return start + (base - start) * t / warmup
    if t >= total:
        return low
    return low + (base - low) * (1 + math.cos(math.pi * (t - warmup) / (total - warmup))) / 2


def schedule_lrs(schedule, optimizer, n):
    """lr used by optimiser steps 0..n-1 under `optimizer.step(); schedule.step()`."""
    out = []
    for _ in range(n):
        out.append(optimizer.param_groups[0]["lr"])
        schedule.step()
    return out


@given(warmup=st.integers(0, 12), extra=st.integers(1, 40), base=st.floats(1e-4, 1.0),
       low_frac=st.floats(0.0, 0.5), start_frac=st.floats(0.0, 1.0))
def test_warmup_cosine_closed_form(warmup, extra, base, low_frac, start_frac):
    total = warmup + extra
    low, start = base * low_frac, base * start_frac
    opt = SGD([Parameter(np.zeros(1))], lr=123.0)
    sched = WarmupCosine(opt, warmup=warmup, total=total, base_lr=base, min_lr=low, warmup_start_lr=start)
    got = schedule_lrs(sched, opt, total + 5)
    want = [closed_form_warmup_cosine(t, warmup, total, base, low, start) for t in range(total + 5)]
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-16)
    assert sched.lr_at(warmup) == pytest.approx(base) and sched.lr_at(total) == low
    assert all(sched.lr_at(t) >= sched.lr_at(t + 1) - 1e-15 for t in range(warmup, total + 3))


@pytest.mark.parametrize("warmup, total, start", [(5, 30, 0.01), (1, 10, 0.05), (8, 9, 0.02)])
def test_warmup_cosine_matches_torch_sequential_linear_then_cosine(warmup, total, start):
    base, low = 0.1, 0.001
    opt = SGD([Parameter(np.zeros(1))], lr=base)
    sched = WarmupCosine(opt, warmup=warmup, total=total, base_lr=base, min_lr=low, warmup_start_lr=start)
    tp = torch.zeros(1, requires_grad=True)
    topt = torch.optim.SGD([tp], lr=base)
    lin = torch.optim.lr_scheduler.LinearLR(topt, start_factor=start / base, end_factor=1.0, total_iters=warmup)
    cos = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=total - warmup, eta_min=low)
    tsched = torch.optim.lr_scheduler.SequentialLR(topt, [lin, cos], milestones=[warmup])
    for _ in range(total + 1):  # torch's cosine turns back up after T_max; compare up to the end
        np.testing.assert_allclose(opt.param_groups[0]["lr"], topt.param_groups[0]["lr"], rtol=1e-12)
        topt.step()
        tsched.step()
        sched.step()


def test_warmup_cosine_matches_torch_lambda_lr_from_zero_and_cosine_annealing():
    base, warmup, total = 0.2, 4, 25
    opt = SGD([Parameter(np.zeros(1))], lr=base)
    sched = WarmupCosine(opt, warmup=warmup, total=total, base_lr=base)
    tp = torch.zeros(1, requires_grad=True)
    topt = torch.optim.SGD([tp], lr=base)

    def factor(t):  # LambdaLR multiplies the initial lr by this
        if t < warmup:
            return t / warmup
        return 0.5 * (1 + math.cos(math.pi * min(t - warmup, total - warmup) / (total - warmup)))

    tsched = torch.optim.lr_scheduler.LambdaLR(topt, factor)
    for _ in range(total + 3):
        np.testing.assert_allclose(opt.param_groups[0]["lr"], topt.param_groups[0]["lr"], rtol=1e-13, atol=1e-17)
        topt.step()
        tsched.step()
        sched.step()

    opt = SGD([Parameter(np.zeros(1))], lr=base)
    sched = WarmupCosine(opt, warmup=0, total=total, base_lr=base, min_lr=0.01)
    topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base)
    tsched = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=total, eta_min=0.01)
    for _ in range(total + 1):
        np.testing.assert_allclose(opt.param_groups[0]["lr"], topt.param_groups[0]["lr"], rtol=1e-12)
        topt.step()
        tsched.step()
        sched.step()


def test_schedule_scales_groups_and_resumes_from_state_dict():
    a, b = Parameter(np.zeros(1)), Parameter(np.zeros(1))
    opt = AdamW([{"params": [a]}, {"params": [b], "lr_scale": 0.1}])
    sched = WarmupCosine(opt, warmup=3, total=20, base_lr=1e-3, min_lr=1e-5)
    for _ in range(7):
        sched.step()
    assert opt.param_groups[1]["lr"] == pytest.approx(0.1 * opt.param_groups[0]["lr"])
    assert sched.get_last_lr() == [g["lr"] for g in opt.param_groups]
    saved = sched.state_dict()
    lrs_at_save = sched.get_last_lr()
    rest = [sched.step() for _ in range(15)]

    opt2 = AdamW([{"params": [Parameter(np.zeros(1))]}, {"params": [Parameter(np.zeros(1))], "lr_scale": 0.1}])
    sched2 = WarmupCosine(opt2, warmup=1, total=2, base_lr=5.0)  # hyper-parameters come from the state
    sched2.load_state_dict(saved)
    assert sched2.get_last_lr() == lrs_at_save
    assert [sched2.step() for _ in range(15)] == rest


def test_schedule_bad_arguments():
    opt = SGD([Parameter(np.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match="warmup"):
        WarmupCosine(opt, warmup=11, total=10, base_lr=0.1)
    with pytest.raises(ValueError, match="total"):
        WarmupCosine(opt, warmup=0, total=0, base_lr=0.1)
    with pytest.raises(ValueError, match="min_lr"):
        WarmupCosine(opt, warmup=0, total=5, base_lr=0.1, min_lr=-1.0)
    with pytest.raises(TypeError, match="Optimizer"):
        WarmupCosine(object(), warmup=0, total=5, base_lr=0.1)


def spec_msvit_lr(e, base, cosine=400):
    """upstream_models.md §5, written out: timm cosine, warmup_prefix=False, 20 warm-up epochs from 1e-5."""
    if e < 20:
        return 1e-5 + e * (base - 1e-5) / 20
    if e < cosine:
        return 1e-5 + 0.5 * (base - 1e-5) * (1 + math.cos(math.pi * e / cosine))
    return 1e-5


@pytest.mark.parametrize("base, cosine, scheduled", [(1e-3, 400, 410), (5e-4, 300, 310)])
def test_timm_cosine_reproduces_the_recipe_formula(base, cosine, scheduled):
    for e in range(scheduled):
        got = timm_cosine_lr(e, base, t_initial=cosine, lr_min=1e-5, warmup_t=20, warmup_lr_init=1e-5)
        assert got == pytest.approx(spec_msvit_lr(e, base, cosine), rel=1e-13, abs=1e-18)
    # warmup_prefix=False: the cosine has already moved off the peak when warm-up ends
    assert timm_cosine_lr(20, base, cosine, 1e-5, 20, 1e-5) < base


def test_timm_cosine_warmup_prefix_and_scheduler():
    base = 1e-3
    # warmup_prefix=True shifts the cosine to start at the peak when warm-up ends
    assert timm_cosine_lr(5, base, 50, 0.0, 5, 0.0, warmup_prefix=True) == pytest.approx(base)
    assert timm_cosine_lr(55, base, 50, 0.0, 5, 0.0, warmup_prefix=True) == 0.0
    assert timm_cosine_lr(30, base, 50, 1e-6, 5, 0.0, warmup_prefix=True) == pytest.approx(
        1e-6 + 0.5 * (base - 1e-6) * (1 + math.cos(math.pi * 25 / 50)))
    opt = AdamW([Parameter(np.zeros(1))], lr=base)
    sched = TimmCosine(opt, base_lr=base, t_initial=40, lr_min=1e-5, warmup_t=4, warmup_lr_init=1e-5)
    for e in range(45):
        assert opt.param_groups[0]["lr"] == pytest.approx(
            timm_cosine_lr(e, base, 40, 1e-5, 4, 1e-5), rel=1e-15)
        sched.step()
    with pytest.raises(ValueError, match="epoch"):
        timm_cosine_lr(-1, base, 40)
