"""`minisnn verify`: load a checkpoint into minisnn AND into a PyTorch oracle, compare them.

    report = verify_checkpoint("model_best.pth.tar", "msvit-cifar10")
    print(report.format())

The minisnn side reads the file without torch (`minisnn.load_checkpoint`); the oracle
side is the PyTorch + SpikingJelly re-implementation in `minisnn.parity.oracles`
(upstream attribute names, so the checkpoint's keys load unchanged).  Needs torch and,
for the upstream models, `spikingjelly==0.0.0.0.14`.
"""
from __future__ import annotations

import inspect

import numpy as np

from .compare import compare_with_oracle
from .report import ParityReport


def build_oracle(model_name: str, config: dict):
    """The PyTorch oracle for a registered model name, built from the minisnn model's `config`."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise ImportError("verify needs PyTorch: pip install torch==2.13.0 (and spikingjelly==0.0.0.0.14 --no-deps)") \
            from None
    from . import oracles

    family = model_name.split("-")[0]
    builders = {"spikformer": oracles.build_spikformer, "msvit": oracles.build_msvit,
                "qkformer": oracles.build_qkformer, "dysvit": oracles.build_dysvit}
    if family not in builders:
        raise ValueError(f"no PyTorch oracle for model {model_name!r} (families: {', '.join(builders)})")
    build = builders[family]
    params = inspect.signature(build).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        config = {k: v for k, v in config.items() if k in params}
    return build(**config)


def verify_checkpoint(path, model_name: str, batch_size: int = 2, dtype: str = "float64", seed: int = 0,
                      grads: bool = True) -> ParityReport:
    """Compare minisnn and the PyTorch oracle on `path`'s weights, on a seeded random batch."""
    import torch

    from .. import models
    from ..io import load_checkpoint

    state = load_checkpoint(path)
    if "head.weight" not in state:
        raise ValueError(f"{path} has no 'head.weight': not a classifier checkpoint of the seed models")
    num_classes = int(state["head.weight"].shape[0])
    model = models.create(model_name, num_classes=num_classes)
    result = model.load_state_dict(state)
    oracle = build_oracle(model_name, dict(model.config))
    own = oracle.state_dict()
    oracle.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items() if k in own}, strict=True)
    size = int(model.config.get("img_size", 32))
    images = np.random.default_rng(seed).standard_normal((batch_size, 3, size, size))
    report = compare_with_oracle(model, oracle, images, name=model_name, dtype=dtype, grads=grads, seed=seed)
    if result.get("ignored"):
        report.notes.append(f"checkpoint keys accepted and unused: {len(result['ignored'])} "
                            f"({', '.join(result['ignored'][:3])}{', ...' if len(result['ignored']) > 3 else ''})")
    return report
