"""Parity with PyTorch: run a minisnn model beside its PyTorch oracle and report every difference.

Needs torch (and SpikingJelly for the upstream models); `import minisnn` never imports them.
"""
from .report import ParityReport, LayerRow, CRITERIA
from .compare import compare_with_oracle
from .verify import build_oracle, verify_checkpoint

__all__ = ["ParityReport", "LayerRow", "CRITERIA", "compare_with_oracle", "build_oracle", "verify_checkpoint"]
