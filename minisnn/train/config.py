"""Training configuration: one dataclass, plus per-model-family defaults.

`config_for(model, **overrides)` starts from the family defaults (the recipe the
family's paper or model card uses, shortened for a CPU), then the model's registered
recipe (a speedrun preset's, `minisnn/models/speedrun.py`), and applies the user's
overrides.  Every field is validated with a one-line error.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from .. import models

NORMALISATIONS = ("upstream", "dysvit")
# The `minisnn train` option of each field whose name differs from the field's.
FLAGS = {"model_overrides": "--set", "mixup_alpha": "--mixup", "cutmix_alpha": "--cutmix", "flip": "--no-flip"}


def flag(field_name: str) -> str:
    """The command-line option that sets a TrainConfig field, e.g. "--batch-size"."""
    return FLAGS.get(field_name, "--" + field_name.replace("_", "-"))


@dataclass
class TrainConfig:
    model: str = "spikformer-tiny"
    epochs: int = 10
    time_budget: float | None = None      # minutes; the run's length then comes from it (train/budget.py)
    batch_size: int = 64
    eval_batch_size: int = 256
    lr: float = 1e-3
    min_lr: float = 1e-5
    warmup_epochs: float = 1.0
    weight_decay: float = 0.05
    clip_grad: float | None = None
    label_smoothing: float = 0.1
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    mixup_off_epochs: int = 0
    crop_padding: int = 4
    flip: bool = True
    normalization: str = "upstream"
    val_size: int = 5000
    train_limit: int | None = None
    seed: int = 0
    data_dir: str | None = None
    out: str | None = None
    threads: int | None = None
    model_overrides: dict = field(default_factory=dict)

    def _check_types(self) -> None:
        """Each field holds a value of its annotated type (an int is no bool; a float field takes an int)."""
        tests = {"int": lambda v: isinstance(v, int) and not isinstance(v, bool),
                 "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
                 "bool": lambda v: isinstance(v, bool), "str": lambda v: isinstance(v, str),
                 "None": lambda v: v is None, "dict": lambda v: isinstance(v, dict)}
        for f in dataclasses.fields(self):
            kinds = [k.strip() for k in str(f.type).split("|")]
            value = getattr(self, f.name)
            if not any(tests[k](value) for k in kinds):
                wanted = " or ".join({"None": "omitted", "float": "a number", "int": "an integer", "bool":
                                      "true/false", "str": "a string", "dict": "a dict"}[k] for k in kinds)
                raise ValueError(f"{flag(f.name)} must be {wanted}, got {value!r}")
        if not all(isinstance(k, str) for k in self.model_overrides):
            raise ValueError(f"model overrides must have string keys, got {list(self.model_overrides)!r}")

    def validate(self) -> "TrainConfig":
        self._check_types()

        def positive(name, integer=True):
            v = getattr(self, name)
            if (integer and not isinstance(v, int)) or v <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be a positive {'integer' if integer else 'number'}, got {v!r}")

        for name in ("epochs", "batch_size", "eval_batch_size"):
            positive(name)
        positive("lr", integer=False)
        if not (self.min_lr >= 0 and self.min_lr <= self.lr):
            raise ValueError(f"--min-lr must be in [0, lr={self.lr}], got {self.min_lr}")
        if not 0 <= self.warmup_epochs <= self.epochs:
            raise ValueError(f"--warmup-epochs must be in [0, epochs={self.epochs}], got {self.warmup_epochs}")
        if self.weight_decay < 0:
            raise ValueError(f"--weight-decay must be >= 0, got {self.weight_decay}")
        if self.clip_grad is not None and not self.clip_grad > 0:
            raise ValueError(f"--clip-grad must be positive (or omitted), got {self.clip_grad}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.mixup_alpha < 0 or self.cutmix_alpha < 0:
            raise ValueError("--mixup/--cutmix alpha must be >= 0")
        if not 0 <= self.mixup_off_epochs <= self.epochs:
            raise ValueError(f"--mixup-off-epochs must be in [0, epochs], got {self.mixup_off_epochs}")
        if self.crop_padding < 0:
            raise ValueError(f"--crop-padding must be >= 0, got {self.crop_padding}")
        if self.normalization not in NORMALISATIONS:
            raise ValueError(f"--normalization must be one of {', '.join(NORMALISATIONS)}, got {self.normalization!r}")
        if self.val_size < 0:
            raise ValueError(f"--val-size must be >= 0, got {self.val_size}")
        if self.train_limit is not None and self.train_limit <= 0:
            raise ValueError(f"--train-limit must be positive, got {self.train_limit}")
        if self.seed < 0:
            raise ValueError(f"--seed must be >= 0, got {self.seed}")
        if self.time_budget is not None and not (self.time_budget > 0 and math.isfinite(self.time_budget)):
            raise ValueError(f"--time-budget must be a positive number of minutes, got {self.time_budget!r}")
        if self.threads is not None and self.threads <= 0:
            raise ValueError(f"--threads must be positive, got {self.threads}")
        if not all(math.isfinite(v) for v in (self.lr, self.min_lr, self.weight_decay)):
            raise ValueError("learning rates and weight decay must be finite")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# Family defaults.  Upstream families follow upstream_models.md §5 (AdamW, wd 0.06,
# label smoothing 0.1, mixup 0.5, upstream normalisation); Dy-SViT follows its card
# (mixup 0.2 off for the last epochs, clip 0.5, its own normalisation constants).
FAMILY_DEFAULTS = {
    "spikformer": dict(lr=1e-3, weight_decay=0.06, label_smoothing=0.1, normalization="upstream"),
    "msvit": dict(lr=1e-3, weight_decay=0.06, label_smoothing=0.1, normalization="upstream"),
    "qkformer": dict(lr=1e-3, weight_decay=0.06, label_smoothing=0.1, normalization="upstream"),
    "dysvit": dict(lr=1e-3, weight_decay=0.05, label_smoothing=0.0, mixup_alpha=0.2, clip_grad=0.5,
                   normalization="dysvit", batch_size=128),
}


def family_of(model: str) -> str:
    """The family whose defaults `model` trains with ("" for none): a recipe preset's network's family."""
    network = models.network_of(model)
    for fam in FAMILY_DEFAULTS:
        if network.startswith(fam):
            return fam
    return ""


def recipe_of(model: str, overrides: dict) -> dict:
    """The settings registered with `model` (a speedrun preset's), less its time budget when `overrides`
    set --epochs without --time-budget (a number of epochs then sets the run's length)."""
    recipe = models.training_recipe(model)
    known = {f.name for f in dataclasses.fields(TrainConfig)} - {"model"}
    for key in recipe:
        if key not in known:
            raise ValueError(f"model {model!r} was registered with the recipe setting {key!r}, which is not a "
                             f"training option; use TrainConfig's field names: {', '.join(sorted(known))}")
    if overrides.get("epochs") is not None and overrides.get("time_budget") is None:
        recipe.pop("time_budget", None)
    return recipe


def config_for(model: str, **overrides) -> TrainConfig:
    """Family defaults for `model`, then its registered recipe, then `overrides` (None values are ignored)."""
    base = dict(FAMILY_DEFAULTS.get(family_of(model), {}))
    base.update(recipe_of(model, overrides))
    base.update({k: v for k, v in overrides.items() if v is not None})
    base["model"] = model
    if base.get("mixup_alpha", 0) > 0 and overrides.get("mixup_off_epochs") is None:
        epochs = base.get("epochs", TrainConfig.epochs)
        base["mixup_off_epochs"] = max(1, round(0.15 * epochs))  # the card: off for the last 15 of 100 epochs
    return TrainConfig(**base).validate()


def budget_note(given: dict) -> str | None:
    """The line that says what --epochs means next to --time-budget in the options `given` (None without both)."""
    if given.get("time_budget") is None or given.get("epochs") is None:
        return None
    return (f"note: --time-budget {given['time_budget']:g} sets the run's length; --epochs {given['epochs']} only "
            "sets the shares of the run that warm-up and mixup cooldown take (--warmup-epochs / --epochs and "
            "--mixup-off-epochs / --epochs)")


def recipe_note(model: str, given: dict) -> str | None:
    """The line that says --epochs replaces a speedrun preset's time budget (None when it does not):
    when `recipe_of` leaves out the budget the preset was registered with."""
    budget = models.training_recipe(model).get("time_budget")
    if budget is None or "time_budget" in recipe_of(model, given):
        return None
    return (f"note: --epochs {given['epochs']} replaces {model}'s {budget:g}-minute time budget; "
            f"the run trains {given['epochs']} epoch{'' if given['epochs'] == 1 else 's'}")


def _option(key: str, value) -> str:
    if key == "flip":
        return "--no-flip" if not value else "random flips"
    return f"{flag(key)} {value}"


# Options that may differ when a run is resumed: its length, and where this machine keeps things.
RESUME_CHANGEABLE = ("epochs", "time_budget", "threads", "data_dir", "out", "eval_batch_size")


def resumed_config(saved: dict, given: dict, where: str = "the checkpoint") -> tuple[TrainConfig, list[str]]:
    """The configuration of a run being resumed: `saved` (the checkpoint's), with the options `given` again.

    `given` holds the options typed on the command line (field -> value; "model_overrides" a
    dict of --set values).  An option in RESUME_CHANGEABLE replaces the saved value (a changed
    length is announced in the returned messages); any other option must agree with the saved
    run, else ValueError names it.  `threads` belongs to this process: the given value or None.  A run with
    a time budget keeps its --epochs (they set the shares of warm-up and mixup cooldown, not its length).
    """
    cfg = TrainConfig.from_dict(saved).validate()
    changes, messages = {"threads": given.get("threads")}, []
    for key, value in given.items():
        if key == "model_overrides":
            for name, v in value.items():
                if name not in cfg.model_overrides or cfg.model_overrides[name] != v:
                    old = (f"{name}={cfg.model_overrides[name]!r}" if name in cfg.model_overrides
                           else f"no --set {name}")
                    raise ValueError(f"--set {name}={v!r} contradicts the run being resumed ({old} in {where}); "
                                     "leave it out to continue that run, or start a new run with another --out")
            continue
        old = getattr(cfg, key)
        if value == old:
            continue
        if key not in RESUME_CHANGEABLE:
            raise ValueError(f"{_option(key, value)} contradicts the run being resumed ({_option(key, old)} in "
                             f"{where}); leave it out to continue that run, or start a new run with another --out")
        if key == "epochs" and (cfg.time_budget is not None or given.get("time_budget") is not None):
            raise ValueError(f"--epochs {value} cannot change a run planned by --time-budget ({where} holds "
                             f"--epochs {old}); change its length with --time-budget")
        changes[key] = value
        if key == "epochs":
            messages.append(f"{'extending' if value > old else 'shortening'} the run from {old} to {value} epochs")
        if key == "time_budget":
            messages.append(f"time budget {'' if old is None else f'changed from {old:g} '}to {value:g} minutes: "
                            "the rest of the run is planned again")
    return TrainConfig(**{**cfg.to_dict(), **changes}).validate(), messages
