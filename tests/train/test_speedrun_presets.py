"""Speedrun presets: a registered network plus a recipe that `minisnn train` starts from."""
from __future__ import annotations

import pytest

from minisnn import models
from minisnn.models import registry
from minisnn.train.config import FAMILY_DEFAULTS, config_for, family_of, recipe_note
from minisnn.train.state import load_state
from ..command_line import run

SPEEDRUNS = [n for n in models.names() if models.network_of(n) != n]


def test_there_is_a_ten_minute_speedrun_preset():
    assert "speedrun-10" in SPEEDRUNS
    assert models.training_recipe("speedrun-10")["time_budget"] == 10.0


@pytest.mark.parametrize("name", SPEEDRUNS)
def test_a_speedrun_builds_its_network_and_trains_with_its_family_defaults_then_its_recipe(name):
    network = models.network_of(name)
    assert models.network_of(network) == network and models.training_recipe(network) == {}
    assert models.create(name).config == models.create(network).config
    family = family_of(name)
    assert family and family == family_of(network)
    cfg = config_for(name)
    expected = {**FAMILY_DEFAULTS[family], **models.training_recipe(name)}
    assert {k: getattr(cfg, k) for k in expected} == expected and cfg.model == name


def test_options_given_win_over_the_recipe_and_epochs_alone_replace_its_budget():
    assert config_for("speedrun-10", lr=5e-4).lr == 5e-4
    assert config_for("speedrun-10", time_budget=3).time_budget == 3
    assert config_for("speedrun-10", epochs=2).time_budget is None
    assert config_for("speedrun-10", epochs=2, time_budget=4).time_budget == 4
    assert "replaces speedrun-10's 10-minute time budget" in recipe_note("speedrun-10", {"epochs": 2})
    assert recipe_note("speedrun-10", {"epochs": 2, "time_budget": 4}) is None
    assert recipe_note("dysvit-tiny", {"epochs": 2}) is None
    assert recipe_note("speedrun-10", {"epochs": 1}).endswith("the run trains 1 epoch")
    assert recipe_note("speedrun-10", {"epochs": 3}).endswith("the run trains 3 epochs")


def test_a_recipe_setting_that_is_not_a_training_option_is_a_one_line_error(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))     # the entry goes with the test
    models.register_recipe("test-only-bad-recipe", network="dysvit-tiny", recipe={"learning_rate": 1e-3})
    with pytest.raises(ValueError, match="'learning_rate', which is not a training option") as info:
        config_for("test-only-bad-recipe")
    assert "\n" not in str(info.value)


def test_the_recipe_of_a_recipe_is_refused():
    with pytest.raises(ValueError, match="name the network"):
        models.register_recipe("test-only-recipe-of-recipe", network="speedrun-10", recipe={})
    assert "test-only-recipe-of-recipe" not in models.names()


@pytest.mark.usefixtures("embedded_sample_only")
def test_train_says_that_epochs_replace_the_budget_and_records_the_recipe(capsys, tmp_path):
    rc, out, err = run(capsys, "train", "--model", "speedrun-10", "--epochs", "1", "--train-limit", "128",
                       "--out", str(tmp_path / "run"), "--no-progress")
    assert rc == 0, err
    assert "note: --epochs 1 replaces speedrun-10's 10-minute time budget" in out
    saved = load_state(tmp_path / "run" / "last.npz")["config"]
    assert saved["model"] == "speedrun-10" and saved["lr"] == 2e-3 and saved["label_smoothing"] == 0.1
    assert saved["mixup_alpha"] == 0.0 and saved["time_budget"] is None
