"""minisnn.torch.train: minisnn's checkpoint files, scored identically by `minisnn eval`; resume by either
engine (also in the middle of an epoch); the NaN guard; one-line refusals."""
from __future__ import annotations

import contextlib
import io
import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from minisnn import cli, data as D  # noqa: E402
from minisnn.train import Trainer, config_for, load_state, restore  # noqa: E402
from minisnn.train.export import export_weights  # noqa: E402
from minisnn.torch import TorchTrainer, from_torch, to_torch, train  # noqa: E402
from minisnn.torch.distributed import Place  # noqa: E402
from minisnn.torch.run import main as run_main  # noqa: E402

NARROW = {"dim": 32, "heads": 2}          # dysvit-tiny at width 32: steps of a few milliseconds
CPU = Place(0, 1, torch.device("cpu"))


def quiet(*_args, **_kwargs) -> None:
    pass


def narrow_config(out, **kw):
    """2 epochs of 2 steps of 32 images, mixup on (soft targets), clipping on (the Dy-SViT recipe)."""
    return config_for("dysvit-tiny", **{"epochs": 2, "batch_size": 32, "train_limit": 64,
                                        "model_overrides": dict(NARROW), "out": str(out), "threads": 1, **kw})


def interrupt_after(monkeypatch, trainer_class, steps: int) -> None:
    """Ctrl-C at the start of step `steps + 1` of `trainer_class` (the trainer saves last.npz and re-raises)."""
    original, calls = trainer_class.train_step, []

    def train_step(self, xb, yb):
        calls.append(1)
        if len(calls) > steps:
            raise KeyboardInterrupt
        return original(self, xb, yb)

    monkeypatch.setattr(trainer_class, "train_step", train_step)


@pytest.fixture(scope="module", autouse=True)
def _embedded_sample(tmp_path_factory):
    """Every run of this module uses the embedded sample, whatever data the machine has (CI points
    MINISNN_DATA_DIR at CIFAR-10); module scope, so the module's training fixtures see it too."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MINISNN_DATA_DIR", raising=False)
        patch.setenv("XDG_CACHE_HOME", str(home / "cache"))
        patch.setenv("HOME", str(home))
        yield


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Narrow runs: torch straight through; torch and minisnn each stopped by Ctrl-C in epoch 2 (batch 1)."""
    root = tmp_path_factory.mktemp("runs")
    train(narrow_config(root / "reference"), progress=False, log=quiet)
    with pytest.MonkeyPatch.context() as patch:
        interrupt_after(patch, TorchTrainer, 3)
        with pytest.raises(KeyboardInterrupt):
            train(narrow_config(root / "torch"), progress=False, log=quiet)
    with pytest.MonkeyPatch.context() as patch:
        interrupt_after(patch, Trainer, 3)
        with pytest.raises(KeyboardInterrupt):
            Trainer(narrow_config(root / "minisnn"), progress=False, log=quiet).fit()
    return root


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    """The embedded sample, --train-limit 256, 1 epoch, batch 32 (dysvit-tiny as shipped)."""
    out = tmp_path_factory.mktemp("sample")
    history = train(config_for("dysvit-tiny", epochs=1, batch_size=32, train_limit=256, out=str(out)),
                    progress=False, log=quiet)
    return out, history


def test_the_files_are_minisnn_trainers(sample_run, runs, tmp_path):
    out, history = sample_run
    assert sorted(p.name for p in out.iterdir()) == ["best.npz", "curves.png", "last.npz", "metrics.jsonl"]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert records == history and len(records) == 1
    ours, theirs = load_state(runs / "torch" / "last.npz"), load_state(runs / "minisnn" / "last.npz")
    assert sorted(ours) == sorted(theirs)
    assert (ours["epoch"], ours["batch"]) == (theirs["epoch"], theirs["batch"]) == (1, 1)
    assert sorted(ours["epoch_sums"]) == sorted(theirs["epoch_sums"])
    assert sorted(ours["history"][0]) == sorted(theirs["history"][0])
    assert ours["optimizer"]["param_groups"] == theirs["optimizer"]["param_groups"]     # same lr too
    assert sorted(ours["optimizer"]["state"]) == sorted(theirs["optimizer"]["state"])
    assert {k: type(v) for k, v in ours["optimizer"]["state"][0].items()} == \
           {k: type(v) for k, v in theirs["optimizer"]["state"][0].items()}
    assert ours["schedule"] == theirs["schedule"]
    assert export_weights(out / "best.npz", tmp_path / "w.npz").exists()      # what `minisnn export` runs


def test_minisnn_eval_scores_the_torch_model_image_by_image(sample_run, monkeypatch):
    """`minisnn eval --split val` on the checkpoint; its own forward passes are recorded and compared, image by
    image, with the PyTorch module's predictions on the same images."""
    out, history = sample_run
    predictions, models = [], []
    load_trained = restore.load_trained

    def load_and_record(path):
        model, st = load_trained(path)
        forward = model.forward
        model.forward = lambda x: predictions.append(forward(x).data.argmax(1)) or forward(x)
        models.append((model, st))
        return model, st

    monkeypatch.setattr(restore, "load_trained", load_and_record)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert cli.main(["eval", str(out / "best.npz"), "--split", "val", "--no-progress"]) == 0
    ours = np.concatenate(predictions)
    model, st = models[0]
    x, y = D.get_datasets(announce=quiet).val
    images = D.EvalTransform(normalization=st["normalization"])(x)
    module = to_torch(model).eval()
    with torch.no_grad():
        theirs = np.concatenate([module(torch.from_numpy(images[i:i + 256])).argmax(1).numpy()
                                 for i in range(0, len(x), 256)])
    assert len(ours) == len(theirs) == 500 and np.array_equal(ours, theirs)
    accuracy = float((theirs == y).mean())
    assert f"accuracy {accuracy:.4f}" in printed.getvalue()
    assert accuracy == history[0]["val_acc"]                          # the engine's own validation


