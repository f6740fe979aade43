"""Parity with PyTorch: run a minisnn model beside its PyTorch oracle and report every difference.

    from minisnn.parity import verify_checkpoint, compare_with_oracle
    print(verify_checkpoint("model_best.pth.tar").format())      # or: minisnn verify model_best.pth.tar

* `compare.py`: `compare_with_oracle(model, oracle, images, ...)`: spikes and input currents of every
  neuron, logits, parameter and input gradients (and BN running statistics in training mode).
* `report.py`: `ParityReport` with `.format()`, `.checks()`, `.ok`; the pass criteria `CRITERIA`.
* `infer.py`: which model and configuration a checkpoint's keys and shapes belong to.
* `verify.py`: `verify_checkpoint(path, model_name=None, overrides=None, ...)`, used by `minisnn verify`.
* `oracles/`: the PyTorch (+ SpikingJelly) re-implementations, defined in `minisnn.torch` (the supported
  PyTorch versions of the models) and re-exported here, and their BN calibration.

Needs torch (and SpikingJelly for the upstream models) to run a comparison; importing this
package does not import them (`import minisnn` never does).
"""
from .compare import compare_with_oracle, grad_group
from .infer import Resolved, detect_family, resolve_config, shape_config
from .report import CRITERIA, Check, GradGroup, LayerRow, ParityReport
from .verify import build_oracle, checkpoint_args, require_torch, verify_checkpoint

__all__ = ["CRITERIA", "Check", "GradGroup", "LayerRow", "ParityReport", "Resolved", "build_oracle",
           "checkpoint_args", "compare_with_oracle", "detect_family", "grad_group", "require_torch",
           "resolve_config", "shape_config", "verify_checkpoint"]
