"""`--time-budget`: the plan's length from a step time, the schedule stretched without a jump to min-lr at
the last step, mixup off over the planned tail, stopping on time when the pace drops, resume, the torch
engine and the command line.  The trainings run a tiny Dy-SViT on the embedded sample under a fake clock
that moves only when a step or a validation is run (by the seconds the test gives them), so the plans are
deterministic and nothing sleeps."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from minisnn.optim import AdamW, WarmupCosine
from minisnn.nn import Parameter
from minisnn.train import Trainer, config_for
from minisnn.train.budget import BudgetPlanner, WallClock, steps_that_fit
from minisnn.train.config import resumed_config
from minisnn.train.state import load_state

from ..command_line import run

pytestmark = pytest.mark.usefixtures("embedded_sample_only")

SMALL = dict(dim=32, depth=1, heads=2, mlp_ratio=2)
SPE = 10                                    # steps per epoch: 160 images / 16
VALIDATED = 64                              # validation images scored (of 500): the runs are about the clock


class FakeClock:
    """Seconds that pass only when `advance` is called."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def quiet(*_args, **_kwargs) -> None:
    pass


def budget_config(out, minutes=1.0, **kw):
    """Dy-SViT's recipe (mixup 0.2, cooldown 2 of 10 epochs = 20 %, warm-up 1 of 10 = 10 %), 10 steps per epoch."""
    return config_for("dysvit-cifar10", **{"batch_size": 16, "train_limit": 160, "val_size": 500, "lr": 2e-3,
                                           "time_budget": minutes, "model_overrides": SMALL, "out": str(out), **kw})


def timed(trainer, step_seconds, validation_seconds=2.0, clock=None):
    """Put `trainer` on a fake clock: step i (0-based over the run) takes step_seconds(i), a validation
    `validation_seconds` (scoring VALIDATED images).  Returns the clock and the steps seen: (step, lr, mixed)."""
    clock = clock or FakeClock()
    trainer.wall.clock = clock
    steps, train_step, validate = [], trainer.train_step, trainer._validate

    def step(xb, yb):
        steps.append((trainer.schedule.t, trainer.optimizer.param_groups[0]["lr"], yb.ndim == 2))
        clock.advance(step_seconds(trainer.schedule.t))
        return train_step(xb, yb)

    def validation(x, y):
        clock.advance(validation_seconds)
        return validate(x[:VALIDATED], y[:VALIDATED])

    trainer.train_step, trainer._validate = step, validation
    return clock, steps


# ------------------------------------------------------------------ the plan
def test_steps_that_fit_counts_steps_and_epoch_ends():
    # T steps cost T s plus 5 s per epoch of 10: 65 + 7 * 5 = 100 fits, 66 + 7 * 5 does not
    assert steps_that_fit(0, 0, 10, 100.0, 1.0, 5.0) == 65
    # 12 steps done (epoch 1 in progress): its end is still to come
    assert steps_that_fit(12, 1, 10, 10.0, 1.0, 5.0) == 17
    assert steps_that_fit(12, 1, 10, 5.5, 1.0, 5.0) == 12           # not one more step and its epoch end
    assert steps_that_fit(20, 2, 10, 0.0, 1.0, 5.0) == 20           # at an epoch's start, nothing pending


