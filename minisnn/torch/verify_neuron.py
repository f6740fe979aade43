"""`minisnn verify-neuron`: check a PyTorch spiking neuron against the dynamics it claims.

    from spikingjelly.activation_based import neuron
    report = verify_neuron(neuron.LIFNode(step_mode="m", detach_reset=True), "lif tau=2 surrogate=sigmoid:4")
    print(report.format()); report.ok

The module (any torch module mapping x_seq [T, ...] to spikes, or a step-wise one through the adapters of
`neuron_adapters.py`) and the claimed dynamics (`neuron_claims.py`: a minisnn LIF / IF / ParametricLIF and
the spike condition) run on the same inputs, every run on a fresh deep copy of the module:

* inputs (`INPUTS`), in float32 and float64: random currents; membranes charged from rest exactly to θ − 1 ulp,
  θ and θ + 1 ulp; T = 64; zero and constant inputs; ramps with tiny (1e-6) and huge (1e6) slopes, which park
  the membrane within rounding of θ or far in the surrogate's tails;
* the cotangent of the spikes is a multiple of 1/8, exact in float32, so a module that emits float32 spikes
  from float64 input still gets it exactly.

Checks (the names in the report): `spikes` identical (a flip is excused only where the claimed membrane is
within rounding of θ: 1e-4 in float32, 1e-10 in float64, relative to max(1, |θ|), and never on the exact
at-threshold inputs); `input gradient` and `parameter gradients` (same names on both sides, e.g. a
ParametricLIF's `w`) equal in float64 to a relative 1e-10 (floor 1e-4 of the largest gradient, as
`minisnn verify`); `finite gradients`; `zero gradients` (0 where the claim's gradient is above 1e-6 of the
largest); `surrogate derivative` (T = 1, membranes on a grid around θ: the module's surrogate alone);
`reset detachment` (T = 2, a spike at step 0: the gradient through the reset, compared with the claim and
with the claim's reset detached the other way); `batch coupling` (each sample alone and the batch reversed,
spikes and gradients); `state between calls` (a second call after a first, with and without the reset).
"""
from __future__ import annotations

import numpy as np
import torch

from ..parity.report import CRITERIA, Check, relative
from .neuron_adapters import NeuronModuleError, Runner, adapt
from .neuron_claims import Claims, as_claims
from .neuron_report import CaseRow, NeuronReport

DTYPES = ("float32", "float64")
GRAD_RTOL = CRITERIA["float64"]["grad_rtol"]
GRAD_FLOOR = CRITERIA["float64"]["grad_floor"]
ROUNDING = {"float32": CRITERIA["float32"]["rounding_margin"], "float64": 1e-10}
ZERO_FLOOR = 1e-6
INPUTS = ("random", "at threshold", "long T=64", "zero input", "constant input", "tiny slope", "huge slope")
PROBE_OFFSETS = (0.0, 1e-3, -1e-3, 0.05, -0.05, 0.3, -0.3, 1.0, -1.0, 3.0, -3.0)


def _cotangent(rng, shape) -> np.ndarray:
    """dL/ds: nonzero multiples of 1/8 in [-1, 1] (exact in float32)."""
    return rng.choice(np.r_[-8:0, 1:9], size=shape) / 8.0


