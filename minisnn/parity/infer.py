"""Which model, with which configuration, a checkpoint belongs to: read from its keys and shapes.

    family = detect_family(state)                       # "spikformer" | "msvit" | "qkformer" | "dysvit" | None
    resolved = resolve_config(state, args=ckpt_args, overrides={"T": 2})
    resolved.family, resolved.config, resolved.source    # source: where each value came from

Shapes give the widths, depth, class count, input channels and MLP ratio (and, for Dy-SViT,
patch size, image size, hypernetwork width, dynamic slope and stability).  They cannot give
the number of heads or T: no weight depends on them.  Those come, in this order, from
`overrides` (`--set KEY=VALUE`), the training script's saved `args` (T as `time_step`/`T`;
Spikformer's `num_heads`; MSViT/QKFormer ignore that argument upstream and use 8 heads),
or a registered preset whose shape-derived values all equal the checkpoint's (the
upstream `*-cifar10` presets for real upstream checkpoints).  If none applies,
`resolve_config` raises a one-line ValueError that names the missing keys.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import re

from .. import models
from ..models.blocks import guess_family
from ..models.dysvit import DySViT
from ..models.registry import _entry

FAMILIES = ("spikformer", "msvit", "qkformer", "dysvit")
# Values that no weight shape reveals: required unless a preset, the checkpoint's args or --set gives them.
NOT_IN_SHAPES = {"spikformer": ("num_heads", "T"), "msvit": ("num_heads", "T"), "qkformer": ("num_heads", "T"),
                 "dysvit": ("heads",)}
# Training-script argument names that carry T.
T_ARG_NAMES = ("T", "time_step", "time_steps", "timestep", "timesteps")


@dataclasses.dataclass
class Resolved:
    family: str
    config: dict                 # constructor keyword arguments
    source: dict                 # key -> "shapes" | "preset NAME" | "checkpoint args" | "--set" | "default"
    preset: str | None = None    # registered name whose configuration this is exactly, if any

    @property
    def label(self) -> str:
        return self.preset or f"{self.family} (configuration from the checkpoint)"


def model_class(family: str):
    """The minisnn class of a family."""
    return {"spikformer": models.Spikformer, "msvit": models.MSViT, "qkformer": models.QKFormer,
            "dysvit": DySViT}[family]


def detect_family(state) -> str | None:
    """The model family a state_dict's keys belong to (None if none of the four)."""
    family = guess_family(state)
    if family is not None:
        return family
    if ("pos_embed" in state and ("patch_embed.weight" in state or "stem.conv1.weight" in state)
            and any(k.startswith("blocks.") for k in state)):
        return "dysvit"
    return None


def _count(state, pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in state if (m := rx.match(k))})


def _ratio(hidden: int, dim: int):
    r = hidden / dim
    return int(r) if r == int(r) else r


def _shape(state, key: str, family: str) -> tuple:
    if key not in state:
        raise ValueError(f"the checkpoint looks like {family} but has no {key!r}; it may be truncated or from "
                         f"another model")
    return tuple(state[key].shape)


def shape_config(state, family: str) -> dict:
    """Constructor arguments that follow from the weight shapes of a `family` state_dict."""
    head = _shape(state, "head.weight", family)
    cfg = {"num_classes": head[0]}
    if family == "spikformer":
        cfg.update(embed_dim=head[1], in_channels=_shape(state, "patch_embed.proj_conv.weight", family)[1],
                   depth=_count(state, r"block\.(\d+)\."))
        if cfg["depth"]:
            cfg["mlp_ratio"] = _ratio(_shape(state, "block.0.mlp.fc1_linear.weight", family)[0], head[1])
    elif family in ("msvit", "qkformer"):
        hidden, d1 = _shape(state, "stage1.0.mlp.mlp1_conv.weight", family)[:2]
        cfg.update(embed_dim=head[1], in_channels=_shape(state, "patch_embed1.proj_conv.weight", family)[1],
                   depth=2 + _count(state, r"stage3\.(\d+)\."), mlp_ratio=_ratio(hidden, d1))
    elif family == "dysvit":
        conv_stem = "stem.conv1.weight" in state         # two 3×3/2 convolutions: a patch of 4
        patch_size = 4 if conv_stem else _shape(state, "patch_embed.weight", family)[-1]
        tokens = _shape(state, "pos_embed", family)[1]
        side = math.isqrt(tokens)
        if side * side != tokens:
            raise ValueError(f"Dy-SViT pos_embed has {tokens} tokens, not a square grid")
        hyper = [k for k in state if k.endswith(".hyper.fc1.weight")]
        cfg.update(dim=head[1], depth=_count(state, r"blocks\.(\d+)\."), patch_size=patch_size,
                   img_size=side * patch_size, dynamic_slope=bool(hyper),
                   stability=any(k.startswith("blocks.0.norm1.") for k in state), stem="conv" if conv_stem else "patch")
        if hyper:
            cfg["hypernet_hidden"] = tuple(state[hyper[0]].shape)[0]
        if cfg["depth"]:
            cfg["mlp_ratio"] = _ratio(_shape(state, "blocks.0.mlp.fc1.weight", family)[0], head[1])
    else:
        raise ValueError(f"unknown model family {family!r}; expected one of {FAMILIES}")
    return cfg


