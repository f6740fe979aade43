"""The tutorials' exercise checkers (tutorials/checks/) and worked solutions (tutorials/solutions/).

Every solution must pass its checker, a typical wrong answer must fail it with a reason, and an
unsolved exercise (a function that raises NotImplementedError) must be reported as not attempted
without raising, so that the notebooks run top to bottom before anyone solves them.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
sys.path.insert(0, str(TUTORIALS))
import checks  # noqa: E402  (lives in tutorials/, the notebooks' working directory)


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"tutorial_solution_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SOLUTION_FILES = sorted((TUTORIALS / "solutions").glob("[0-9]*.py"))
SOLVED = {name: args for path in SOLUTION_FILES for name, args in _load(path).CHECKED.items()}


def _not_implemented(*args, **kwargs):
    raise NotImplementedError


def _zeros_like_first(*args, **kwargs):
    return np.zeros_like(np.asarray(args[0], dtype=np.float64))


SILU = _load(TUTORIALS / "solutions" / "01_autograd_from_scratch.py").SiLU


class _SiLUUnsolved(SILU):
    """The notebook's empty exercise cell: a Function whose methods are still to be written."""

    @staticmethod
    def forward(ctx, x):
        raise NotImplementedError


class _SiLUWrongBackward(SILU):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 0.5 * (1.0 + np.tanh(0.5 * x))         # σ(x): forgets the x·σ'(x) term


# One typical mistake per checker.
WRONG = {
    "check_00_model_input": (lambda images, normalization: images.transpose(0, 3, 1, 2).astype(np.float32) / 255,),
    "check_00_quietest_layer": (("blocks.0.attn.sn_attn", 0.5),),
    "check_00_logit_gradient": (lambda model, x, k: np.zeros_like(x),),
    "check_01_silu": (_SiLUWrongBackward,),
    "check_01_forward_difference": (2.0, 5e-6),           # the central difference's answers
    "check_01_accumulate": (lambda w, X, y, n: 2.0 * X.T @ (X @ w - y) / (len(y) / n),),   # mean per micro-batch
    "check_02_latency": (lambda p, T: np.zeros((T,) + np.shape(p)),),
    "check_02_threshold": (lambda T, v_th: 2 * v_th,),
    "check_02_poisson_count": (lambda p, T: T * np.asarray(p),),
    "check_03_no_decay_input": (lambda x_seq, tau, v_th, v_reset: (x_seq >= v_th).astype(x_seq.dtype),),
    "check_03_soft_rate": (lambda x, tau, v_th: min(1.0, x / v_th),),
    "check_03_adaptive": (lambda x_seq, beta, tau_a: (np.zeros_like(x_seq), np.ones_like(x_seq)),),
    "check_04_fast_sigmoid_d_alpha": (_zeros_like_first,),
    "check_04_mismatch": ({"sigmoid": 1.0, "piecewise_linear": 1 / 3, "rectangular": 1 / 4},),
    "check_04_channel_slope_grad": (lambda u, k, G, theta: np.zeros_like(k),),
    "check_05_tau_grad": (lambda g_seq, x_seq, tau: 0.0,),
    "check_05_soft_backward": (lambda g_seq, x_seq, tau, v_th, alpha, detach: g_seq / tau,),
    "check_06_soft_kernel": (lambda x_seq, tau, v_th: (x_seq >= v_th).astype(np.float32),),
    "check_07_max_entry": (32,),
    "check_07_costs": (lambda nq, nk, d, dv: (2 * nq * nk * d, 2 * nq * d * d),),
    "check_07_ssa_backward": (lambda q, k, v, g, s: (q, k, v),),
    "check_08_attention_trains": ({1.0: [0, 1, 0, 1], 0.5: [1, 1, 1, 1]},),
    "check_09_atan_d_alpha": (_zeros_like_first,),
    "check_10_cutmix": (lambda x, y, perm, box: (x, y),),
    "check_10_schedule_gap": (150,),
    "check_11_storage_classes": ({"FloatStorage"},),
    "check_11_global_names": ({"eval": "__builtin__.eval", "Popen": "subprocess.Popen"},),
    "check_12_polarity_events": (lambda video, threshold=0.5: np.stack([video > threshold, video < threshold], 1),),
    "check_12_gradient_reach": (lambda T, k, t: np.arange(T) <= t,),      # forgets the truncation
    "check_12_t1_ceiling": (0.25,),
    "check_13_largest_difference": (lambda model, module: max(                          # parameters only
        float(np.abs(p.data - q.detach().numpy()).max()) for p, q in zip(model.parameters(), module.parameters())),),
    "check_13_buffer_count": (0,),
    "check_14_tanh_derivatives": (lambda x, a: (a / np.cosh(a * x) ** 2, x / np.cosh(a * x) ** 2),),  # no 1/2
    "check_14_firing_gaps": (lambda period, rho, amplitude: [int(period)],),          # the period alone
    "check_14_failing_checks": ({"reset detachment"},),
}


def test_every_checker_has_a_solution_and_a_wrong_answer():
    assert SOLUTION_FILES, "no solution files found in tutorials/solutions/"
    assert set(SOLVED) == set(checks.__all__), f"solutions missing for {sorted(set(checks.__all__) - set(SOLVED))}"
    assert set(WRONG) == set(checks.__all__), f"wrong answers missing for {sorted(set(checks.__all__) - set(WRONG))}"


@pytest.mark.parametrize("name", sorted(SOLVED))
def test_solution_passes_its_checker(name, capsys):
    assert getattr(checks, name)(*SOLVED[name]) is True, capsys.readouterr().out
    assert capsys.readouterr().out.startswith("right: ")


@pytest.mark.parametrize("name", sorted(WRONG))
def test_wrong_answer_fails_with_a_reason(name, capsys):
    assert getattr(checks, name)(*WRONG[name]) is False
    assert capsys.readouterr().out.startswith("wrong: ")


UNSOLVED = {name: (_SiLUUnsolved,) if name == "check_01_silu" else (_not_implemented,)
            for name, args in SOLVED.items() if len(args) == 1 and callable(args[0])}


@pytest.mark.parametrize("name", sorted(UNSOLVED))
def test_unsolved_exercise_is_reported_not_raised(name, capsys):
    assert getattr(checks, name)(*UNSOLVED[name]) is False
    assert "not attempted" in capsys.readouterr().out
