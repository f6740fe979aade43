"""`minisnn verify` and `verify_checkpoint` on checkpoints saved the upstream way; the comparator's sensitivity."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("spikingjelly")

from minisnn.cli import main  # noqa: E402
from minisnn.parity import checkpoint_args, compare_with_oracle, verify_checkpoint  # noqa: E402

from .upstream_checkpoints import (BUILDERS, MODELS, calibrated_oracle, oracle_rates,  # noqa: E402
                                   save_like_upstream)

CASES = {   # family -> (constructor kwargs, batch, style, --set arguments verify needs)
    "spikformer": (dict(embed_dim=32, num_heads=2, depth=1, T=2, img_size=16), 2, "timm", []),
    "msvit": (dict(embed_dim=32, num_heads=2, depth=3, T=2, img_size=16), 2, "timm", ["num_heads=2"]),
    "qkformer": (dict(embed_dim=32, num_heads=2, depth=3, T=2, img_size=16), 2, "mae", ["num_heads=2"]),
    "dysvit": (dict(dim=32, heads=2, depth=1, img_size=16), 2, "hf", ["heads=2"]),
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """family -> (path, images, oracle firing rates in forward order)."""
    out = {}
    for i, (family, (kwargs, batch, style, _)) in enumerate(CASES.items()):
        oracle, x = calibrated_oracle(family, kwargs, batch, seed=10 + i)
        path = save_like_upstream(oracle, family, kwargs, tmp_path_factory.mktemp(family), style)
        out[family] = (path, x, oracle_rates(oracle, x))
    return out


def run_cli(capsys, *argv):
    rc = main(["verify", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def _sets(family):
    return [a for s in CASES[family][3] for a in ("--set", s)]


@pytest.mark.parametrize("family", sorted(CASES))
def test_cli_report_passes_with_a_row_per_neuron_in_forward_order(family, checkpoints, capsys):
    path, _, rates = checkpoints[family]
    rc, out, err = run_cli(capsys, path, *_sets(family), "--set", "img_size=16")
    assert rc == 0 and err == "", err
    lines = out.splitlines()
    assert lines[-1] == "PASS"
    rows = [ln.split()[0] for ln in lines if ln.split() and ln.split()[0] in rates]
    assert rows == list(rates)                                   # every neuron, in execution order
    assert "checks (float64" in out and "[FAIL]" not in out
    assert "spikes identical in every neuron layer: 0 of" in out
    if family != "dysvit":
        assert "T=2 (checkpoint args)" in out                    # read from the saved argparse namespace
        assert "input: center 16x16 crops of 2 CIFAR-10 sample images" in out
    if family == "spikformer":
        assert "num_heads=2 (checkpoint args)" in out
        assert "loaded but unused by the forward pass" in out and "block.0.norm1.weight" in out
    if family == "msvit":
        assert "merged T·B axis" in out                          # the stage-3 quirk is stated


def test_cli_float32_training_mode(checkpoints, capsys):
    path = checkpoints["qkformer"][0]
    rc, out, _ = run_cli(capsys, path, "--set", "num_heads=2", "--set", "img_size=16", "--dtype", "float32",
                         "--train", "--batch-size", "3", "--seed", "4")
    assert rc == 0, out
    assert "float32, training mode" in out and "BN running statistics after the training-mode pass" in out
    assert "first divergence" in out and out.splitlines()[-1] == "PASS"


def test_cli_float32_eval_reports_pytorch_own_rounding(checkpoints, capsys):
    rc, out, _ = run_cli(capsys, checkpoints["dysvit"][0], "--set", "heads=2", "--dtype", "float32")
    assert rc == 0 and out.splitlines()[-1] == "PASS"
    assert "[info] reference: PyTorch float32 vs PyTorch float64 on this batch:" in out
    assert "slope max|Δ|" in out                                  # Dy-SViT: per-token slopes compared


def test_verify_function_uses_the_given_batch(checkpoints):
    path, x, rates = checkpoints["msvit"]
    report = verify_checkpoint(path, overrides={"num_heads": 2}, images=x, grads=False)
    assert report.ok and report.batch == len(x)
    for row in report.layers:                        # same batch as the calibration: same rates
        assert row.rate == pytest.approx(rates[row.name], abs=1e-12)
    assert not report.grads_checked


def test_missing_heads_is_a_one_line_error(checkpoints, capsys):
    rc, out, err = run_cli(capsys, checkpoints["msvit"][0])
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and "--set num_heads=" in err and err.startswith("minisnn verify: error:")


def test_wrong_model_gives_the_state_dict_error(checkpoints, capsys):
    path = checkpoints["msvit"][0]
    rc, _, err = run_cli(capsys, path, "--model", "spikformer-tiny")
    assert rc == 2 and err.count("\n") == 1 and "keys are those of a MSViT model" in err
    rc, _, err = run_cli(capsys, path, "--model", "msvit-tiny")
    assert rc == 2 and err.count("\n") == 1
    assert "shape mismatches" in err and "head.weight: checkpoint (10, 32) vs model (10, 128)" in err
    assert "omit --model to infer the configuration" in err
    rc, _, err = run_cli(capsys, checkpoints["spikformer"][0], "--model", "dysvit-tiny")
    assert rc == 2 and "missing keys" in err and "unexpected keys" in err and "patch_embed.rpe_conv.weight" in err
    rc, _, err = run_cli(capsys, path, "--model", "no-such-model")
    assert rc == 2 and "unknown model 'no-such-model'" in err


def test_torch_missing_is_a_one_line_error(checkpoints, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    rc, out, err = run_cli(capsys, checkpoints["dysvit"][0], "--set", "heads=2")
    assert rc == 2 and out == "" and err.count("\n") == 1
    assert "PyTorch, which is not installed" in err and "pip install torch" in err


def test_safetensors_checkpoint(checkpoints, tmp_path, capsys):
    from minisnn import load_checkpoint, save_checkpoint

    path = tmp_path / "model.safetensors"
    save_checkpoint(load_checkpoint(checkpoints["qkformer"][0]), path)
    assert checkpoint_args(path) == {}
    rc, out, _ = run_cli(capsys, path, "--set", "num_heads=2", "--set", "T=2", "--set", "img_size=16", "--no-grads")
    assert rc == 0 and out.splitlines()[-1] == "PASS"
    assert "T=2 (--set)" in out and "safetensors" in out


def test_checkpoint_args_are_read_without_torch(checkpoints):
    args = checkpoint_args(checkpoints["spikformer"][0])
    assert args["time_step"] == 2 and args["model"] == "spikformer"
    assert checkpoint_args(checkpoints["dysvit"][0]) == {}         # a bare state_dict has none


# ------------------------------------------------------------------------ sensitivity
def _pair(checkpoints, family, dtype=np.float64):
    from minisnn import load_checkpoint

    kwargs = CASES[family][0]
    state = load_checkpoint(checkpoints[family][0])
    model = MODELS[family](**kwargs).to_dtype(dtype)
    model.load_state_dict(state)
    oracle = BUILDERS[family](**kwargs).to(torch.float64)
    oracle.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
    return model, oracle, checkpoints[family][1]


def test_a_changed_weight_is_caught_and_located(checkpoints):
    model, oracle, x = _pair(checkpoints, "qkformer")
    model.stage2[0].tssa.k_bn.bias.data[0] += 0.5       # one BN shift in stage 2
    report = compare_with_oracle(model, oracle, x)
    assert not report.ok and report.format().splitlines()[-1] == "FAIL"
    first = report.first_divergence
    assert first.name == "stage2.0.tssa.k_lif"             # nothing before it differs
    assert all(r.differing == 0 and r.input_max_abs < 1e-12 for r in report.layers[:report.layers.index(first)])
    assert first.flip_margin > 1e-3                        # not a rounding effect


def test_a_flip_at_the_threshold_has_a_tiny_margin(checkpoints):
    """Nudge one input current across the threshold: the report finds that single flip and its margin."""
    model, oracle, x = _pair(checkpoints, "spikformer")
    ref = compare_with_oracle(model, oracle, x, grads=False)
    assert ref.ok
    # first neuron (patch_embed.proj_lif, T = 2): its input is BN(conv(x)); find the element of channel 0
    # closest to the threshold at t = 0, where H = X / 2, and shift that channel's BN bias just across it
    with torch.no_grad():
        u = oracle.patch_embed.proj_bn(oracle.patch_embed.proj_conv(torch.from_numpy(x))).numpy()[:, 0]
    h = u / 2
    i = np.unravel_index(np.argmin(np.abs(h - 1.0)), h.shape)
    gap = float(h[i] - 1.0)
    shift = -2 * (gap + np.sign(gap) * 1e-9)              # moves H[i] to the other side by 1e-9
    model.patch_embed.proj_bn.bias.data[0] += shift
    report = compare_with_oracle(model, oracle, x, grads=False)
    first = report.first_divergence
    assert first is not None and first.name == "patch_embed.proj_lif"
    assert first.flip_margin == pytest.approx(abs(gap), rel=1e-6, abs=1e-12)
    assert not report.ok                                   # float64 tolerates no flip


def test_import_and_load_without_torch(checkpoints, tmp_path):
    """With torch unimportable: minisnn and minisnn.parity import, the upstream-style checkpoint loads and
    the model runs (its logits match the oracle's), and verify says that it needs torch."""
    path, x, _ = checkpoints["msvit"]
    np.save(tmp_path / "x.npy", x)
    script = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None                      # any `import torch` now fails
        import numpy as np
        import minisnn, minisnn.parity
        from minisnn.models import MSViT
        state = minisnn.load_checkpoint({str(path)!r})
        model = MSViT(**{CASES["msvit"][0]!r}).to_dtype(np.float64).eval()
        model.load_state_dict(state)
        np.save({str(tmp_path / "logits.npy")!r}, model(np.load({str(tmp_path / "x.npy")!r})).data)
        try:
            minisnn.parity.verify_checkpoint({str(path)!r}, overrides={{"num_heads": 2}})
        except ImportError as exc:
            print("ImportError:", exc)
        print(sorted(m for m in sys.modules if m.startswith(("torch", "spikingjelly")) and sys.modules[m]))
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "ImportError: verify compares against PyTorch, which is not installed" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "[]"
    model, oracle, _ = _pair(checkpoints, "msvit")
    with torch.no_grad():
        ref = oracle.eval()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "logits.npy"), ref, rtol=1e-10, atol=1e-12)
