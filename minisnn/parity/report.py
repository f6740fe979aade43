"""A readable parity report: minisnn vs a PyTorch oracle, layer by layer."""
from __future__ import annotations

import dataclasses

import numpy as np

# Pass criteria (see docs/parity.md): float64 must agree exactly on spikes and to 1e-10 on
# values; float32 may flip spikes whose membrane sits within rounding of the threshold.
CRITERIA = {
    "float64": dict(spike_agreement=1.0, logits_atol=1e-10, grad_rtol=1e-8),
    "float32": dict(spike_agreement=0.999, logits_atol=1e-3, grad_rtol=None),
}


@dataclasses.dataclass
class LayerRow:
    name: str
    shape: tuple
    agreement: float          # fraction of equal spikes
    max_abs: float
    mean_abs: float
    rate: float               # minisnn firing rate of this layer


@dataclasses.dataclass
class ParityReport:
    model: str
    dtype: str
    batch: int
    logits_max_abs: float
    logits_mean_abs: float
    layers: list
    grads_max_rel: float | None = None
    worst_grad: str = ""
    notes: list = dataclasses.field(default_factory=list)

    @property
    def min_agreement(self) -> float:
        return min((r.agreement for r in self.layers), default=1.0)

    @property
    def ok(self) -> bool:
        c = CRITERIA[self.dtype]
        if self.min_agreement < c["spike_agreement"] or not self.logits_max_abs <= c["logits_atol"]:
            return False
        if c["grad_rtol"] is not None and self.grads_max_rel is not None and not self.grads_max_rel <= c["grad_rtol"]:
            return False
        return True

    def format(self) -> str:
        c = CRITERIA[self.dtype]
        lines = [
            f"parity report: minisnn vs PyTorch oracle, model {self.model}, {self.dtype}, batch {self.batch}",
            f"{'layer':44s} {'shape':>22s} {'rate':>6s} {'agree':>9s} {'max|Δ|':>10s} {'mean|Δ|':>10s}",
        ]
        for r in self.layers:
            lines.append(f"{r.name[:44]:44s} {str(r.shape)[:22]:>22s} {r.rate:6.3f} {100 * r.agreement:8.4f}% "
                         f"{r.max_abs:10.3g} {r.mean_abs:10.3g}")
        lines.append(f"logits: max|Δ| {self.logits_max_abs:.3g}, mean|Δ| {self.logits_mean_abs:.3g} "
                     f"(limit {c['logits_atol']:g})")
        lines.append(f"spikes: lowest agreement {100 * self.min_agreement:.4f}% over {len(self.layers)} neuron layers "
                     f"(required {100 * c['spike_agreement']:g}%)")
        if self.grads_max_rel is not None:
            lim = f"limit {c['grad_rtol']:g}" if c["grad_rtol"] is not None else "reported only"
            lines.append(f"parameter gradients: max relative |Δ| {self.grads_max_rel:.3g} at {self.worst_grad} ({lim})")
        lines.extend(f"note: {n}" for n in self.notes)
        lines.append("PASS" if self.ok else "FAIL")
        return "\n".join(lines)


def diff_stats(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    d = np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))
    return (float(d.max()) if d.size else 0.0), (float(d.mean()) if d.size else 0.0)
