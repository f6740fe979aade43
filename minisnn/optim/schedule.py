"""Learning-rate schedules: linear warm-up + cosine decay, and timm's per-epoch cosine.

A schedule owns a position t (a step or an epoch: whatever unit you call
`step()` on) and writes `lr_at(t)` into every param group, scaled by the
group's optional `lr_scale`.  PyTorch's convention: the constructor applies
lr_at(0); each `step()` moves to t + 1 and applies lr_at(t + 1).  So in

    for t in range(total):
        ...; optimizer.step(); schedule.step()

optimiser step t runs with lr_at(t).

WarmupCosine, for warm-up length W, total length T, peak η, floor η_min, start η₀:

    t < W:        η₀ + (η − η₀)·t/W
    W ≤ t < T:    η_min + ½(η − η_min)(1 + cos(π·(t − W)/(T − W)))
    t ≥ T:        η_min

`WarmupCosine.stretch(at, end, warmup_end)` lays the rest of the curve over other steps (a run whose
length is re-planned while it trains, `minisnn.train.budget`): from step `at` on, the position on the
curve moves linearly from where step `at` is to the end of the warm-up at step `warmup_end` (while the
warm-up is not over) and on to T at step `end`.  The rate at `at` is unchanged, so the curve does not jump,
and step `end` is at η_min.
"""
from __future__ import annotations

import bisect
import math

from .optimizer import Optimizer


