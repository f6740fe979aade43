"""`minisnn verify`: load a checkpoint into minisnn AND into a PyTorch oracle, compare them.

    report = verify_checkpoint("model_best.pth.tar")                  # model inferred from the keys
    report = verify_checkpoint("ckpt.pth", "msvit-cifar10")           # a registered model, as is
    report = verify_checkpoint("ckpt.pth", overrides={"num_heads": 2, "T": 2})
    report = verify_checkpoint("runs/dysvit-tiny/best.npz")          # minisnn's own training checkpoints
    print(report.format())

The minisnn side reads the file without torch (`minisnn.load_checkpoint`); the oracle side
is the PyTorch (+ SpikingJelly) re-implementation in `minisnn.parity.oracles`, given the
same arrays.  Without `model_name`, the family and configuration come from the keys and
shapes (`infer.resolve_config`); with it, the registered model is built as registered
(plus `overrides`) and a checkpoint that does not fit fails with the state_dict error.
Both networks see the same batch: the MSViT/QKFormer stage-3 neuron runs over the merged
T·B axis upstream, so outputs depend on the whole batch.

A minisnn training checkpoint or exported weights (`last.npz`, `best.npz`, `minisnn export`)
name their model and --set values: that model is built with them (`train.restore`), and its
weights and normalisation are what both sides get.  A batch on which no neuron fires
compares nothing (silence equals silence), so the report then fails (`CheckpointReport`).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..data.augment import normalize
from ..data.sample import load_sample
from ..io import detect_format, load_checkpoint
from ..io.torch_zip import TorchZipReader
from ..nn.module import StateDictError
from . import _torch
from ._torch import TORCH_HINT, require_torch  # noqa: F401  (TORCH_HINT: also importable from here)
from .compare import DTYPES, compare_with_oracle, oracle_spikes, spike_difference
from .infer import Resolved, detect_family, model_class, registered_config, resolve_config, shape_config
from ..train.restore import build_trained
from ..train.state import is_state_file, load_trainer_checkpoint
from .report import Check, ParityReport

SILENT = ("no neuron fired on this batch (every firing rate is 0), so the comparison checked nothing: verify a "
          "trained checkpoint, or pass images that make the neurons fire (calibrated inputs: "
          "minisnn.parity.oracles.calibrate)")


@dataclasses.dataclass
class CheckpointReport(ParityReport):
    """The report of `verify_checkpoint`: a ParityReport that also fails when no neuron fired."""

    def checks(self) -> list[Check]:
        out = super().checks()
        if self.layers and not any(r.rate > 0 for r in self.layers):
            out.append(Check("firing", False, SILENT))
        return out


def build_oracle(model_name_or_family: str, config: dict):
    """The PyTorch oracle for a registered model name or a family, built from a minisnn `config`."""
    family = model_name_or_family.split("-")[0]
    require_torch(family)
    oracles = _torch.oracles()
    builders = {"spikformer": oracles.build_spikformer, "msvit": oracles.build_msvit,
                "qkformer": oracles.build_qkformer, "dysvit": oracles.build_dysvit}
    if family not in builders:
        raise ValueError(f"no PyTorch oracle for model {model_name_or_family!r} (families: {', '.join(builders)})")
    return builders[family](**dict(config))


def checkpoint_args(path) -> dict:
    """The fields of the `args` namespace a training script saved next to the weights ({} if none)."""
    if detect_format(path) != "torch-zip":
        return {}
    with TorchZipReader(path) as reader:
        tree = reader.load()
    args = tree.get("args") if isinstance(tree, dict) else None
    fields = getattr(args, "fields", args)
    return dict(fields) if isinstance(fields, dict) else {}


def sample_images(batch_size: int, img_size: int, in_channels: int, seed: int, normalization: str) -> tuple:
    """(images float64 [B, C, S, S], description): CIFAR-10 sample images when they fit, else N(0, 1) noise."""
    rng = np.random.default_rng(seed)
    if in_channels == 3 and img_size <= 32:
        x, _ = load_sample()["val"]
        idx = rng.choice(len(x), size=batch_size, replace=False)
        off = (32 - img_size) // 2
        crop = np.ascontiguousarray(x[idx, :, off:off + img_size, off:off + img_size])
        where = f"center {img_size}x{img_size} crops of " if img_size < 32 else ""
        return (normalize(crop, normalization).astype(np.float64),
                f"{where}{batch_size} CIFAR-10 sample images ({normalization} normalisation, seed {seed})")
    return (rng.standard_normal((batch_size, in_channels, img_size, img_size)),
            f"{batch_size} N(0, 1) noise images (seed {seed})")


def _resolve(state, path, model_name, overrides) -> Resolved:
    if model_name is None:
        return resolve_config(state, args=checkpoint_args(path), overrides=overrides)
    family, cfg = registered_config(model_name)
    unknown = [k for k in overrides if k not in cfg]
    if unknown:
        raise ValueError(f"--set {unknown[0]}: model {model_name!r} has no argument {unknown[0]!r}; "
                         f"it accepts: {', '.join(cfg)}")
    source = {k: f"--model {model_name}" for k in cfg}
    source.update({k: "--set" for k in overrides})
    return Resolved(family, {**cfg, **overrides}, source, model_name if not overrides else None)


def _load_into(model, state, resolved: Resolved, model_name):
    try:
        return model.load_state_dict(state)
    except StateDictError as exc:
        hint = ""
        family = detect_family(state)
        if family is not None:
            try:
                shapes = shape_config(state, family)
                hint = (f" [the checkpoint's keys are those of {family} with "
                        f"{', '.join(f'{k}={v}' for k, v in shapes.items())}"
                        + ("; omit --model to infer the configuration" if model_name else "") + "]")
            except ValueError:
                pass
        raise StateDictError(f"{exc}{hint}") from None


def verify_checkpoint(path, model_name: str | None = None, overrides: dict | None = None, batch_size: int = 2,
                      dtype: str = "float64", seed: int = 0, grads: bool = True, train: bool = False,
                      images: np.ndarray | None = None) -> ParityReport:
    """Compare minisnn and the PyTorch oracle on `path`'s weights; returns the ParityReport.

    model_name: a registered model (`minisnn models`) to use as is; None infers it from the checkpoint.
    overrides: constructor values (e.g. {"T": 2, "num_heads": 2}), as `--set KEY=VALUE`.
    images: the batch to use (default: `batch_size` CIFAR-10 sample images, or noise when they do not fit).
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if images is not None:
        images = np.asarray(images)
        if images.ndim != 4:
            raise ValueError(f"images must have shape [B, C, H, W], got {images.shape}")
    if is_state_file(path):
        model, resolved, state, norm = _trained(path, model_name, dict(overrides or {}))
        return _compare(model, resolved, state, path, f"checkpoint: {path}: minisnn training checkpoint of "
                        f"{resolved.label} ({len(state)} tensors)", {}, images, batch_size, norm, dtype, seed,
                        grads, train)
    state = load_checkpoint(path)
    overrides = dict(overrides or {})
    if images is not None:
        family = registered_config(model_name)[0] if model_name else detect_family(state)
        if family != "dysvit":                  # the upstream models take any size that is a multiple of 4
            overrides.setdefault("img_size", int(images.shape[-1]))
    resolved = _resolve(state, path, model_name, overrides)
    require_torch(resolved.family)
    model = model_class(resolved.family)(**resolved.config)
    result = _load_into(model, state, resolved, model_name)
    norm = "dysvit" if resolved.family == "dysvit" else "upstream"
    return _compare(model, resolved, state, path, f"checkpoint: {path}: {state.summary()}", result, images,
                    batch_size, norm, dtype, seed, grads, train)