def test_the_plan_leaves_compiling_and_settling_steps_out_of_the_rate():
    used = [0.0]
    planner = BudgetPlanner(5.0, SPE, val_batches=3.0, warmup_share=0.1, mixup_off_share=0.2,
                            elapsed=lambda: used[0], log=quiet)
    for step, (seconds, compiled) in enumerate([(20.0, True), (1.5, False)] + [(1.0, False)] * 10, start=1):
        used[0] += seconds
        changed = planner.after_step(step, step // SPE, seconds, compiled)
        assert changed == (step == 12) and planner.plan_ready() == (step >= 12)
    # 31.5 s used of 300 (less 1 %); 1 s a step, an epoch end estimated at 3 batches x 1 s / 3 = 1 s
    assert planner.plan_seconds == 1.0
    assert planner.total == steps_that_fit(12, 1, SPE, 0.99 * 300 - 31.5, 1.0, 1.0) == 252
    assert planner.warmup_end == 25 and planner.mixup_until == 252 - 50
    assert "2 settling or compiling steps took 21.5 s" in planner.notes[0]


def test_stretch_keeps_the_rate_and_ends_at_min_lr():
    schedule = WarmupCosine(AdamW([Parameter(np.zeros(2, np.float32))], lr=1.0), warmup=10, total=100,
                            base_lr=1.0, min_lr=0.01)
    before = [schedule.lr_at(t) for t in range(8)]
    schedule.stretch(at=7, end=40, warmup_end=12)
    assert [schedule.lr_at(t) for t in range(8)] == before            # the past and the present do not move
    assert schedule.lr_at(12) == 1.0 and schedule.lr_at(40) == 0.01
    lr_at_20 = schedule.lr_at(20)
    schedule.stretch(at=20, end=25)
    assert schedule.lr_at(20) == lr_at_20 and schedule.lr_at(25) == 0.01
    assert all(schedule.lr_at(t) > schedule.lr_at(t + 1) for t in range(20, 25))


# ------------------------------------------------------------------ whole runs
def test_a_budgeted_run_fits_its_plan_and_ends_at_min_lr_without_mixup(tmp_path):
    trainer = Trainer(budget_config(tmp_path / "run"), progress=False, log=quiet)
    clock, steps = timed(trainer, lambda t: 1.0)
    history = trainer.fit()
    total, planner = trainer.schedule.t, trainer.budget
    assert [s[0] for s in steps] == list(range(total)) and total == planner.total
    assert clock.now <= 60.0 and clock.now >= 0.95 * 60.0
    # the re-plan at the end of epoch 1 measured the 2 s validation: 49 steps and 5 epoch ends fit in 59.4 s
    assert total == 49 and "re-plan at the end of epoch 1" in planner.notes[-1]
    lrs = [lr for _, lr, _ in steps]
    peak = lrs.index(max(lrs))
    assert all(a <= b for a, b in zip(lrs[:peak], lrs[1:peak + 1]))      # warm-up: up, no jump down
    assert all(a > b for a, b in zip(lrs[peak:], lrs[peak + 1:]))         # cosine: down, no jump up
    assert trainer.optimizer.param_groups[0]["lr"] == trainer.cfg.min_lr
    mixed = [m for _, _, m in steps]
    assert mixed == [True] * 39 + [False] * 10                            # 20 % of 49 steps
    assert [h["steps"] for h in history] == [10, 20, 30, 40, 49]          # a partial last epoch
    assert history[-1]["lr"] == trainer.cfg.min_lr
    assert history[-1]["wall_minutes"] == pytest.approx(clock.now / 60)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["wall_minutes"] for line in lines] == [h["wall_minutes"] for h in history]
    assert all((tmp_path / "run" / name).is_file() for name in ("last.npz", "best.npz", "curves.png"))


def test_the_run_stops_on_time_when_the_steps_slow_down(tmp_path):
    trainer = Trainer(budget_config(tmp_path / "run"), progress=False, log=quiet)
    clock, steps = timed(trainer, lambda t: 1.0 if t < 25 else 3.0)
    reports = []
    trainer.log = reports.append
    trainer.fit()
    assert clock.now <= 60.0
    assert trainer.schedule.t < 49 and any("deadline at step" in note for note in trainer.budget.notes)
    lrs = [lr for _, lr, _ in steps]
    peak = lrs.index(max(lrs))
    assert all(a > b for a, b in zip(lrs[peak:], lrs[peak + 1:]))
    assert trainer.optimizer.param_groups[0]["lr"] == trainer.cfg.min_lr
    assert not steps[-1][2]                                                # the cooldown moved with the end
    assert reports[-1].startswith("time budget 1 min, used") and "deadline" in reports[-1]


def test_a_slow_spell_is_undone_at_the_next_epoch_end_once_the_pace_is_back(tmp_path):
    """Steps 12-16 take 3 s instead of 1 s.  The run cannot overrun its budget before the end of that epoch,
    so the deadline stays quiet (no plan made from five slow steps); the end of epoch 2 shortens the plan at
    that epoch's pace, the end of epoch 3 lengthens it again, so the run still uses its budget."""
    trainer = Trainer(budget_config(tmp_path / "run", minutes=2.0), progress=False, log=quiet)
    clock, steps = timed(trainer, lambda t: 3.0 if 12 <= t < 17 else 1.0)
    trainer.fit()
    notes = trainer.budget.notes
    assert not any("deadline" in note for note in notes)
    lengths = [int(note.split("-> ")[1].split(" steps")[0].replace(",", "")) for note in notes]
    shortened = next(i for i in range(1, len(lengths)) if lengths[i] < lengths[i - 1])
    assert "re-plan at the end of epoch 2" in notes[shortened]
    assert max(lengths[shortened + 1:]) > lengths[shortened]               # lengthened after the spell
    assert trainer.schedule.t > min(lengths)
    assert 0.95 * 120.0 <= clock.now <= 120.0
    assert trainer.optimizer.param_groups[0]["lr"] == trainer.cfg.min_lr
    lrs = [lr for _, lr, _ in steps]
    peak = lrs.index(max(lrs))
    assert all(a > b for a, b in zip(lrs[peak:], lrs[peak + 1:]))          # no jump up when lengthened


def test_the_report_shows_the_first_and_last_changes_of_a_long_plan():
    planner = BudgetPlanner(1.0, SPE, 1.0, 0.1, 0.0, elapsed=lambda: 0.0, log=quiet)
    planner.notes = [f"change {i}" for i in range(20)]
    lines = planner.report(10, []).splitlines()[1:]
    assert [line.strip() for line in lines] == ["change 0", "change 1",
                                                "... 13 more changes of the plan (last.npz keeps them all) ...",
                                                "change 15", "change 16", "change 17", "change 18", "change 19"]


