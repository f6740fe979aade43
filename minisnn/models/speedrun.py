"""Speedrun presets: a registered network with a training recipe fitted to a wall-clock budget.

    minisnn train --model speedrun-10 --threads 2 --data-dir DATA     # 10 minutes of training, then a report
    minisnn train --model speedrun-60 --threads 2 --data-dir DATA     # an hour

A speedrun preset is a network that is already registered plus the `minisnn train` settings
chosen for it on the validation split (`docs/speedrun.md` has the search and the measured runs).
Its `time_budget` makes the run plan its warm-up and cosine over the steps that fit in that many
minutes (`minisnn/train/budget.py`); `epochs` only sets the share of the run that warm-up takes.
Options given on the command line win; `--epochs` alone trains that many epochs instead of the budget.
"""
from __future__ import annotations

from . import dysvit  # noqa: F401  (registers dysvit-tiny and dysvit-conv, the networks of the speedruns)
from .registry import register_recipe

register_recipe(
    "speedrun-10", network="dysvit-tiny",
    recipe=dict(time_budget=10.0, epochs=10, lr=2e-3, label_smoothing=0.1, mixup_alpha=0.0),
    description="dysvit-tiny's network trained for 10 minutes: lr 2e-3, label smoothing 0.1, no mixup "
                "(63.9 % / 63.4 % CIFAR-10 test, two seeds, 2 Xeon cores; docs/speedrun.md)")
register_recipe(
    "speedrun-60", network="dysvit-conv",
    recipe=dict(time_budget=60.0, epochs=20, lr=2e-3, label_smoothing=0.1, mixup_alpha=0.0),
    description="dysvit-conv's network (two-conv stem, depth 4, fixed slope) trained for 60 minutes: lr 2e-3, "
                "label smoothing 0.1, no mixup (75.3 % CIFAR-10 test with --flip, seed 0, 2 Xeon cores; "
                "docs/speedrun.md)")