def _trained(path, model_name, overrides):
    """(model with the weights, Resolved, its state_dict, normalisation) for a minisnn training checkpoint."""
    st = load_trainer_checkpoint(path)
    if model_name is not None and model_name != st["model_name"]:
        raise ValueError(f"{path} holds a {st['model_name']} model (--model {model_name} does not match); "
                         "leave --model out: the file names its model")
    if overrides:
        raise ValueError(f"{path} records its model's --set values; leave --set out")
    model = build_trained(st, path)
    family = st["model_name"].split("-")[0]
    require_torch(family)
    config = dict(model.config)
    resolved = Resolved(family, config, {k: "checkpoint" for k in config}, st["model_name"])
    return model, resolved, dict(model.state_dict()), st["normalization"]


def _compare(model, resolved: Resolved, state, path, loaded: str, result: dict, images, batch_size, norm, dtype,
             seed, grads, train) -> CheckpointReport:
    """Load `state` into the oracle, run both on the batch, and describe where everything came from."""
    torch = _torch.torch()
    oracle = build_oracle(resolved.family, resolved.config)
    own = oracle.state_dict()
    oracle.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items() if k in own}, strict=True)

    cfg = resolved.config
    if images is None:
        size = int(cfg.get("img_size", 32))
        images, what = sample_images(batch_size, size, int(cfg.get("in_channels", 3)), seed, norm)
    else:
        what = f"{len(images)} given images"
    reference = None
    if dtype != "float64" and not train:        # how far PyTorch itself moves from float64 on this batch
        oracle64 = build_oracle(resolved.family, resolved.config).to(torch.float64).eval()
        oracle64.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items() if k in own})
        reference = oracle_spikes(oracle64, images)
        del oracle64
    report = compare_with_oracle(model, oracle, images, name=resolved.label, dtype=dtype, grads=grads,
                                 train=train, seed=seed)
    report = CheckpointReport(**{f.name: getattr(report, f.name) for f in dataclasses.fields(report)})
    if reference is not None:
        report.reference = spike_difference(oracle_spikes(oracle.eval(), images), reference)
    report.header.append(loaded)
    report.header.append("configuration: " + ", ".join(
        f"{k}={v!r} ({resolved.source[k]})" for k, v in cfg.items() if resolved.source.get(k) != "default"))
    defaults = [f"{k}={v!r}" for k, v in cfg.items() if resolved.source.get(k) == "default"]
    if defaults:
        report.header.append("defaults: " + ", ".join(defaults))
    report.header.append(f"input: {what}")
    if result.get("ignored"):
        report.notes.append(f"checkpoint keys accepted and not used: {', '.join(result['ignored'])}")
    if resolved.family in ("msvit", "qkformer") and cfg.get("stage3_proj_lif", "merged") == "merged" \
            and len(images) > 1 and cfg.get("depth", 4) > 2:
        report.notes.append("stage-3 proj_lif runs over the merged T·B axis (upstream quirk): outputs depend on "
                            "the whole batch; both sides saw the same batch")
    return report
