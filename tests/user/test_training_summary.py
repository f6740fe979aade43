"""The closing lines of `minisnn train` tell a newcomer what happened and what to do next."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from minisnn.cli import README_RECIPE, README_RESULT, training_summary

README = Path(__file__).resolve().parents[2] / "README.md"


CFG = SimpleNamespace(model="dysvit-tiny", out="runs/x")


def test_a_short_sample_run_explains_its_low_accuracy_and_how_to_reproduce_the_readme():
    text = training_summary(CFG, [{"epoch": 1, "val_acc": 0.12}], images=2000, source="embedded CIFAR-10 sample",
                            on_sample=True)
    assert "dysvit-tiny" in text and "2,000 images" in text and "embedded CIFAR-10 sample" in text
    assert "runs/x/best.npz" in text and "curves.png" in text and "metrics.jsonl" in text
    assert "minisnn eval runs/x/best.npz --split val" in text
    assert "low accuracy is expected" in text and README_RECIPE in text and "minisnn download cifar10" in text


def test_a_full_run_points_to_the_test_split_without_the_sample_note():
    hist = [{"epoch": e, "val_acc": a} for e, a in ((1, 0.4), (2, 0.6), (3, 0.55), (4, 0.58))]
    text = training_summary(CFG, hist, images=45000, source="CIFAR-10 from DATA")
    assert "60.00% (epoch 2)" in text and "minisnn eval runs/x/best.npz" in text
    assert "--split val" not in text and README_RECIPE not in text


def test_the_readme_states_the_result_and_recipe_the_command_quotes():
    readme = README.read_text(encoding="utf-8")
    assert README_RECIPE in readme
    assert README_RESULT.split(" CIFAR-10")[0] in readme      # "65.7 %"


def test_the_torch_engine_is_named():
    text = training_summary(CFG, [{"epoch": 1, "val_acc": 0.5}] * 3, engine="PyTorch on cuda")
    assert text.startswith("done: dysvit-tiny trained for 3 epoch(s) with PyTorch on cuda.")