def _inputs(claims: Claims, dtype, seed: int, batch: int, features: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, x_seq [T, batch, features] in dtype, strict [batch, features]) for each of INPUTS.  strict marks
    the neurons whose spikes must agree exactly (the exact at-threshold inputs)."""
    rng = np.random.default_rng(seed)
    theta = claims.theta
    level = float(abs(claims.inputs_for_membranes([theta], np.float64)[0][0])) or 1.0  # charges rest to θ
    shape = (batch, features)
    k = np.arange(batch * features).reshape(shape)
    dt = np.dtype(dtype).type
    near = np.array([np.nextafter(dt(theta), dt(-np.inf)), dt(theta), np.nextafter(dt(theta), dt(np.inf))])
    x_at, exact = claims.inputs_for_membranes(near[k % 3], dtype)
    at = np.zeros((6,) + shape)
    np.put_along_axis(at, (k % 6)[None], x_at[None].astype(np.float64), axis=0)  # one charge from rest each
    ramp = np.linspace(-0.5, 0.5, 16)[:, None, None]
    loose = np.zeros(shape, bool)
    made = [("random", rng.normal(0.7 * level, 0.8 * level, (8,) + shape), loose),
            ("at threshold", at, exact),
            ("long T=64", rng.normal(0.5 * level, 0.8 * level, (64,) + shape), loose),
            ("zero input", np.zeros((8,) + shape), loose),
            ("constant input", np.broadcast_to(level * np.linspace(-1, 3, features), (16,) + shape), loose),
            ("tiny slope", level * (1 + 1e-6 * ramp) * np.ones(shape), loose),
            ("huge slope", level * 1e6 * ramp * rng.choice([-1, 1], size=shape), loose)]
    return [(name, np.ascontiguousarray(x, dtype=dtype), strict) for name, x, strict in made]


# ------------------------------------------------------------------ running both sides
def _module_run(runner: Runner, x: np.ndarray, g: np.ndarray | None):
    """(spikes, dL/dx_seq, {parameter: gradient}) of the module on a fresh copy, in x's dtype."""
    run = runner.fresh()
    if isinstance(run.module, torch.nn.Module):
        run.module.to(getattr(torch, x.dtype.name))
    xt = torch.tensor(x, requires_grad=g is not None)
    s = run.run(xt)
    gx, grads = np.zeros_like(x), {}
    if g is not None and s.requires_grad:
        try:
            s.backward(torch.from_numpy(g).to(s.dtype))
        except Exception as exc:
            raise NeuronModuleError(f"the module's backward raised {type(exc).__name__}: {exc}") from exc
        if xt.grad is not None:
            gx = xt.grad.detach().numpy().astype(x.dtype)
        grads = {n: p.grad.detach().double().numpy() for n, p in run.module.named_parameters() if p.grad is not None}
    return s.detach().double().numpy(), gx, grads


def _where(idx, x, margin=None) -> str:
    t, *rest = (int(i) for i in idx)
    text = f"t={t} at [{','.join(map(str, rest))}], x={x[tuple(idx)]:.17g}"
    return text + (f", claimed H − θ = {margin[tuple(idx)]:.3g}" if margin is not None else "")


def _at(x, s, claims, idx) -> str:
    """`_where` with the claimed membrane of the module's run."""
    return _where(idx, x, claims.margin(x, s))


def _unexplained_flips(claims, x, s_mod, s_ref, strict, allowed):
    """(count, first index) of spike differences not explained by rounding: per neuron, its first differing step
    (later ones are inherited) with the claimed membrane farther than `allowed` from θ, or on a strict neuron."""
    differ = s_mod != s_ref
    if not differ.any():
        return 0, None, None
    margin = claims.margin(x, s_mod)
    first = np.argmax(differ, axis=0)
    bad = differ.any(axis=0)
    if margin is not None:            # without the claim's membrane (a CustomNeuron) no flip is excused
        at_first = np.abs(np.take_along_axis(margin, first[None], axis=0)[0])
        bad &= (at_first > allowed) | strict
    if not bad.any():
        return 0, None, margin
    neuron = np.argwhere(bad)[0]
    return int(bad.sum()), (int(first[tuple(neuron)]), *neuron), margin


