"""Time-budgeted training: how many steps fit in `--time-budget` minutes, and stopping on time.

`minisnn train --time-budget 60` trains for as many steps as fit in 60 minutes of wall clock, the validation
after every epoch and the checkpoint files included, and lays the recipe over exactly those steps: the linear
warm-up, the cosine down to min-lr and the mixup cooldown keep the shares of the run the recipe gives them
(warmup_epochs / epochs and mixup_off_epochs / epochs), so the last step ends at min-lr and the last stretch
trains without mixup, as in a run whose epochs were chosen by hand.  The last epoch is usually a partial one.

How the plan is made (`BudgetPlanner`, used by `train.loop.TrainingLoop` for both engines):

1. probe     the first steps run on the recipe's own curve.  The first SETTLE_STEPS steps of a process and
             any step that compiled kernels (Numba, torch.compile) are not timed, but their time counts
             against the budget.  After PROBE_STEPS timed steps (or fewer, once they took PROBE_SHARE of the
             budget or half of it is gone) their mean time gives the plan.
2. plan      `steps_that_fit`: the largest total T whose remaining steps and epoch ends fit in the budget left,
             less SAFETY of the budget.  An epoch end (validation, metrics, checkpoints) is measured once one
             has happened; before that it is estimated as a forward pass over the validation images, a third
             of a training step per batch.  The schedule is stretched (`WarmupCosine.stretch`) so that its
             rest ends at step T: the learning rate does not jump.
3. re-plan   at every epoch end, with the step time of the epoch just finished (the pace now) and the
             measured epoch ends, T is fitted again (longer or shorter), the schedule stretched again.  So
             a slow spell that made the deadline compress the plan is undone once the pace is back.
4. deadline  after every step: if the last RECENT steps (of those timed since the plan was last set) were
             more than DRIFT slower than the plan assumed and, at that pace, the run would overrun the budget
             before its next chance to re-plan (the end of this epoch, or step T in the last one), the rest
             of the schedule is compressed to end at an earlier T; if not even one more step fits, the run
             ends with this step.  A short slow spell early in an epoch (another program busy for a few
             seconds) changes nothing: the epoch-end re-plan takes it into account.

The run ends after step T: its last (partial) epoch is validated and saved like any other.  The planner's
state goes into the checkpoint; a resumed run continues the saved plan with the budget left (the saved
budget less the wall clock already used, `WallClock`), re-fitting it at its first epoch end; a changed
--time-budget plans the rest of the run again from step 1.
"""
from __future__ import annotations

import math
import time
from typing import Callable

from .state import TrainCheckpointError

SETTLE_STEPS = 2          # first steps of a process, not timed (compilation, caches, allocations)
PROBE_STEPS = 10          # timed steps before the first plan
PROBE_SHARE = 0.05        # ... or timed steps taking this share of the budget (or half of it gone), at least one
SAFETY = 0.01             # share of the budget the plan leaves unused
RECENT = 20               # steps whose mean time the deadline watches
DRIFT = 0.05              # the deadline acts when those steps are this much slower than the plan's
FORWARD_SHARE = 1 / 3     # a forward pass over a batch, as a share of a training step on it
REPORTED_NOTES = 8        # the final report shows the first two and the last five changes of the plan


