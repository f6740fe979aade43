"""PyTorch oracles: independent re-implementations of every minisnn model, written from the specs.

Importing this package imports torch (and SpikingJelly for the upstream models); `import minisnn`
never does.  Parameter names equal minisnn's (the upstream keys), so state_dicts move 1:1.

* `upstream.py`: Spikformer, MSViT, QKFormer with SpikingJelly's `MultiStepLIFNode`
  (`build_spikformer/build_msvit/build_qkformer(**model.config)`, `calibrate_bn`, `lif_firing_rates`).
* `dysvit.py`: the Dy-SViT reconstruction with a two-input STE spike (`DySViTOracle`, `build_dysvit`).
"""
from .dysvit import DySViTOracle, build_dysvit
from .upstream import build_msvit, build_qkformer, build_spikformer, calibrate_bn, lif_firing_rates

__all__ = ["DySViTOracle", "build_dysvit", "build_msvit", "build_qkformer", "build_spikformer", "calibrate_bn",
           "lif_firing_rates"]