def verify_neuron(module, claims, *, fire: str | None = None, reset=None, stepwise: bool | None = None,
                  seed: int = 0, batch: int = 3, features: int = 4) -> NeuronReport:
    """Run `module` and the claimed dynamics side by side; returns a NeuronReport (see the module docstring).

    module: a torch module (or callable) mapping x_seq [T, ...] to spikes, or a step-wise neuron (snnTorch,
    SpikingJelly step_mode="s"; see `neuron_adapters`).  claims: a minisnn LIF / IF / ParametricLIF, a
    `Claims`, or a string ("lif tau=2 reset=hard surrogate=atan:2 detach_reset=1 fire=gt").  fire: "ge" or
    "gt", overriding the claim's spike condition.  reset: the module's reset (a method name or a callable
    taking the module), detected when None.  stepwise: force the step-wise adapter.  NeuronModuleError when
    the module raises; ValueError / TypeError for bad arguments.
    """
    claims = as_claims(claims, fire)
    if not (isinstance(batch, int) and batch >= 2 and isinstance(features, int) and features >= 1):
        raise ValueError(f"batch must be an integer >= 2 and features >= 1, got batch={batch}, features={features}")
    runner = adapt(module, stepwise, reset)
    report = NeuronReport(f"{type(module).__module__}.{type(module).__name__}", claims.describe())
    report.header.append(f"module: {runner.describe()}")
    report.header.append(f"inputs: {', '.join(INPUTS)}; [T, {batch}, {features}], float32 and float64, seed {seed}")
    runs = {}
    for dtype in DTYPES:
        for name, x, strict in _inputs(claims, dtype, seed, batch, features):
            g = _cotangent(np.random.default_rng([seed, x.shape[0]]), x.shape)
            runs[name, dtype] = (x, strict, _module_run(runner, x, g), claims.run(x, g))
    _compare_runs(report, claims, runs)
    report.checks.append(_surrogate_probe(runner, claims))
    report.checks.append(_reset_probe(runner, claims))
    x, _, _, _ = runs["random", "float64"]
    report.checks.append(_batch_coupling(runner, x, _cotangent(np.random.default_rng(seed), x.shape)))
    report.checks.append(_state_between_calls(runner, x, 0.5 * np.abs(x)))
    return report


def _compare_runs(report: NeuronReport, claims: Claims, runs: dict) -> None:
    """The per-input rows and the checks spikes, input gradient, parameter gradients, finite and zero gradients."""
    scale = {dt: max(float(np.max(np.abs(ref.gx_seq))) for (_, d), (_, _, _, ref) in runs.items() if d == dt)
             for dt in DTYPES}
    allowed = {dt: ROUNDING[dt] * max(1.0, abs(claims.theta)) for dt in DTYPES}
    flips, grad_worst, nonfinite, zeros = [], None, [], []
    for (name, dtype), (x, strict, (s, gx, pgrads), ref) in runs.items():
        n_bad, where, margin = _unexplained_flips(claims, x, s, ref.s_seq, strict, allowed[dtype])
        differing = int(np.sum(s != ref.s_seq))
        if n_bad:
            flips.append(f"{name} {dtype}: {n_bad} neuron(s), first {_where(where, x, margin)}: module "
                         f"{s[where]:g}, claimed {ref.s_seq[where]:g}")
        bad = ~np.isfinite(gx)
        if bad.any():       # backward carries a NaN to the earlier steps: it starts at the latest one
            i = tuple(max(np.argwhere(bad), key=lambda idx: idx[0]))
            nonfinite.append(f"{name} {dtype}: {int(bad.sum())} entries, starting at {_at(x, s, claims, i)}: "
                             f"{gx[i]}")
        zero = (gx == 0) & (np.abs(ref.gx_seq) > ZERO_FLOOR * scale[dtype])
        if zero.any():
            i = tuple(np.unravel_index(np.argmax(np.where(zero, np.abs(ref.gx_seq), 0)), x.shape))
            zeros.append((int(zero.sum()), f"{name} {dtype}: {int(zero.sum())} entries, largest "
                          f"{_at(x, s, claims, i)}: module 0, claimed {ref.gx_seq[i]:.3g}"))
        rel = None
        if dtype == "float64" and differing == 0:
            finite = np.where(np.isfinite(gx), gx, np.inf)
            rel = relative(finite, ref.gx_seq, GRAD_FLOOR * scale[dtype])
            if grad_worst is None or rel > grad_worst[0]:
                i = tuple(np.unravel_index(np.argmax(np.abs(finite - ref.gx_seq)), x.shape))
                grad_worst = (rel, f"{name}, {_at(x, s, claims, i)}: module {gx[i]:.6g}, claimed "
                                   f"{ref.gx_seq[i]:.6g}")
        report.rows.append(CaseRow(name, dtype, x.shape, differing, float(s.mean()), rel, int(bad.sum()),
                                   int(zero.sum())))
    report.checks.append(Check("spikes", not flips, "; ".join(flips) if flips else
                               "identical on every input (flips only within rounding of θ off the exact inputs)"))
    if grad_worst is None:
        report.checks.append(Check("input gradient", False, "not compared: spikes differ on every float64 input"))
    else:
        ok = grad_worst[0] <= GRAD_RTOL
        report.checks.append(Check("input gradient", ok, f"float64 relative max|Δ| {grad_worst[0]:.3g} "
                                   f"{'<=' if ok else '>'} {GRAD_RTOL:g}; worst: {grad_worst[1]}"))
    report.checks.append(_param_check(runs))
    report.checks.append(Check("finite gradients", not nonfinite, "; ".join(nonfinite) if nonfinite else
                               "no NaN or infinite gradient on any input"))
    zeros.sort(key=lambda z: -z[0])
    report.checks.append(Check("zero gradients", not zeros, "; ".join(z[1] for z in zeros) if zeros else
                               f"no gradient is 0 where the claim's exceeds {ZERO_FLOOR:g} of the largest"))


