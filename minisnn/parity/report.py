"""A readable parity report: minisnn vs a PyTorch oracle, layer by layer, with PASS/FAIL per criterion.

    report = compare_with_oracle(model, oracle, images)
    print(report.format())          # tables + the checks applied + PASS / FAIL
    report.ok                        # every check passed
    report.checks()                  # [Check(name, passed, text), ...]

Criteria (CRITERIA, explained in docs/parity.md):

* float64: every spike of every neuron layer identical; logits, parameter gradients and the input
  gradient equal to a relative 1e-10; in training mode the BN running statistics too.
* float32: at least 99.9 % of all spikes equal (a membrane potential within rounding of the
  threshold may fire on one side only), and the first layer with a differing spike has them all
  at rounding distance (1e-4) of the threshold.  When no spike differs, logits must agree to a
  relative 1e-4, and max-pool windows may pick another position only between candidates within
  1e-4 of each other; when in addition no max-pool choice differs, gradients must agree to 2e-3.
  Once a spike flips (or a pool gradient goes elsewhere), everything downstream legitimately
  changes, so those numbers are reported, not judged.

"Relative" is max|Δ| / max|reference|; for gradients the denominator is at least `grad_floor`
times the largest gradient anywhere (parameters and input): a gradient that is exactly 0 in real
arithmetic (a bias in front of a training-mode BN; everything before a training-mode BN whose
output is averaged over its own batch) holds only rounding noise on both sides.
"""
from __future__ import annotations

import dataclasses

import numpy as np

CRITERIA = {
    "float64": dict(spike_agreement=1.0, logits_rtol=1e-10, grad_rtol=1e-10, grad_floor=1e-4, buffer_rtol=1e-10,
                    judged_after_flips=True, rounding_margin=None),
    "float32": dict(spike_agreement=0.999, logits_rtol=1e-4, grad_rtol=2e-3, grad_floor=1e-3, buffer_rtol=1e-4,
                    judged_after_flips=False, rounding_margin=1e-4),
}


@dataclasses.dataclass
class LayerRow:
    """One neuron layer: its spikes and its input current, minisnn vs oracle."""
    name: str
    shape: tuple
    rate: float                      # minisnn firing rate
    differing: int                   # number of spikes that differ
    input_max_abs: float             # max |Δ| of the neuron's input
    input_mean_abs: float
    slope_max_abs: float | None = None   # Dy-SViT: max |Δ| of the per-token surrogate slopes
    flip_margin: float | None = None     # largest oracle |H − θ| where a spike difference starts

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def agreement(self) -> float:
        return 1.0 - self.differing / self.size if self.size else 1.0


@dataclasses.dataclass
class PoolRow:
    """One max-pool layer: windows whose maximum sits at a different position on the two sides."""
    name: str
    windows: int
    differing: int
    gap: float | None = None          # largest oracle-value gap between the two chosen candidates


@dataclasses.dataclass
class GradGroup:
    """Gradients of the parameters of one part of the network (e.g. `stage1.0.tssa`)."""
    name: str
    tensors: int
    max_grad: float                  # max |g| of the oracle's gradients in the group
    rel: float                       # max over tensors of max|Δ| / max(max|g_ref|, floor)
    worst: str                       # tensor with the largest `rel`


@dataclasses.dataclass
class Check:
    name: str
    passed: bool | None              # None: reported only, not judged
    text: str