def test_a_resumed_budgeted_run_continues_its_plan_with_the_time_left(tmp_path):
    out = tmp_path / "run"
    first = Trainer(budget_config(out), progress=False, log=quiet)
    clock, _ = timed(first, lambda t: 1.0)
    train_step = first.train_step

    def interrupt_at_step_25(xb, yb):
        if first.schedule.t == 25:
            raise KeyboardInterrupt
        return train_step(xb, yb)

    first.train_step = interrupt_at_step_25
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    saved = load_state(out / "last.npz")
    assert saved["budget"]["total"] == 49 and saved["wall_seconds"] == clock.now == 29.0

    second = Trainer(budget_config(out), progress=False, log=quiet)
    second.resume()
    assert second.budget.total == 49 and second.wall.elapsed() == 29.0
    clock, steps = timed(second, lambda t: 1.0)
    history = second.fit()
    assert steps[0][0] == 25 and second.schedule.t == 49 and 29.0 + clock.now <= 60.0
    assert history[-1]["wall_minutes"] == pytest.approx((29.0 + clock.now) / 60)
    assert second.optimizer.param_groups[0]["lr"] == second.cfg.min_lr


def test_a_changed_budget_is_planned_again_and_epochs_stay_as_they_were():
    saved = budget_config("r", minutes=1.0).to_dict()
    cfg, messages = resumed_config(saved, {"time_budget": 2.0})
    assert cfg.time_budget == 2.0 and "planned again" in messages[0]
    with pytest.raises(ValueError, match="--epochs 20 cannot change a run planned by --time-budget"):
        resumed_config(saved, {"epochs": 20})
    planner = BudgetPlanner(2.0, SPE, 3.0, 0.1, 0.2, elapsed=lambda: 0.0, log=quiet)
    planner.load_state_dict({"minutes": 1.0, "total": 45, "warmup_end": 4, "mixup_until": 36,
                             "plan_seconds": 1.0, "notes": []}, "last.npz")
    assert not planner.plan_ready() and "budget changed from 1 to 2 minutes" in planner.notes[-1]


def test_a_damaged_budget_entry_is_refused_in_one_line():
    planner = BudgetPlanner(1.0, SPE, 3.0, 0.1, 0.2, elapsed=lambda: 0.0, log=quiet)
    with pytest.raises(ValueError, match="last.npz: holds a damaged time-budget plan"):
        planner.load_state_dict({"minutes": "soon"}, "last.npz")


def test_the_wall_clock_adds_the_time_of_earlier_processes():
    clock = FakeClock()
    wall = WallClock(clock, used=30.0)
    clock.advance(5.0)
    wall.start()
    clock.advance(2.5)
    assert wall.elapsed() == 32.5


# ------------------------------------------------------------------ torch engine and command line
@pytest.mark.torch
def test_the_torch_engine_honours_the_same_budget(tmp_path):
    torch = pytest.importorskip("torch")
    from minisnn.torch import TorchTrainer
    from minisnn.torch.distributed import Place
    from ..conftest import one_torch_thread

    with one_torch_thread():
        trainer = TorchTrainer(budget_config(tmp_path / "run"), Place(0, 1, torch.device("cpu")), progress=False,
                               log=quiet)
        clock, steps = timed(trainer, lambda t: 1.0)
        history = trainer.fit()
    assert trainer.schedule.t == 49 and [h["steps"] for h in history] == [10, 20, 30, 40, 49]
    assert clock.now <= 60.0 and trainer.optimizer.param_groups[0]["lr"] == pytest.approx(trainer.cfg.min_lr)
    assert [m for _, _, m in steps] == [True] * 39 + [False] * 10


def test_the_first_line_names_the_mixup_cooldown_only_when_there_is_mixup(tmp_path):
    with_mixup = Trainer(budget_config(tmp_path / "a"), progress=False, log=quiet).length.describe()
    without = Trainer(budget_config(tmp_path / "b", mixup_alpha=0.0), progress=False, log=quiet).length.describe()
    assert with_mixup.endswith("(warm-up 10% of them, mixup off for the last 20%)"), with_mixup
    assert without.endswith("(warm-up 10% of them)"), without


def test_the_command_line_takes_a_budget_and_prints_the_report(tmp_path, capsys):
    out = tmp_path / "run"
    rc, text, err = run(capsys, "train", "--model", "dysvit-tiny", "--set", "dim=32", "--set", "depth=1",
                        "--set", "heads=2", "--batch-size", "32", "--train-limit", "64", "--time-budget", "0.05",
                        "--epochs", "4", "--no-progress", "--out", out)
    assert rc == 0, err
    assert "note: --time-budget 0.05 sets the run's length; --epochs 4 only sets" in text
    report = text[text.index("time budget 0.05 min, used"):]
    assert "steps =" in report and "epochs" in report and len(report.split("\ndone:")[0].splitlines()) >= 2
    assert "steps within its 0.05-minute budget" in text
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["steps"] >= 1 and math.isfinite(last["wall_minutes"])
    rc, _, err = run(capsys, "train", "--time-budget", "soon", "--out", tmp_path / "x")
    assert rc == 2 and "--time-budget: expected a number" in err
    rc, _, err = run(capsys, "train", "--time-budget", "-1", "--out", tmp_path / "y")
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "positive number of minutes" in err
