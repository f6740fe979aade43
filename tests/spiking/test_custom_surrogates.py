"""Surrogate families defined with `surrogate.define`: checks at definition, the same numbers as a
built-in with the same maths, slopes (learnable, per token), gradchecks, jit == reference, saving by name."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minisnn import Tensor, gradcheck, kernels
from minisnn.io import read_safetensors_metadata, write_safetensors
from minisnn.kernels import jit, reference
from minisnn.kernels.lif_params import LIFParams
from minisnn.spiking import LIF, lif_sequence, spike, surrogate
from minisnn.spiking.surrogate_checks import check_family

ROOT = Path(__file__).resolve().parents[2]
typed = surrogate.typed


def superspike(x, a):
    return 1.0 / a + x / (1.0 + a * abs(x))


def superspike_dx(x, a):
    d = 1.0 + a * abs(x)
    return 1.0 / (d * d)


def superspike_da(x, a):
    q = x / (1.0 + a * abs(x))
    return -1.0 / (a * a) - q * abs(q)


def superspike_typed(x, a):  # the same in x's own float type, as the built-in FastSigmoid computes
    one = typed(x, 1.0)
    return one / a + x / (one + a * abs(x))


def superspike_dx_typed(x, a):
    d = typed(x, 1.0) + a * abs(x)
    return typed(x, 1.0) / (d * d)


def superspike_da_typed(x, a):
    one = typed(x, 1.0)
    q = x / (one + a * abs(x))
    return -(one / (a * a)) - q * abs(q)


def gaussian(x, a):
    return 0.5 * (1.0 + math.erf(a * x / math.sqrt(2.0)))


SuperSpike = surrogate.define("test_super_spike", superspike, superspike_dx, superspike_da, default_alpha=25.0)
SuperSpikeTyped = surrogate.define("test_super_spike_typed", superspike_typed, superspike_dx_typed,
                                   superspike_da_typed, default_alpha=25.0, same_dtype=True)
Gaussian = surrogate.define("test_gaussian", gaussian, default_alpha=4.0)
BUILT_INS = [surrogate.Sigmoid, surrogate.ATan, surrogate.PiecewiseLinear, surrogate.Rectangular, surrogate.FastSigmoid]


# ------------------------------------------------------------------ checks at definition
@pytest.mark.parametrize("cls", BUILT_INS)
def test_built_ins_pass_the_definition_checks(cls):
    check_family(cls.name, cls.kind, cls.default_alpha, (True, True))


@pytest.mark.parametrize("arguments, message", [
    ((superspike, lambda x, a: 2.0 / (1.0 + a * abs(x)) ** 2), "derivative disagrees with the primitive at x = 0"),
    ((superspike, superspike_dx, lambda x, a: -0.5 / (a * a)), "d_alpha disagrees with the primitive at x = "),
    ((lambda x, a: 0.5 + x / abs(x) * 0.5 * (1.0 - math.exp(-a * abs(x))),), "primitive is nan at x = 0,"),
    ((lambda x, a: a * x,), "primitive does not level off"),
    ((lambda x, a: -x / (1.0 + a * abs(x)),), "primitive does not rise"),
    ((lambda x, a: 1.0 if x >= 0 else 0.0,), "primitive jumps by 1 at x = 0,"),
    ((lambda x, a: x / (1.0 + a * abs(x)) - 0.5 * math.exp(-(a * x - 3) ** 2),), "primitive decreases"),
    ((lambda x, a: float(np.asarray([x]).tolist()[0] > 0),), "Numba cannot compile its primitive"),
])
def test_a_bad_definition_is_refused_in_one_line_naming_the_point(arguments, message):
    if "Numba" in message and kernels.backend() != "jit":  # plain Python runs it: a step with a jump
        message = "primitive jumps by 1 at x = 0,"
    with pytest.raises(ValueError) as caught:
        surrogate.define("test_bad", *arguments, default_alpha=4.0)
    text = str(caught.value)
    assert message in text and "\n" not in text and text.startswith("surrogate 'test_bad'")
    with pytest.raises(ValueError, match="unknown surrogate 'test_bad'"):
        surrogate.get("test_bad")


def test_names_and_redefinition():
    with pytest.raises(ValueError, match="built in"):
        surrogate.define("sigmoid", superspike, default_alpha=1.0)
    with pytest.raises(ValueError, match="surrogate name"):
        surrogate.define("not a name", superspike, default_alpha=1.0)
    with pytest.raises(ValueError, match="finite and > 0"):
        surrogate.define("test_slope", superspike, default_alpha=0.0)
    again = surrogate.define("test_super_spike", superspike, superspike_dx, superspike_da, default_alpha=25.0)
    assert again is SuperSpike  # the same code (a notebook cell run twice) gives the same class
    assert SuperSpike.derived == () and Gaussian.derived == ("derivative", "d_alpha")
    assert surrogate.Sigmoid.kind == 0 and SuperSpike.kind >= 64


# ------------------------------------------------------- the same maths, the same numbers
def _lif_grads(sg, x_seq, slope=None, tau=2.0, **settings):
    x = Tensor(x_seq.copy(), requires_grad=True)
    s = lif_sequence(x, tau=tau, surrogate=sg, slope=slope, **settings)
    (s * np.linspace(-1.0, 1.0, x_seq.shape[-1]).astype(x_seq.dtype)).sum().backward()
    return s.data, x.grad, (slope.grad if isinstance(slope, Tensor) else None)


@pytest.mark.parametrize("custom, dtype", [(SuperSpike, np.float64), (SuperSpikeTyped, np.float64),
                                           (SuperSpikeTyped, np.float32)])
@pytest.mark.parametrize("settings", [dict(), dict(v_reset=None, detach_reset=False), dict(smooth=True)])
def test_custom_superspike_equals_the_built_in_fast_sigmoid(custom, dtype, settings):
    x_seq = np.random.default_rng(1).normal(0.8, 0.7, (5, 3, 700)).astype(dtype)  # > one block of neurons
    for slope_of in (lambda: None, lambda: Tensor(np.full((3, 1), 20.0, dtype), requires_grad=True)):
        ours = _lif_grads(custom(), x_seq, slope_of(), **settings)
        built_in = _lif_grads(surrogate.FastSigmoid(), x_seq, slope_of(), **settings)
        for a, b in zip(ours, built_in):
            assert (a is None and b is None) or np.array_equal(a, b)


def test_per_token_slopes_through_spike():
    rng = np.random.default_rng(2)
    u_data, weights = rng.normal(1.0, 0.5, (2, 6, 40)), rng.normal(size=40)
    k_data = rng.uniform(5.0, 30.0, (2, 6, 1))
    grads = []
    for sg in (SuperSpike(), surrogate.FastSigmoid()):
        u, k = Tensor(u_data.copy(), requires_grad=True), Tensor(k_data.copy(), requires_grad=True)
        (spike(u, slope=k, surrogate=sg) * weights).sum().backward()
        grads.append((u.grad, k.grad))
    np.testing.assert_array_equal(grads[0][0], grads[1][0])
    np.testing.assert_allclose(grads[0][1], grads[1][1], rtol=1e-12)


# ------------------------------------------------------------------ gradchecks (smooth mode)
@pytest.mark.parametrize("cls", [SuperSpike, Gaussian])
def test_gradcheck_lif_smooth_in_x_and_slope(cls):
    rng = np.random.default_rng(3)
    x = Tensor(rng.normal(0.9, 0.5, (4, 2, 3)), requires_grad=True)
    k = Tensor(np.array(cls.default_alpha / 5), requires_grad=True)
    fn = lambda x, k: lif_sequence(x, tau=2.0, v_reset=None, detach_reset=False, surrogate=cls(), slope=k,  # noqa: E731
                                   smooth=True)
    assert gradcheck(fn, [x, k], eps=1e-6, atol=1e-6, rtol=1e-5)


def test_gradcheck_per_token_slope_of_a_derived_family():
    rng = np.random.default_rng(4)
    u = Tensor(rng.normal(1.0, 0.4, (2, 3, 4)), requires_grad=True)
    k = Tensor(rng.uniform(1.0, 3.0, (2, 3, 1)), requires_grad=True)
    assert gradcheck(lambda u, k: spike(u, slope=k, surrogate=Gaussian(), smooth=True), [u, k], atol=1e-6)


# ------------------------------------------------------------------------ jit == reference
@pytest.mark.parametrize("cls", [SuperSpike, SuperSpikeTyped, Gaussian])
@settings(deadline=None, max_examples=25)
@given(seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from([np.float32, np.float64]))
def test_jit_equals_reference(cls, seed, dtype):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 3.0 / cls.default_alpha, (3, 37)).astype(dtype)
    alpha = rng.uniform(0.5, 2.0, x.shape).astype(dtype) * dtype(cls.default_alpha)
    exact = dtype == np.float64 or cls is SuperSpikeTyped  # else float64 maths against float32 maths
    for name in ("surrogate_primitive", "surrogate_derivative", "surrogate_d_alpha"):
        ours = getattr(jit.surrogate, name)(x, alpha, cls.kind)
        spec = getattr(reference.surrogate, name)(x, alpha, cls.kind)
        np.testing.assert_allclose(ours, spec, rtol=0 if exact else 1e-6, atol=0 if exact else 1e-6)
    params = LIFParams.make(tau=2.0, v_reset=None, detach_reset=False, kind=cls.kind)
    x_seq = rng.normal(0.9, 0.6, (4, 50)).astype(dtype)
    a = np.full((1, 1), cls.default_alpha, dtype)
    np.testing.assert_array_equal(jit.lif.lif_forward(x_seq, a, params), reference.lif.lif_forward(x_seq, a, params))
    g = rng.normal(size=x_seq.shape).astype(dtype)
    for ours, spec in zip(jit.lif.lif_backward(g, x_seq, a, params, True, True),
                          reference.lif.lif_backward(g, x_seq, a, params, True, True)):
        np.testing.assert_allclose(ours, spec, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)


# ------------------------------------------------------------------------ saving by name
_DEFINITION = """
import math
from minisnn.spiking import surrogate