@dataclasses.dataclass
class ParityReport:
    model: str
    dtype: str
    batch: int
    train: bool
    logits_shape: tuple
    logits_max_abs: float
    logits_mean_abs: float
    logits_rel: float
    layers: list = dataclasses.field(default_factory=list)
    grad_groups: list = dataclasses.field(default_factory=list)
    pools: list = dataclasses.field(default_factory=list)
    grads_checked: bool = False
    grad_scale: float = 0.0           # largest |gradient| of the oracle (parameters and input)
    input_grad_rel: float | None = None
    unused_params: list = dataclasses.field(default_factory=list)
    grad_presence_mismatch: list = dataclasses.field(default_factory=list)
    buffers_rel: float | None = None
    worst_buffer: str = ""
    unmatched_neurons: list = dataclasses.field(default_factory=list)
    reference: tuple | None = None    # (differing, total): PyTorch in this dtype vs PyTorch in float64
    header: list = dataclasses.field(default_factory=list)     # lines printed before the tables
    notes: list = dataclasses.field(default_factory=list)

    # ------------------------------------------------------------ summaries
    @property
    def spikes_total(self) -> int:
        return sum(r.size for r in self.layers)

    @property
    def spikes_differing(self) -> int:
        return sum(r.differing for r in self.layers)

    @property
    def agreement(self) -> float:
        total = self.spikes_total
        return 1.0 - self.spikes_differing / total if total else 1.0

    @property
    def min_agreement(self) -> float:
        return min((r.agreement for r in self.layers), default=1.0)

    @property
    def pool_differing(self) -> int:
        return sum(p.differing for p in self.pools)

    @property
    def grads_rel(self) -> float | None:
        return max((g.rel for g in self.grad_groups), default=0.0) if self.grads_checked else None

    @property
    def worst_grad(self) -> str:
        return max(self.grad_groups, key=lambda g: g.rel).worst if self.grad_groups else ""

    # ------------------------------------------------------------ verdict
    def checks(self) -> list[Check]:
        c = CRITERIA[self.dtype]
        out = []
        need = c["spike_agreement"]
        if need >= 1.0:
            text = f"spikes identical in every neuron layer: {self.spikes_differing} of {self.spikes_total} differ"
        else:
            text = (f"spike agreement {100 * self.agreement:.4f}% over all {len(self.layers)} neuron layers "
                    f"({self.spikes_differing} of {self.spikes_total} differ; required >= {100 * need:g}%)")
        out.append(Check("spikes", bool(self.layers) and self.agreement >= need and not self.unmatched_neurons,
                         text + ("" if self.layers else " (no neuron layer was compared)")
                         + (f"; neurons without a counterpart: {', '.join(self.unmatched_neurons)}"
                            if self.unmatched_neurons else "")))
        if c["rounding_margin"] is not None:
            out.append(self._first_divergence(c["rounding_margin"]))
        if c["rounding_margin"] is not None and self.spikes_differing == 0 and self.pool_differing:
            gap = max(p.gap for p in self.pools if p.differing)
            ok = gap <= c["rounding_margin"]
            why = "near-equal values ordered by rounding" if ok else "not rounding"
            out.append(Check("max-pool choices", ok, f"max-pool choices: {self.pool_differing} window(s) pick "
                             f"another position, between candidates {gap:.2g} apart ({'<=' if ok else '>'} "
                             f"{c['rounding_margin']:g}: {why})"))
        values_judged = c["judged_after_flips"] or self.spikes_differing == 0
        grads_judged = c["judged_after_flips"] or (self.spikes_differing == 0 and self.pool_differing == 0)

        def limit_check(name, value, limit, what, judged, why):
            if not judged:
                return Check(name, None, f"{what}: relative max|Δ| {value:.3g} (limit {limit:g} not applied: {why})")
            ok = bool(value <= limit)
            return Check(name, ok, f"{what}: relative max|Δ| {value:.3g} {'<=' if ok else '>'} {limit:g}")

        flipped = "a flipped spike changes everything downstream"
        routed = flipped if self.spikes_differing else "a max-pool gradient goes to another position"
        out.append(limit_check("logits", self.logits_rel, c["logits_rtol"], "logits", values_judged, flipped))
        if self.grads_checked:
            worst = f" (worst: {self.worst_grad})" if self.grad_groups else ""
            out.append(limit_check("gradients", self.grads_rel, c["grad_rtol"], "parameter gradients" + worst,
                                   grads_judged, routed))
            if self.input_grad_rel is not None:
                out.append(limit_check("input gradient", self.input_grad_rel, c["grad_rtol"], "input gradient",
                                       grads_judged, routed))
            if self.grad_presence_mismatch:
                out.append(Check("gradient presence", False, "parameters with a gradient on one side only: "
                                 + ", ".join(self.grad_presence_mismatch)))
        if self.reference is not None:
            d, n = self.reference
            out.append(Check("reference", None, f"reference: PyTorch {self.dtype} vs PyTorch float64 on this batch: "
                             f"{d} of {n} spikes differ ({100 * (1 - d / max(n, 1)):.4f}% agreement), the "
                             f"network's own sensitivity to {self.dtype} rounding"))
        if self.buffers_rel is not None:
            out.append(limit_check("running statistics", self.buffers_rel, c["buffer_rtol"],
                                   f"BN running statistics after the training-mode pass (worst: {self.worst_buffer})",
                                   values_judged, flipped))
        return out

    @property
    def first_divergence(self) -> LayerRow | None:
        """The first neuron layer (forward order) with a differing spike, or None."""
        return next((r for r in self.layers if r.differing), None)

    def _first_divergence(self, limit: float) -> Check:
        row = self.first_divergence
        if row is None:
            return Check("first divergence", True, "first divergence: no spike differs")
        ok = row.flip_margin is not None and row.flip_margin <= limit
        return Check("first divergence", ok,
                     f"first divergence at {row.name}: {row.differing} spike(s) differ, the oracle's membrane "
                     f"within {row.flip_margin:.2g} of the threshold ({'<=' if ok else '>'} {limit:g}: "
                     f"{'rounding' if ok else 'not explained by rounding'}); later layers inherit the change")

    @property
    def ok(self) -> bool:
        return all(ch.passed is not False for ch in self.checks())

    # ------------------------------------------------------------ text
    def format(self, max_layers: int | None = None) -> str:
        """The report as text: header, neuron table, logits, gradient table, checks, verdict."""
        mode = "training mode (BN batch statistics)" if self.train else "eval mode (BN running statistics)"
        lines = [f"parity: minisnn vs PyTorch oracle — {self.model}, {self.dtype}, {mode}, batch {self.batch}"]
        lines += self.header
        lines.append("")
        with_slopes = any(r.slope_max_abs is not None for r in self.layers)
        with_margin = any(r.flip_margin is not None for r in self.layers)
        head = (f"{'neuron layer (forward order)':36s} {'shape':>20s} {'rate':>6s} {'differ':>7s} {'agree':>9s} "
                f"{'in max|Δ|':>10s} {'in mean|Δ|':>10s}" + (f" {'slope max|Δ|':>12s}" if with_slopes else "")
                + (f" {'flip |H-θ|':>10s}" if with_margin else ""))
        lines.append(head)
        rows = self.layers if max_layers is None or len(self.layers) <= max_layers else self.layers[:max_layers]
        for r in rows:
            line = (f"{_clip(r.name, 36):36s} {_shape(r.shape):>20s} {r.rate:6.3f} {r.differing:7d} "
                    f"{100 * r.agreement:8.3f}% {r.input_max_abs:10.2e} {r.input_mean_abs:10.2e}")
            if with_slopes:
                line += f" {r.slope_max_abs:12.2e}" if r.slope_max_abs is not None else f" {'-':>12s}"
            if with_margin:
                line += f" {r.flip_margin:10.2e}" if r.flip_margin is not None else f" {'-':>10s}"
            lines.append(line)
        if len(rows) < len(self.layers):
            lines.append(f"... {len(self.layers) - len(rows)} more layers")
        rate = float(np.average([r.rate for r in self.layers], weights=[r.size for r in self.layers])) \
            if self.layers else 0.0
        lines.append(f"{'all ' + str(len(self.layers)) + ' neuron layers':36s} {self.spikes_total:>20d} {rate:6.3f} "
                     f"{self.spikes_differing:7d} {100 * self.agreement:8.3f}%")
        for p in self.pools:
            gap = f", candidates up to {p.gap:.2g} apart" if p.gap is not None else ""
            lines.append(f"max-pool {p.name}: {p.differing} of {p.windows} windows choose a different position{gap}")
        lines.append("")
        lines.append(f"logits {_shape(self.logits_shape)}: max|Δ| {self.logits_max_abs:.3g}, "
                     f"mean|Δ| {self.logits_mean_abs:.3g}, relative {self.logits_rel:.3g}")
        if self.grads_checked:
            lines.append("")
            lines.append(f"{'parameter gradients (d<v, logits>)':36s} {'tensors':>7s} {'max|g|':>10s} "
                         f"{'rel max|Δ|':>10s}  worst tensor")
            for g in self.grad_groups:
                lines.append(f"{_clip(g.name, 36):36s} {g.tensors:7d} {g.max_grad:10.2e} {g.rel:10.2e}  {g.worst}")
            if self.input_grad_rel is not None:
                lines.append(f"{'input images':36s} {1:7d} {'':10s} {self.input_grad_rel:10.2e}")
            if self.unused_params:
                lines.append(f"loaded but unused by the forward pass (no gradient on either side): "
                             f"{_names(self.unused_params)}")
        if self.buffers_rel is not None:
            lines.append(f"BN running statistics after the pass: relative max|Δ| {self.buffers_rel:.3g} "
                         f"(worst: {self.worst_buffer})")
        lines.extend(f"note: {n}" for n in self.notes)
        lines.append("")
        lines.append(f"checks ({self.dtype}, criteria in docs/parity.md):")
        for ch in self.checks():
            tag = {True: "PASS", False: "FAIL", None: "info"}[ch.passed]
            lines.append(f"  [{tag}] {ch.text}")
        lines.append("PASS" if self.ok else "FAIL")
        return "\n".join(lines)


def diff_stats(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(max |a − b|, mean |a − b|) in float64; (0, 0) for empty arrays."""
    d = np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))
    return (float(d.max()) if d.size else 0.0), (float(d.mean()) if d.size else 0.0)


def relative(a: np.ndarray, ref: np.ndarray, floor: float = 0.0) -> float:
    """max |a − ref| / max(max |ref|, floor) (0 when both are exactly equal)."""
    mx, _ = diff_stats(a, ref)
    if mx == 0.0:
        return 0.0
    scale = max(float(np.max(np.abs(ref))) if np.size(ref) else 0.0, floor)
    return mx / scale if scale > 0 else float("inf")


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1):]


def _shape(shape) -> str:
    return "(" + ",".join(str(int(s)) for s in shape) + ")"


def _names(names: list, shown: int = 6) -> str:
    more = f", ... ({len(names)} in all)" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