class WallClock:
    """The wall clock a run has used: `used` seconds of earlier processes, plus this one's since `start()`.

    `clock` is a function returning seconds (time.perf_counter; tests pass a fake one)."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter, used: float = 0.0):
        self.clock, self.used, self._start = clock, float(used), None

    def start(self) -> None:
        """Count from now on (a second `start` first adds the time counted so far to `used`)."""
        self.used, self._start = self.elapsed(), self.clock()

    def elapsed(self) -> float:
        return self.used + (self.clock() - self._start if self._start is not None else 0.0)


def steps_that_fit(step: int, epoch: int, steps_per_epoch: int, seconds_left: float, step_seconds: float,
                   epoch_end_seconds: float) -> int:
    """The largest total of steps T >= `step` whose remaining steps (T - step, `step_seconds` each) and epoch
    ends (ceil(T / steps_per_epoch) - epoch of them, `epoch_end_seconds` each) take at most `seconds_left`.

    `step` is the steps done so far and `epoch` the epoch in progress (0-based), so step // steps_per_epoch
    == epoch, or step == epoch * steps_per_epoch at the start of an epoch.  T == step when not even one more
    step and the epoch end it needs fit.
    """
    step_seconds = max(step_seconds, 1e-9)

    def cost(total: int) -> float:
        return (total - step) * step_seconds + (-(-total // steps_per_epoch) - epoch) * epoch_end_seconds

    if cost(step + 1) > seconds_left:
        return step
    low, high = step + 1, step + 2 + int(seconds_left / step_seconds)       # cost(low) fits, cost(high) does not
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if cost(middle) <= seconds_left else (low, middle)
    return low


class BudgetPlanner:
    """The plan of a run with a time budget of `minutes` (see the module docstring).

    steps_per_epoch, val_batches (validation images / training batch size) and the recipe's shares of the run,
    warmup_share and mixup_off_share, describe the run; `elapsed` returns the seconds the run has used
    (`WallClock.elapsed`).  After `plan_ready()` the plan is `total` steps, the warm-up ends at step
    `warmup_end` and mixup is off from step `mixup_until` on.  `after_step` and `after_epoch` return True
    when they changed the plan; the loop then stretches its schedule (`stretch_arguments`).
    """

    def __init__(self, minutes: float, steps_per_epoch: int, val_batches: float, warmup_share: float,
                 mixup_off_share: float, elapsed: Callable[[], float], log=print):
        self.seconds = 60.0 * minutes
        self.steps_per_epoch, self.val_batches = steps_per_epoch, val_batches
        self.warmup_share, self.mixup_off_share = warmup_share, mixup_off_share
        self.elapsed, self.log = elapsed, log
        self.total: int | None = None
        self.warmup_end = 0
        self.mixup_until: float = math.inf
        self.plan_seconds = math.nan       # the step time the plan assumes
        self.notes: list[str] = []         # how the plan was made, for the final report
        self._times: list[float] = []      # timed steps of this process
        self._untimed: list[float] = []    # settling and compiling steps of this process
        self._epoch_ends: list[float] = []
        self._epoch_first_time = 0         # index in _times of the first timed step of the current epoch
        self._plan_first_time = 0          # ... and of the first step timed under the current plan
        self._deadlines, self._deadline_first = 0, 0     # compressions in a row (one note) and the first one's step

    # ------------------------------------------------------------ the plan
    def plan_ready(self) -> bool:
        return self.total is not None

    def epoch_end_seconds(self, step_seconds: float) -> float:
        """The measured mean epoch end of this process, or the estimate: a forward pass over the validation."""
        if self._epoch_ends:
            return sum(self._epoch_ends) / len(self._epoch_ends)
        return self.val_batches * step_seconds * FORWARD_SHARE

    def _fit(self, step: int, epoch: int, step_seconds: float) -> int:
        left = self.seconds * (1 - SAFETY) - self.elapsed()
        return steps_that_fit(step, epoch, self.steps_per_epoch, left, step_seconds,
                              self.epoch_end_seconds(step_seconds))

    def _set(self, step: int, total: int, step_seconds: float, why: str, deadline: bool = False) -> bool:
        """Adopt `total`; note `why` with the new length (compressions in a row as one note).  False when
        nothing changed."""
        changed = total != self.total
        self.total, self.plan_seconds = total, step_seconds
        self._plan_first_time = len(self._times)
        self.warmup_end = round(total * self.warmup_share)
        if step < self.mixup_until:                     # mixup still on: its cooldown moves with the plan
            self.mixup_until = total - round(total * self.mixup_off_share)
        if changed:
            epoch_end = self.epoch_end_seconds(step_seconds)
            plan = (f": {step_seconds:.3g} s per step, {epoch_end:.3g} s per epoch end "
                    f"({'measured' if self._epoch_ends else 'estimated'}) -> {total:,} steps "
                    f"({total / self.steps_per_epoch:.2f} epochs)")
            self.log(f"time budget: {why}{plan}")
            if deadline and self._deadlines:
                self.notes.pop()
                why = (f"deadline at steps {self._deadline_first:,}-{step:,} ({self._deadlines + 1} times), "
                       "the rest compressed")
            elif deadline:
                self._deadline_first = step
            self._deadlines = self._deadlines + 1 if deadline else 0
            self.notes.append(why + plan)
        return changed

    def stretch_arguments(self, step: int) -> dict:
        """The `WarmupCosine.stretch` arguments that lay the rest of the schedule over the plan from `step`."""
        return {"at": step, "end": self.total, "warmup_end": self.warmup_end}

    # ------------------------------------------------------------ the events
    def after_step(self, step: int, epoch: int, seconds: float, compiled: bool) -> bool:
        """Step number `step` (1-based: the steps done) took `seconds`; `compiled` when it compiled kernels."""
        if compiled or len(self._untimed) + len(self._times) < SETTLE_STEPS:
            self._untimed.append(seconds)
        else:
            self._times.append(seconds)
        if not self.plan_ready():
            if self._times and (len(self._times) >= PROBE_STEPS or sum(self._times) >= PROBE_SHARE * self.seconds
                                or self.elapsed() >= self.seconds / 2):
                return self._set(step, self._fit(step, epoch, _mean(self._times)), _mean(self._times),
                                 f"plan after {len(self._times)} timed steps"
                                 + (f" ({len(self._untimed)} settling or compiling steps took "
                                    f"{sum(self._untimed):.3g} s)" if self._untimed else ""))
            # no timed step yet: stop when the budget is gone, or when one more step like the last does not fit
            # (not judged on a process's first step alone, which is the slowest)
            last = self._untimed[-1] if len(self._untimed) > 1 else 0.0
            if not self._times and self.elapsed() + last > self.seconds:
                return self._set(step, self._fit(step, epoch, self._untimed[-1]), self._untimed[-1],
                                 "the budget ran out before a step could be timed")
            return False
        return self._watch_deadline(step, epoch)

    def _watch_deadline(self, step: int, epoch: int) -> bool:
        if step >= self.total:
            return False
        recent = self._times[max(self._plan_first_time, len(self._times) - RECENT):]   # timed under this plan
        pace = _mean(recent) if len(recent) >= min(RECENT, 5) else self.plan_seconds
        step_seconds = pace if pace > self.plan_seconds * (1 + DRIFT) else self.plan_seconds
        # The next chance to re-plan is this epoch's end: act now only if the run would overrun before it.
        horizon = min(self.total, (epoch + 1) * self.steps_per_epoch)
        projected = self.elapsed() + (horizon - step) * step_seconds + self.epoch_end_seconds(step_seconds)
        if projected <= self.seconds:
            return False
        total = min(self.total, self._fit(step, epoch, step_seconds))
        return self._set(step, total, step_seconds, f"deadline at step {step:,}, the rest compressed", deadline=True)

    def after_epoch(self, step: int, epoch: int, seconds: float) -> bool:
        """An epoch end took `seconds`; `step` steps are done and `epoch` is the next epoch (0-based)."""
        self._epoch_ends.append(seconds)
        step_times = self._times or self._untimed
        if not self.plan_ready():
            self._epoch_first_time = len(self._times)
            return self._set(step, self._fit(step, epoch, _mean(step_times)), _mean(step_times),
                             f"plan at the end of epoch {epoch}")
        pace = self._times[self._epoch_first_time:] or self._times
        self._epoch_first_time = len(self._times)
        if step >= self.total or not pace:
            return False
        return self._set(step, self._fit(step, epoch, _mean(pace)), _mean(pace),
                         f"re-plan at the end of epoch {epoch}")

    # ------------------------------------------------------------ files and report
    def state_dict(self) -> dict:
        return {"minutes": self.seconds / 60.0, "total": self.total, "warmup_end": self.warmup_end,
                "mixup_until": self.mixup_until, "plan_seconds": self.plan_seconds, "notes": list(self.notes)}

    def load_state_dict(self, state: dict, path) -> None:
        """Continue the plan `state_dict` saved (in checkpoint `path`); a different budget is planned again."""
        try:
            minutes, total, notes = float(state["minutes"]), state["total"], list(state["notes"])
            warmup_end, mixup_until, plan_seconds = int(state["warmup_end"]), float(state["mixup_until"]), \
                float(state["plan_seconds"])
            if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < 0):
                raise ValueError(f"total {total!r}")
        except (KeyError, TypeError, ValueError) as exc:
            raise TrainCheckpointError(path, f"holds a damaged time-budget plan ({exc})") from None
        self.notes = [str(n) for n in notes]
        if not math.isclose(minutes, self.seconds / 60.0):
            self.notes.append(f"budget changed from {minutes:g} to {self.seconds / 60:g} minutes: the rest of the "
                              "run planned again")
            self.mixup_until = mixup_until
            return
        self.total, self.warmup_end, self.mixup_until, self.plan_seconds = total, warmup_end, mixup_until, \
            plan_seconds

    def report(self, steps: int, history: list[dict]) -> str:
        """The closing lines of a budgeted run: budget, time used, steps, epochs, accuracy, how it was planned."""
        used = self.elapsed()
        lines = [f"time budget {self.seconds / 60:g} min, used {used / 60:.2f} min "
                 f"({100 * used / self.seconds:.1f} %): {steps:,} steps = {steps / self.steps_per_epoch:.2f} epochs"]
        if history and history[-1]["val_acc"] is not None and math.isfinite(history[-1]["val_acc"]):
            lines[0] += f", final validation accuracy {history[-1]['val_acc']:.2%}"
        shown = self.notes if len(self.notes) <= REPORTED_NOTES else [
            *self.notes[:2], f"... {len(self.notes) - REPORTED_NOTES + 1} more changes of the plan (last.npz keeps "
                             "them all) ...", *self.notes[3 - REPORTED_NOTES:]]
        lines += [f"  {note}" for note in shown]
        return "\n".join(lines)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


class RunLength:
    """How long a run of `cfg` is, in steps: cfg.epochs of `steps_per_epoch` steps, or what fits cfg.time_budget
    (then `planner`, a BudgetPlanner, decides; `elapsed` and `log` are handed to it).  `with_mixup`: the run
    mixes images (until its cooldown, the last mixup_off_epochs / epochs of the steps)."""

    def __init__(self, cfg, steps_per_epoch: int, val_images: int, with_mixup: bool,
                 elapsed: Callable[[], float], log=print):
        self.cfg, self.steps_per_epoch, self.with_mixup = cfg, steps_per_epoch, with_mixup
        self.planner = None
        if cfg.time_budget is not None:
            self.planner = BudgetPlanner(cfg.time_budget, steps_per_epoch, val_images / cfg.batch_size,
                                         cfg.warmup_epochs / cfg.epochs, cfg.mixup_off_epochs / cfg.epochs,
                                         elapsed, log=log)

    def steps(self) -> float:
        """The run's steps: epochs x steps per epoch, or the budget's plan (inf until it is made)."""
        if self.planner is None:
            return self.cfg.epochs * self.steps_per_epoch
        return self.planner.total if self.planner.plan_ready() else math.inf

    def epoch_stop(self, epoch: int) -> int:
        """The batch at which epoch `epoch`'s steps stop: the epoch's end, or the plan's last step in it."""
        return int(min(self.steps_per_epoch, self.steps() - epoch * self.steps_per_epoch))

    def unfinished(self, epoch: int, batch: int, step: int) -> bool:
        """Whether a run at `epoch`, `batch` (of the epoch) and `step` (of the run) has steps or a validation left."""
        if self.planner is None:
            return epoch < self.cfg.epochs
        return batch > 0 or step < self.steps()

    def mixup_on(self, step: int) -> bool:
        """Whether step `step` (0-based, over the run) trains on mixed images: not in the cooldown at the end."""
        if not self.with_mixup:
            return False
        if self.planner is not None:
            return step < self.planner.mixup_until
        return step < (self.cfg.epochs - self.cfg.mixup_off_epochs) * self.steps_per_epoch

    def describe(self) -> str:
        """The length, for the line a run starts with."""
        if self.planner is None:
            return f"{self.steps_per_epoch} steps x {self.cfg.epochs} epochs"
        mixup = f", mixup off for the last {self.planner.mixup_off_share:.0%}" if self.with_mixup else ""
        return (f"{self.steps_per_epoch} steps per epoch, as many as fit in {self.cfg.time_budget:g} min "
                f"(warm-up {self.planner.warmup_share:.0%} of them{mixup})")

    def epoch_label(self, epoch: int) -> str:
        """"epoch 3/12" for a progress bar ("epoch 1/?" while a budget's plan is not made)."""
        epochs = self.steps() / self.steps_per_epoch
        return f"epoch {epoch + 1}/" + (f"{math.ceil(epochs)}" if math.isfinite(epochs) else "?")

    def restore(self, st: dict, schedule, path) -> None:
        """On resume with a time budget: the saved plan (`st["budget"]`) and the knots of the stretched schedule."""
        if self.planner is None:
            return
        try:
            schedule.knots = [(int(t), float(p)) for t, p in st["schedule"].get("knots", [])]
        except (TypeError, ValueError) as exc:
            raise TrainCheckpointError(path, f"holds a damaged schedule ({exc})") from None
        schedule.step(schedule.t)
        if "budget" in st:
            self.planner.load_state_dict(st["budget"], path)