def gaussian(x, a):
    return 0.5 * (1.0 + math.erf(a * x / math.sqrt(2.0)))

surrogate.define("test_gaussian", gaussian, default_alpha=4.0)
"""

_RELOAD = """
import json, sys
import numpy as np
from minisnn.io import read_safetensors_metadata, read_safetensors
from minisnn.spiking import LIF
if sys.argv[2] == "define":
    import definition  # noqa: F401  (defines test_gaussian again)
config = json.loads(read_safetensors_metadata(sys.argv[1])["config"])
x = read_safetensors(sys.argv[1])["x"]
try:
    print(json.dumps(LIF(surrogate=config["surrogate"], smooth=True)(x).data.tolist()))
except ValueError as err:
    print("ValueError:", err)
"""


def _reload(tmp_path, path, define: str) -> str:
    (tmp_path / "definition.py").write_text(_DEFINITION)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(tmp_path)]))
    done = subprocess.run([sys.executable, "-c", _RELOAD, str(path), define], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


def test_a_config_that_names_a_custom_surrogate_reloads_in_a_new_process(tmp_path):
    sg = Gaussian(alpha=2.5)
    x = np.random.default_rng(5).normal(0.9, 0.5, (3, 4, 5))
    path = tmp_path / "run.safetensors"
    write_safetensors({"x": x}, path, metadata={"config": json.dumps({"surrogate": sg.spec})})
    assert json.loads(read_safetensors_metadata(path)["config"]) == {"surrogate": "test_gaussian(alpha=2.5)"}
    expected = LIF(surrogate=surrogate.get(sg.spec), smooth=True)(x).data
    assert np.array_equal(np.array(json.loads(_reload(tmp_path, path, "define"))), expected)
    refused = _reload(tmp_path, path, "no")
    assert refused.startswith("ValueError: unknown surrogate 'test_gaussian(alpha=2.5)'") and "define" in refused