def _param_check(runs: dict) -> Check:
    """Gradients of the parameters both sides have (same name), on the float64 inputs where no spike differs."""
    worst, names = {}, (set(), set())
    for (name, dtype), (_, _, (s, _, grads), ref) in runs.items():
        if dtype != "float64" or np.any(s != ref.s_seq):
            continue
        names = (set(grads), set(ref.param_grads))
        for p in set(grads) & set(ref.param_grads):
            r = relative(grads[p], ref.param_grads[p])
            if r > worst.get(p, (-1.0,))[0]:
                worst[p] = (r, f"{name}: module {np.ravel(grads[p])[0]:.6g}, claimed "
                               f"{np.ravel(ref.param_grads[p])[0]:.6g}")
    only = sorted(names[0] ^ names[1])
    extra = f" (on one side only: {', '.join(only)})" if only else ""
    if not worst:
        return Check("parameter gradients", None, "no parameter with a gradient on both sides" + extra)
    name, (rel, text) = max(worst.items(), key=lambda kv: kv[1][0])
    ok = rel <= GRAD_RTOL
    return Check("parameter gradients", ok, f"{', '.join(sorted(worst))}: float64 relative max|Δ| {rel:.3g} "
                 f"{'<=' if ok else '>'} {GRAD_RTOL:g}; worst: {name}, {text}" + extra)


# ------------------------------------------------------------------ probes
def _membrane_inputs(claims: Claims, offsets, t_steps: int) -> np.ndarray:
    """x_seq [t_steps, 1, K] in float64 whose first step charges neuron k from rest to θ + offsets[k]·max(1, |θ|)."""
    theta = claims.theta
    targets = theta + np.asarray(offsets) * max(1.0, abs(theta))
    x = np.zeros((t_steps, 1, len(targets)))
    x[0, 0] = claims.inputs_for_membranes(targets, np.float64)[0]
    return x


def _surrogate_probe(runner: Runner, claims: Claims) -> Check:
    """T = 1 from rest: dL/dx = p'(H − θ)·∂H/∂X, the module's surrogate alone, on a grid of membranes."""
    x = _membrane_inputs(claims, PROBE_OFFSETS, 1)
    g = np.ones_like(x)
    _, gx, _ = _module_run(runner, x, g)
    ref = claims.run(x, g).gx_seq
    err = np.abs(np.where(np.isfinite(gx), gx, np.inf) - ref) / max(float(np.max(np.abs(ref))), 1e-300)
    k = int(np.argmax(err))
    ok = bool(err[0, 0, k] <= GRAD_RTOL)
    u = PROBE_OFFSETS[k] * max(1.0, abs(claims.theta))
    return Check("surrogate derivative", ok, f"T=1 from rest, H − θ in ±{max(PROBE_OFFSETS):g}: "
                 + ("module and claim agree" if ok else "differs") + f"; worst at H − θ = {u:g}: dL/dx module "
                 f"{gx[0, 0, k]:.6g}, claimed {ref[0, 0, k]:.6g}" + ("" if ok else f" ({claims.neuron.surrogate!r})"))