def test_resume_after_ctrl_c_continues_bit_for_bit(runs, tmp_path):
    shutil.copytree(runs / "torch", tmp_path / "torch")
    resumed = train(narrow_config(tmp_path / "torch"), progress=False, resume=True, log=quiet)
    straight = load_state(runs / "reference" / "last.npz")
    assert [r["train_loss"] for r in resumed] == [r["train_loss"] for r in straight["history"]]
    st = load_state(tmp_path / "torch" / "last.npz")
    for key in straight["model"]:
        assert np.array_equal(st["model"][key], straight["model"][key]), key
    for index, state in straight["optimizer"]["state"].items():
        assert state["step"] == st["optimizer"]["state"][index]["step"] == 4
        assert np.array_equal(state["exp_avg_sq"], st["optimizer"]["state"][index]["exp_avg_sq"])


@pytest.mark.parametrize("first", ["torch", "minisnn"])
def test_either_engine_resumes_the_others_checkpoint(runs, tmp_path, first):
    """Stopped in epoch 2 by one engine, finished by the other: the optimiser continues (step counts, moments,
    schedule) and the weights stay within AdamW's lr-sized noise of the torch-only run."""
    out = tmp_path / first
    shutil.copytree(runs / first, out)
    if first == "torch":
        trainer = Trainer(narrow_config(out), progress=False, log=quiet)
        trainer.resume()
        history = trainer.fit()
    else:
        history = train(narrow_config(out), progress=False, resume=True, log=quiet)
    assert [r["epoch"] for r in history] == [1, 2]
    st, reference = load_state(out / "last.npz"), load_state(runs / "reference" / "last.npz")
    assert st["schedule"]["t"] == 4 and st["epoch"] == 2
    assert {s["step"] for s in st["optimizer"]["state"].values()} == {4}
    assert sorted(st["optimizer"]["state"]) == sorted(reference["optimizer"]["state"])
    for key in reference["model"]:
        np.testing.assert_allclose(st["model"][key], reference["model"][key], rtol=0, atol=4e-3, err_msg=key)
    assert history[1]["train_loss"] == pytest.approx(reference["history"][1]["train_loss"], rel=1e-3)


def guarded_trainer(tmp_path, nan_guard=True):
    cfg = narrow_config(tmp_path)
    cfg.model_overrides["stability"] = False                     # no NaN guards inside the model
    return TorchTrainer(cfg, CPU, progress=False, nan_guard=nan_guard, log=quiet)


def snapshot(trainer):
    state = trainer.state()
    return {k: v.copy() for k, v in state["model"].items()}, state["optimizer"]


def test_nan_guard_skips_a_step_and_leaves_no_trace(tmp_path):
    trainer = guarded_trainer(tmp_path)
    x, y = np.random.default_rng(0).standard_normal((32, 3, 32, 32)).astype(np.float32), np.arange(32) % 10
    trainer.train_step(x, y)                                     # an ordinary step: optimiser state exists
    before, optimizer = snapshot(trainer)
    bad = x.copy()
    bad[0, 0, 0, 0] = np.nan
    loss, _, skipped = trainer.train_step(bad, y)                # non-finite loss
    assert skipped and not np.isfinite(loss)
    apply_update = trainer.optimizer.step

    def overflowing_update():                                    # a finite gradient, an update that overflows
        apply_update()
        with torch.no_grad():
            trainer.params[0].view(-1)[0] = float("inf")

    trainer.optimizer.step = overflowing_update
    assert trainer.train_step(x, y)[2]
    after, optimizer_after = snapshot(trainer)
    for key in before:
        assert np.array_equal(before[key], after[key]), key
    assert {i: s["step"] for i, s in optimizer["state"].items()} == \
           {i: s["step"] for i, s in optimizer_after["state"].items()}
    for i, s in optimizer["state"].items():
        assert np.array_equal(s["exp_avg"], optimizer_after["state"][i]["exp_avg"])
    unguarded = guarded_trainer(tmp_path, nan_guard=False)
    assert not unguarded.train_step(bad, y)[2]                   # no guard: the step is taken
    assert not all(torch.isfinite(p).all() for p in unguarded.params)


def test_refusals_are_one_line(runs, tmp_path, capsys):
    with pytest.raises(ValueError, match="--bf16 .* cuda only"):
        train(narrow_config(tmp_path), bf16=True)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            train(narrow_config(tmp_path), device="cuda")
    export_weights(runs / "reference" / "best.npz", tmp_path / "weights.npz")
    trainer = TorchTrainer(narrow_config(tmp_path), CPU, progress=False, log=quiet)
    with pytest.raises(ValueError, match="exported weights only"):
        trainer.resume(tmp_path / "weights.npz")
    with pytest.raises(ValueError, match="--epochs must be at least"):
        TorchTrainer(narrow_config(tmp_path, epochs=1), CPU, progress=False, log=quiet).resume(
            runs / "reference" / "last.npz")
    assert run_main(["--model", "dysvit-tiny", "--batch-size", "33", "--nproc", "2"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert from_torch(trainer.module, "dysvit-tiny", **NARROW).config["dim"] == 32
