"""The report of `verify_neuron`: one row per input and dtype, then every check PASS / FAIL with its worst case.

    report = verify_neuron(module, "lif tau=2")
    print(report.format())
    report.ok              # every check passed (exit status 0 of `minisnn verify-neuron`, else 1)
    report.check("spikes") # one Check(name, passed, text); passed None: reported, not judged
"""
from __future__ import annotations

import dataclasses

from ..parity.report import Check


@dataclasses.dataclass
class CaseRow:
    """One input kind in one dtype: spikes that differ from the claim, and the module's gradients."""
    case: str
    dtype: str
    shape: tuple
    differing: int
    rate: float                     # the module's firing rate
    grad_rel: float | None          # float64: relative max|Δ| of dL/dx_seq (None: not judged or float32)
    nonfinite: int                  # NaN / inf entries of the module's dL/dx_seq
    zeros: int                      # entries 0 where the claim's gradient is not

    @property
    def size(self) -> int:
        n = 1
        for s in self.shape:
            n *= int(s)
        return n


@dataclasses.dataclass
class NeuronReport:
    """Everything `verify_neuron` found; `format()` is the readable report."""
    module: str
    claims: str
    header: list = dataclasses.field(default_factory=list)
    rows: list = dataclasses.field(default_factory=list)
    checks: list = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(ch.passed is not False for ch in self.checks)

    @property
    def failed(self) -> list[str]:
        """Names of the failed checks."""
        return [ch.name for ch in self.checks if ch.passed is False]

    def check(self, name: str) -> Check:
        """The check called `name` (KeyError if there is none)."""
        for ch in self.checks:
            if ch.name == name:
                return ch
        raise KeyError(f"no check {name!r}; checks: {', '.join(ch.name for ch in self.checks)}")

    def format(self) -> str:
        lines = [f"verify-neuron: {self.module}", f"claims: {self.claims}", *self.header, ""]
        lines.append(f"{'input':16s} {'dtype':8s} {'shape':>12s} {'rate':>6s} {'differ':>7s} {'grad rel|Δ|':>11s} "
                     f"{'NaN/inf':>8s} {'zero':>5s}")
        for r in self.rows:
            rel = f"{r.grad_rel:11.2e}" if r.grad_rel is not None else f"{'-':>11s}"
            shape = "(" + ",".join(str(int(s)) for s in r.shape) + ")"
            lines.append(f"{r.case:16s} {r.dtype:8s} {shape:>12s} {r.rate:6.3f} {r.differing:7d} {rel} "
                         f"{r.nonfinite:8d} {r.zeros:5d}")
        lines.append("")
        lines.append("checks (worst case named):")
        width = max((len(ch.name) for ch in self.checks), default=0)
        for ch in self.checks:
            tag = {True: "PASS", False: "FAIL", None: "info"}[ch.passed]
            lines.append(f"  [{tag}] {ch.name:{width}s}  {ch.text}")
        lines.append("PASS" if self.ok else "FAIL: " + ", ".join(self.failed))
        return "\n".join(lines)


__all__ = ["CaseRow", "Check", "NeuronReport"]
