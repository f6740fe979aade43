"""`minisnn.verify_neuron` / `minisnn verify-neuron`: third-party neurons pass, planted bugs fail by name.

The planted bugs (`planted_neurons.PlantedLIF`) are the classes seen in real libraries: a wrong surrogate
derivative, a surrogate that is NaN at H = θ, a reset that is not detached while claimed detached, and a
membrane shared by the samples of a batch.
"""
from __future__ import annotations

import importlib.util

import pytest

torch = pytest.importorskip("torch")

import minisnn  # noqa: E402
from minisnn.spiking import LIF, surrogate  # noqa: E402
from minisnn.torch.neuron_adapters import adapt, parse_kwargs  # noqa: E402
from minisnn.torch.neuron_claims import parse_claims  # noqa: E402

from ..command_line import run  # noqa: E402
from .planted_neurons import PlantedLIF  # noqa: E402

pytestmark = pytest.mark.torch
PLANTED = "tests.torch_engine.planted_neurons:PlantedLIF"
PLANTED_CLAIMS = "lif tau=2 v_threshold=1 reset=hard surrogate=atan:2 detach_reset=1"


def needs(package: str):
    return pytest.mark.skipif(importlib.util.find_spec(package) is None, reason=f"{package} is not installed")


def assert_passes(module, claims, **kwargs):
    report = minisnn.verify_neuron(module, claims, **kwargs)
    assert report.ok, report.format()
    assert {ch.name for ch in report.checks} >= {"spikes", "input gradient", "finite gradients", "zero gradients",
                                                  "surrogate derivative", "reset detachment", "batch coupling",
                                                  "state between calls"}
    return report


@needs("spikingjelly")
@pytest.mark.parametrize("build, claims", [
    (lambda n: n.LIFNode(step_mode="m", detach_reset=True), "lif tau=2 surrogate=sigmoid:4"),
    (lambda n: n.LIFNode(step_mode="m", tau=3.0, decay_input=False, v_reset=None), "lif tau=3 decay_input=0 "
                                                                                     "reset=soft detach_reset=0"),
    (lambda n: n.IFNode(step_mode="s", detach_reset=True), "if"),
    (lambda n: n.ParametricLIFNode(init_tau=3.0, step_mode="m", detach_reset=True), "plif tau=3"),
], ids=["LIFNode", "LIFNode-soft", "IFNode-single-step", "ParametricLIFNode"])
def test_spikingjelly_neurons_pass(build, claims):
    from spikingjelly.activation_based import neuron
    report = assert_passes(build(neuron), claims)
    if "plif" in claims:   # the learnable τ's parameter w is compared with minisnn's
        assert report.check("parameter gradients").passed is True


@needs("spikingjelly")
@pytest.mark.skipif(importlib.util.find_spec("spikingjelly") is not None
                    and importlib.util.find_spec("spikingjelly.clock_driven") is None,
                    reason="SpikingJelly 2.x has no clock_driven package")
def test_spikingjelly_clock_driven_multistep_passes():
    from spikingjelly.clock_driven import neuron
    report = assert_passes(neuron.MultiStepLIFNode(tau=2.0, detach_reset=True), LIF(tau=2.0))
    assert "one call on x_seq" in report.format()


@needs("snntorch")
@pytest.mark.parametrize("build, claims", [
    (lambda snn: snn.Leaky(beta=0.5, reset_mechanism="zero"), "lif tau=2 decay_input=0 surrogate=atan:2 fire=gt"),
    (lambda snn: snn.Leaky(beta=1.0), "if reset=soft surrogate=atan:2 fire=gt"),
    (lambda snn: snn.Leaky(beta=0.5), "synaptic alpha=0 beta=0.5 fire=gt"),
    (lambda snn: snn.Synaptic(alpha=0.5, beta=0.75), "synaptic alpha=0.5 beta=0.75 fire=gt"),
], ids=["Leaky-zero", "Leaky-subtract-IF", "Leaky-subtract", "Synaptic"])
def test_snntorch_neurons_pass(build, claims):
    import snntorch
    report = assert_passes(build(snntorch), claims)
    assert "reset_mem()" in report.check("state between calls").text


@needs("snntorch")
def test_snntorch_spike_condition_is_caught_at_threshold():
    """snnTorch fires only above θ: claiming minisnn's H >= θ fails on the exact at-threshold inputs."""
    import snntorch
    report = minisnn.verify_neuron(snntorch.Leaky(beta=0.5, reset_mechanism="zero"), "lif tau=2 decay_input=0 "
                                   "surrogate=atan:2")
    assert report.failed == ["spikes"]
    assert "at threshold float64" in report.check("spikes").text