class LRSchedule:
    """Base class: subclasses define `lr_at(t)`; state is the position t plus the hyper-parameters."""

    def __init__(self, optimizer: Optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"a schedule needs an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.t = 0
        self._apply()

    def lr_at(self, t: float) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def _apply(self) -> None:
        lr = self.lr_at(self.t)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        self.last_lr = lr

    def step(self, t: int | None = None) -> float:
        """Advance to t + 1 (or jump to `t`) and set the learning rate; returns it."""
        self.t = self.t + 1 if t is None else int(t)
        self._apply()
        return self.last_lr

    def get_last_lr(self) -> list[float]:
        """The learning rate of every param group, as set by the last step."""
        return [g["lr"] for g in self.optimizer.param_groups]

    def _hyper(self) -> dict:
        return {}

    def state_dict(self) -> dict:
        return {"t": self.t, **self._hyper()}

    def load_state_dict(self, state: dict) -> None:
        """Restore the position (and hyper-parameters) saved by `state_dict()` and re-apply the lr."""
        for key in self._hyper():
            if key in state:
                setattr(self, key, state[key])
        self.t = int(state["t"])
        self._apply()


class WarmupCosine(LRSchedule):
    """Linear warm-up from `warmup_start_lr` to `base_lr` over `warmup` units, cosine to `min_lr` at `total`.

    The unit is whatever `step()` is called on: iterations (per-step schedule) or epochs.
    """

    def __init__(self, optimizer: Optimizer, warmup: int, total: int, base_lr: float,
                 min_lr: float = 0.0, warmup_start_lr: float = 0.0):
        if not total > 0:
            raise ValueError(f"total must be > 0, got {total}")
        if not 0 <= warmup <= total:
            raise ValueError(f"warmup must lie in [0, total={total}], got {warmup}")
        for name, value in (("base_lr", base_lr), ("min_lr", min_lr), ("warmup_start_lr", warmup_start_lr)):
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        self.warmup, self.total = warmup, total
        self.base_lr, self.min_lr, self.warmup_start_lr = float(base_lr), float(min_lr), float(warmup_start_lr)
        self.knots: list[tuple[int, float]] = []    # (step, position on the curve) after `stretch`; [] = t itself
        super().__init__(optimizer)

    def position(self, t: float) -> float:
        """Where on the curve step t is: t itself, or, after `stretch`, linear between the knots (and past
        the last knot, one unit per step on from it)."""
        knots = self.knots
        i = bisect.bisect_right([k[0] for k in knots], t)       # knots[i - 1] <= t < knots[i]
        if i == 0:
            return float(t)
        if i == len(knots):
            return knots[-1][1] + (t - knots[-1][0])
        (t0, p0), (t1, p1) = knots[i - 1], knots[i]
        return p0 + (p1 - p0) * (t - t0) / (t1 - t0)

    def stretch(self, at: int, end: int, warmup_end: int | None = None) -> None:
        """From step `at` on, run the rest of the curve over the steps up to `end` (see the module docstring).

        While the warm-up is not over at `at`, it now ends at step `warmup_end` when at < warmup_end < end,
        else the rest of the warm-up and the cosine share the steps to `end` alike.  end <= at ends the
        curve at `at`: the rate is η_min from there on.
        """
        p = self.position(at)
        knots = [k for k in (self.knots or [(0, 0.0)]) if k[0] < at]
        if end <= at:
            self.knots = knots + [(at, float(max(p, self.total)))]
        else:
            knots.append((at, p))
            if p < self.warmup and warmup_end is not None and at < warmup_end < end:
                knots.append((warmup_end, float(self.warmup)))
            self.knots = knots + [(end, float(max(p, self.total)))]
        self._apply()

    def lr_at(self, t: float) -> float:
        return self.curve(self.position(t))

    def curve(self, t: float) -> float:
        """The warm-up and cosine at position t (the rate of step t before any `stretch`)."""
        if t < self.warmup:
            return self.warmup_start_lr + (self.base_lr - self.warmup_start_lr) * t / self.warmup
        if t >= self.total:
            return self.min_lr
        progress = (t - self.warmup) / (self.total - self.warmup)
        return self.min_lr + 0.5 * (self.base_lr - self.min_lr) * (1.0 + math.cos(math.pi * progress))

    def _hyper(self) -> dict:
        return {"warmup": self.warmup, "total": self.total, "base_lr": self.base_lr,
                "min_lr": self.min_lr, "warmup_start_lr": self.warmup_start_lr, "knots": self.knots}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.knots = [(int(t), float(p)) for t, p in state.get("knots", [])]
        self._apply()


def timm_cosine_lr(epoch: float, base_lr: float, t_initial: int, lr_min: float = 0.0, warmup_t: int = 0,
                   warmup_lr_init: float = 0.0, warmup_prefix: bool = False, cycle_limit: int = 1) -> float:
    """The learning rate timm's `CosineLRScheduler` sets at the start of `epoch` (t_in_epochs=True).

    No cycle multiplier, decay or k-decay (timm's defaults).  Warm-up is linear from
    warmup_lr_init; with warmup_prefix=False the cosine is indexed by the raw epoch,
    not epoch − warmup_t, so it has already decayed a little when warm-up ends.
    After `cycle_limit` cycles of `t_initial` epochs the rate stays at lr_min
    (e.g. the 10 cool-down epochs of the MSViT/Spikformer CIFAR recipes).
    """
    if not epoch >= 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    if epoch < warmup_t:
        return warmup_lr_init + epoch * (base_lr - warmup_lr_init) / warmup_t
    t = epoch - warmup_t if warmup_prefix else epoch
    cycle = math.floor(t / t_initial)
    t_curr = t - t_initial * cycle
    if cycle >= cycle_limit:
        return lr_min
    return lr_min + 0.5 * (base_lr - lr_min) * (1.0 + math.cos(math.pi * t_curr / t_initial))


class TimmCosine(LRSchedule):
    """Per-epoch schedule with `timm_cosine_lr`: epoch e (0-based) runs with lr_at(e); call step() once per epoch."""

    def __init__(self, optimizer: Optimizer, base_lr: float, t_initial: int, lr_min: float = 0.0,
                 warmup_t: int = 0, warmup_lr_init: float = 0.0, warmup_prefix: bool = False,
                 cycle_limit: int = 1):
        if not t_initial > 0:
            raise ValueError(f"t_initial must be > 0, got {t_initial}")
        if not warmup_t >= 0:
            raise ValueError(f"warmup_t must be >= 0, got {warmup_t}")
        self.base_lr, self.t_initial, self.lr_min = float(base_lr), t_initial, float(lr_min)
        self.warmup_t, self.warmup_lr_init = warmup_t, float(warmup_lr_init)
        self.warmup_prefix, self.cycle_limit = warmup_prefix, cycle_limit
        super().__init__(optimizer)

    def lr_at(self, t: float) -> float:
        return timm_cosine_lr(t, self.base_lr, self.t_initial, self.lr_min, self.warmup_t,
                              self.warmup_lr_init, self.warmup_prefix, self.cycle_limit)

    def _hyper(self) -> dict:
        return {"base_lr": self.base_lr, "t_initial": self.t_initial, "lr_min": self.lr_min,
                "warmup_t": self.warmup_t, "warmup_lr_init": self.warmup_lr_init,
                "warmup_prefix": self.warmup_prefix, "cycle_limit": self.cycle_limit}
