"""PyTorch on demand: `minisnn.parity` imports without torch, and `import minisnn` never loads it.

The code of this package that needs torch, or the oracles (which import torch and SpikingJelly),
gets them from here at the point of use, after `require_torch` has raised a one-line hint if
they are missing.  These are the package's only function-local imports of torch.
"""
from __future__ import annotations

import importlib.util

TORCH_HINT = "pip install torch==2.13.0 and, for Spikformer/MSViT/QKFormer, spikingjelly==0.0.0.0.14 --no-deps"


def require_torch(family: str = "") -> None:
    """Raise a one-line ImportError when torch (or SpikingJelly for the upstream oracles) is missing."""
    if importlib.util.find_spec("torch") is None:
        raise ImportError(f"verify compares against PyTorch, which is not installed: {TORCH_HINT}")
    if family != "dysvit" and importlib.util.find_spec("spikingjelly") is None:
        raise ImportError(f"the {family or 'upstream'} oracle needs SpikingJelly, which is not installed: "
                          f"{TORCH_HINT}")


def torch():
    """The `torch` module."""
    import torch  # optional dependency: loaded only when a comparison runs

    return torch


def oracles():
    """The `minisnn.parity.oracles` package (it imports torch and SpikingJelly)."""
    from . import oracles  # optional dependencies (torch, SpikingJelly): loaded only when an oracle is built

    return oracles