def test_a_correct_custom_module_passes_directly():
    report = assert_passes(PlantedLIF(), LIF(tau=2.0, surrogate=surrogate.ATan(2.0), detach_reset=True))
    assert "one call on x_seq; reset: none found" in report.format()


@pytest.mark.parametrize("kwargs, failed, named", [
    ("surrogate=wrong", "surrogate derivative", "worst at H − θ = 0: dL/dx module 1, claimed 0.5"),
    ("surrogate=nan_at_0", "finite gradients", "claimed H − θ = 0: nan"),
    ("detach_reset=False", "reset detachment", "the reset is not detached"),
    ("merge_batch=True", "batch coupling", "sample 0 alone"),
])
def test_planted_bugs_are_caught_and_named(capsys, kwargs, failed, named):
    rc, out, err = run(capsys, "verify-neuron", PLANTED, "--kwargs", kwargs, "--claims", PLANTED_CLAIMS)
    assert rc == 1, out + err
    line = next(ln for ln in out.splitlines() if f"] {failed} " in ln)
    assert line.startswith("  [FAIL]") and named in line, out
    assert out.splitlines()[-1].startswith("FAIL:") and failed in out.splitlines()[-1]


def test_nan_surrogate_is_also_named_by_the_surrogate_probe():
    report = minisnn.verify_neuron(PlantedLIF(surrogate="nan_at_0"), PLANTED_CLAIMS)
    assert "worst at H − θ = 0: dL/dx module nan" in report.check("surrogate derivative").text


def test_state_leaking_between_calls_needs_a_reset():
    report = minisnn.verify_neuron(PlantedLIF(keep_state=True), PLANTED_CLAIMS)
    assert report.failed == ["state between calls"], report.format()
    assert "no reset found; state leaks into the next call" in report.check("state between calls").text
    report = minisnn.verify_neuron(PlantedLIF(keep_state=True), PLANTED_CLAIMS, reset=lambda m: setattr(m, "v", None))
    assert report.ok, report.format()
    assert "state carries into the next call" in report.check("state between calls").text


def test_cli_end_to_end_passes(capsys):
    rc, out, err = run(capsys, "verify-neuron", PLANTED, "--claims", PLANTED_CLAIMS, "--seed", "3")
    assert rc == 0, out + err
    assert out.splitlines()[-1] == "PASS" and "seed 3" in out and "at threshold" in out


@pytest.mark.parametrize("argv, message", [
    ([PLANTED, "--claims", "gif tau=2"], "start with a neuron kind"),
    ([PLANTED, "--claims", "lif tau=2 speed=3"], "lif has no setting 'speed'"),
    ([PLANTED, "--claims", "lif tau=two"], "tau='two' is not a number"),
    ([PLANTED, "--claims", "lif fire=maybe"], "fire must be one of"),
    (["tests.torch_engine.planted_neurons", "--claims", "lif"], "expected a factory as 'package.module:callable'"),
    (["no_such_package_xyz:Neuron", "--claims", "lif"], "cannot import 'no_such_package_xyz'"),
    ([PLANTED, "--kwargs", "surrogate", "--claims", "lif"], "expected KEY=VALUE pairs"),
    ([PLANTED, "--kwargs", "colour=red", "--claims", "lif"], "raised TypeError"),
    ([PLANTED, "--kwargs", "surrogate=nope", "--claims", "lif"], "raised KeyError"),
    ([PLANTED, "--reset", "clear", "--claims", "lif"], "no method 'clear'"),
    (["torch.nn:Linear", "--kwargs", "in_features=3,out_features=2", "--claims", "lif"], "the module raised"),
])
def test_bad_arguments_exit_2_with_one_line(capsys, argv, message):
    rc, out, err = run(capsys, "verify-neuron", *argv)
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("minisnn verify-neuron: error:") and message in err, err


def test_adapters_detect_drive_and_reset():
    assert parse_kwargs("step_mode=m, tau=2.0,flag=True") == {"step_mode": "m", "tau": 2.0, "flag": True}
    runner = adapt(PlantedLIF())
    assert not runner.stepwise and runner.reset_name is None
    assert parse_claims("plif tau=3 reset=soft").neuron.v_reset is None