def _reset_probe(runner: Runner, claims: Claims) -> Check:
    """T = 2: step 0 fires (H = θ + 0.25·max(1, |θ|)), the loss is the spike of step 1; dL/dx[0] flows through the
    reset, and only through S[0] when the reset is not detached.  Compared with both detach settings."""
    x = _membrane_inputs(claims, (0.25, 0.5, 1.0), 2)
    x[1] = claims.inputs_for_membranes([claims.theta - 0.2], np.float64)[0][0]
    g = np.zeros_like(x)
    g[1] = 1.0
    _, gx, _ = _module_run(runner, x, g)
    detached = claims.detach_reset
    rels = {flag: relative(np.where(np.isfinite(gx), gx, np.inf), c.run(x, g).gx_seq, 1e-300)
            for flag, c in ((detached, claims), (not detached, claims.with_detach_reset(not detached)))}
    head = f"T=2, spike at t=0, loss on t=1: claimed detach_reset={detached}"
    if rels[detached] <= GRAD_RTOL:
        return Check("reset detachment", True, head + f", gradient through the reset agrees ({rels[detached]:.2g})")
    if rels[not detached] <= GRAD_RTOL:
        how = "not detached" if detached else "detached"
        return Check("reset detachment", False, head + f", but the reset is {how}: the module's dL/dx[0] "
                     f"{gx[0, 0, 0]:.6g} matches detach_reset={not detached}")
    return Check("reset detachment", False, head + f"; dL/dx[0] {gx[0, 0, 0]:.6g} matches neither setting "
                 f"(relative max|Δ| {rels[detached]:.3g}; see the surrogate check)")


def _batch_coupling(runner: Runner, x: np.ndarray, g: np.ndarray) -> Check:
    """Spikes and input gradients of the batch, of each sample alone, and of the batch reversed (float64)."""
    s, gx, _ = _module_run(runner, x, g)
    variants = [(f"sample {b} alone", [b]) for b in range(x.shape[1])]
    variants.append(("batch reversed", list(range(x.shape[1]))[::-1]))
    worst = None
    for label, order in variants:
        s_v, gx_v, _ = _module_run(runner, np.ascontiguousarray(x[:, order]), np.ascontiguousarray(g[:, order]))
        differ = int(np.sum(s_v != s[:, order]))
        rel = relative(gx_v, gx[:, order], GRAD_FLOOR * max(float(np.max(np.abs(gx))), 1e-300))
        if differ or rel > GRAD_RTOL:
            worst = worst or f"{label}: {differ} spike(s) differ from the same sample in the batch of {x.shape[1]}, " \
                             f"input gradient relative max|Δ| {rel:.3g}"
    return Check("batch coupling", worst is None, worst or f"each of {x.shape[1]} samples alone and the batch "
                 "reversed give the batch's spikes and gradients")


def _state_between_calls(runner: Runner, x1: np.ndarray, x2: np.ndarray) -> Check:
    """x2 on a fresh copy, against x2 after x1 on one copy, with and without the module's reset in between
    (x2 is weak, so that a membrane carried over from x1 shows in its spikes)."""
    def second(reset_between: bool):
        run = runner.fresh()
        if isinstance(run.module, torch.nn.Module):
            run.module.to(torch.float64)
        with torch.no_grad():
            run.run(torch.tensor(x1))
            if reset_between:
                run.reset()
            return run.run(torch.tensor(x2)).double().numpy()

    fresh = _module_run(runner, x2, None)[0]
    kept = int(np.sum(second(False) != fresh))
    if runner.reset_name is None:
        return Check("state between calls", kept == 0, "no reset found; " + (
            "a second call gives what a fresh module gives" if not kept else
            f"state leaks into the next call ({kept} spikes differ from a fresh module): give the module's reset "
            "(reset= / --reset METHOD)"))
    left = int(np.sum(second(True) != fresh))
    carried = (f"without a reset, state carries into the next call ({kept} spikes differ): call {runner.reset_name} "
               "between sequences" if kept else "a second call without reset gives what a fresh module gives")
    return Check("state between calls", left == 0, (f"after {runner.reset_name}, {left} spikes still differ from a "
                 "fresh module: the reset leaves state behind" if left else f"{runner.reset_name} clears the state")
                 + "; " + carried)


__all__ = ["verify_neuron", "DTYPES", "INPUTS"]
