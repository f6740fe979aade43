"""PyTorch oracles: independent re-implementations of every minisnn model, written from the specs.

The networks live in `minisnn.torch` (`minisnn.torch.upstream`, `minisnn.torch.dysvit`), the supported
PyTorch versions of minisnn's models; this package re-exports them under their parity names and adds
the calibration that makes a randomly initialised network fire.  Importing it imports torch and
SpikingJelly; `import minisnn` never does.  Parameter names equal minisnn's (the upstream keys), so
state_dicts move 1:1.

* `upstream.py`: Spikformer, MSViT, QKFormer with SpikingJelly's `MultiStepLIFNode`
  (`build_spikformer/build_msvit/build_qkformer(**model.config)`, `calibrate_bn`, `lif_firing_rates`).
* `dysvit.py`: the Dy-SViT reconstruction with a two-input STE spike (`DySViTOracle`, `build_dysvit`).
* `calibrate.py`: BN statistics and attention input levels set from data, so every neuron fires.
"""
from .dysvit import DySViTOracle, build_dysvit
from .upstream import build_msvit, build_qkformer, build_spikformer, calibrate_bn, lif_firing_rates

__all__ = ["DySViTOracle", "build_dysvit", "build_msvit", "build_qkformer", "build_spikformer", "calibrate_bn",
           "lif_firing_rates"]