def _factory_config(factory) -> tuple[object, dict]:
    """(class, full constructor configuration) of a registry factory (a class or a functools.partial)."""
    kwargs = {}
    while isinstance(factory, functools.partial):
        kwargs = {**factory.keywords, **kwargs}
        factory = factory.func
    # the surrogate family is how gradients are taken, not part of the architecture a state_dict shows
    defaults = {k: p.default for k, p in inspect.signature(factory).parameters.items()
                if p.default is not inspect.Parameter.empty and k not in ("dtype", "surrogate")}
    return factory, {**defaults, **kwargs}


def registered_config(name: str) -> tuple[str, dict]:
    """(family, constructor configuration) of a registered model name."""
    cls, cfg = _factory_config(_entry(name).factory)
    for family in FAMILIES:
        if cls is model_class(family):
            return family, cfg
    raise ValueError(f"model {name!r} is not one of the families with a PyTorch oracle ({', '.join(FAMILIES)})")


def matching_presets(family: str, shapes: dict) -> dict[str, dict]:
    """Registered models of `family` whose configuration agrees with every shape-derived value."""
    out = {}
    for name in models.names():
        if models.network_of(name) != name:      # a recipe preset: the same network as the one it names
            continue
        try:
            fam, cfg = registered_config(name)
        except ValueError:
            continue
        if fam == family and all(k in cfg and cfg[k] == v for k, v in shapes.items()):
            out[name] = cfg
    return out


# The largest values taken from a checkpoint's saved arguments: the file is not trusted to size the
# model's activations (its weights cannot say how large T or the image is); --set overrides them.
ARG_LIMITS = {"T": 64, "num_heads": 1024, "img_size": 512}


def args_config(family: str, args: dict | None, overridden=()) -> dict:
    """Values of T / heads / image size found in a training script's saved argparse arguments.

    A value outside 1..ARG_LIMITS raises ValueError (the file asks for more than verify will build),
    unless its key is `overridden` (given with --set)."""
    out = {k: v for k, v in _args_values(family, args).items() if k not in overridden}
    for k, v in out.items():
        if not 1 <= v <= ARG_LIMITS[k]:
            raise ValueError(f"the checkpoint's saved arguments give {k}={v}, outside 1..{ARG_LIMITS[k]}: "
                             f"refusing to size the model from them; pass --set {k}=VALUE")
    return out


def _args_values(family: str, args: dict | None) -> dict:
    out = {}
    if not args:
        return out
    for name in T_ARG_NAMES:
        if family != "dysvit" and isinstance(args.get(name), int) and not isinstance(args.get(name), bool):
            out["T"] = args[name]
            break
    if family == "spikformer" and isinstance(args.get("num_heads"), int):
        out["num_heads"] = args["num_heads"]
    if family != "dysvit" and isinstance(args.get("img_size"), int):
        out["img_size"] = args["img_size"]
    return out


def resolve_config(state, args: dict | None = None, overrides: dict | None = None,
                   family: str | None = None) -> Resolved:
    """Family and full constructor configuration for `state` (see the module doc for the order)."""
    overrides = dict(overrides or {})
    detected = detect_family(state)
    family = family or detected
    if family is None:
        sample = ", ".join(list(state)[:4])
        raise ValueError(f"cannot tell which model this checkpoint is for (keys like {sample}); "
                         f"none of {', '.join(FAMILIES)} matches; pass --model NAME")
    shapes = shape_config(state, family)
    _, defaults = _factory_config(model_class(family))
    config, source = dict(defaults), {k: "default" for k in defaults}
    config.update(shapes)
    source.update({k: "shapes" for k in shapes})

    presets = matching_presets(family, shapes)
    free = [k for k in defaults if k not in shapes]
    distinct = {tuple(cfg.get(k) for k in free) for cfg in presets.values()}
    preset = next(iter(presets)) if len(distinct) == 1 else None
    if preset is not None:
        for k in free:
            config[k], source[k] = presets[preset][k], f"preset {preset}"
    from_args = args_config(family, args, overridden=overrides)
    for k, v in from_args.items():
        config[k], source[k] = v, "checkpoint args"
    for k, v in overrides.items():
        if k not in defaults:
            raise ValueError(f"--set {k}: {model_class(family).__name__} has no argument {k!r}; "
                             f"it accepts: {', '.join(defaults)}")
        config[k], source[k] = v, "--set"
    missing = [k for k in NOT_IN_SHAPES[family] if source[k] == "default"]
    if missing:
        known = ", ".join(f"{k}={shapes[k]}" for k in shapes)
        raise ValueError(f"the checkpoint fixes {known}, but not {' and '.join(missing)}, and no registered model "
                         f"has those shapes: pass {' '.join(f'--set {k}=...' for k in missing)} "
                         f"(or --model NAME for a registered model)")
    exact = preset if preset is not None and all(config[k] == presets[preset][k] for k in defaults
                                                 if k in presets[preset]) else None
    return Resolved(family, config, source, exact)
