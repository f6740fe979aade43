"""Analytic FLOP counts per layer and the papers' theoretical energy estimate.

FLOPs here are multiply-accumulates (MACs) per image and per time step, from shapes alone:

    conv:   out_pixels · C_out · C_in · k_h · k_w        linear: tokens · C_out · C_in
    SSA:    two matmuls per head, in the order the upstream code multiplies:
            Spikformer (Q Kᵀ) V: 2 · N² · C;  MSViT/QKFormer Q (Kᵀ V): 2 · N · C · d
    token attention (MSViT/QKFormer): head column sums Σ_j Q (and Σ_j P) and the mask A ⊙ K, N · C each

Energy (Spikformer/QKFormer/MSViT papers, 45 nm figures): a layer whose input is spikes costs
accumulates only, a layer on real values costs multiply-accumulates:

    SOPs(l) = rate(l) · T · FLOPs(l)          rate(l) = mean input of layer l (measured)
    E = E_MAC · FLOPs(dense layers) + E_AC · Σ_l SOPs(l),   E_MAC = 4.6 pJ, E_AC = 0.9 pJ

The dense layers are the first conv (real-valued image; the image is the same at every step,
so it is counted once, as in the papers) and the classifier head (it reads averaged spike
counts, once per image).  `LayerFlops.source` names what gives a layer's rate: the layer's own
path (its measured input mean, see FiringRateMonitor.input_rates) or, for attention products,
the neuron whose spikes drive the accumulations.
"""
from __future__ import annotations

import dataclasses

from .blocks import HierarchicalSpikingTransformer, SpikingSelfAttention
from .spikformer import Spikformer

E_MAC_PJ = 4.6
E_AC_PJ = 0.9
DENSE = "dense"


@dataclasses.dataclass(frozen=True)
class LayerFlops:
    """One synaptic layer: `flops` MACs per image and time step; its rate comes from `source`."""
    name: str
    kind: str          # "conv", "linear", "matmul", "head_sum", "mask"
    flops: int
    source: str        # DENSE (real-valued input, MACs once per image), a layer path or a neuron path


def weighted_flops(name: str, layer, positions: int) -> LayerFlops:
    """A conv/linear layer producing `positions` output pixels/tokens; its own input gives the rate."""
    kind = "linear" if layer.weight.ndim == 2 else "conv"
    return LayerFlops(name, kind, int(positions) * int(layer.weight.size), name)


def dense_flops(name: str, layer, positions: int) -> LayerFlops:
    """A conv/linear layer on real values (not spikes): MACs, counted once per image."""
    return dataclasses.replace(weighted_flops(name, layer, positions), source=DENSE)


@dataclasses.dataclass(frozen=True)
class QuadraticBlockNames:
    """Attribute names of a block with linear Q/K/V, (Q Kᵀ) V attention (`block.attn`) and an MLP (`block.mlp`)."""
    qkv: tuple[str, str, str]     # the Q, K, V layers
    q_spikes: str                 # the neuron whose spikes drive Q Kᵀ
    v_spikes: str                 # the neuron whose spikes drive (Q Kᵀ) V
    proj: str                     # the output projection
    mlp: tuple[str, str]          # the two MLP layers


SPIKFORMER_BLOCK = QuadraticBlockNames(("q_linear", "k_linear", "v_linear"), "q_lif", "v_lif", "proj_linear",
                                       ("fc1_linear", "fc2_linear"))


def quadratic_attention_block(prefix: str, blk, N: int, C: int, names: QuadraticBlockNames) -> list[LayerFlops]:
    """Block `prefix` on N tokens of C channels: Q/K/V, (Q Kᵀ) V at 2 · N² · C, projection, MLP."""
    attn = f"{prefix}.attn"
    rows = [weighted_flops(f"{attn}.{n}", getattr(blk.attn, n), N) for n in names.qkv]
    rows.append(LayerFlops(f"{attn}.q_matmul_k", "matmul", N * N * C, f"{attn}.{names.q_spikes}"))
    rows.append(LayerFlops(f"{attn}.scores_matmul_v", "matmul", N * N * C, f"{attn}.{names.v_spikes}"))
    rows.append(weighted_flops(f"{attn}.{names.proj}", getattr(blk.attn, names.proj), N))
    return rows + [weighted_flops(f"{prefix}.mlp.{n}", getattr(blk.mlp, n), N) for n in names.mlp]


def _spikformer(model: Spikformer) -> list[LayerFlops]:
    S, pe = model.img_size, model.patch_embed
    rows = [dense_flops("patch_embed.proj_conv", pe.proj_conv, S * S),
            weighted_flops("patch_embed.proj_conv1", pe.proj_conv1, S * S),
            weighted_flops("patch_embed.proj_conv2", pe.proj_conv2, S * S),
            weighted_flops("patch_embed.proj_conv3", pe.proj_conv3, (S // 2) ** 2),
            weighted_flops("patch_embed.rpe_conv", pe.rpe_conv, (S // 4) ** 2)]
    N, C = (S // 4) ** 2, model.config["embed_dim"]
    for i, blk in enumerate(model.block):
        rows += quadratic_attention_block(f"block.{i}", blk, N, C, SPIKFORMER_BLOCK)
    rows.append(dense_flops("head", model.head, 1))
    return rows


def _embed(prefix: str, emb, hw: int) -> list[LayerFlops]:
    """InitEmbed (no down-sampling, hw = grid side) or StageEmbed (hw = input side, output hw/2)."""
    if hasattr(emb, "proj1_conv"):
        first = dense_flops if prefix == "patch_embed1" else weighted_flops
        return [first(f"{prefix}.proj_conv", emb.proj_conv, hw * hw),
                weighted_flops(f"{prefix}.proj1_conv", emb.proj1_conv, hw * hw),
                weighted_flops(f"{prefix}.proj_res_conv", emb.proj_res_conv, hw * hw)]
    return [weighted_flops(f"{prefix}.proj3_conv", emb.proj3_conv, hw * hw),
            weighted_flops(f"{prefix}.proj4_conv", emb.proj4_conv, hw * hw),
            weighted_flops(f"{prefix}.proj_res_conv", emb.proj_res_conv, (hw // 2) ** 2)]


def _token_block(prefix: str, blk, N: int) -> list[LayerFlops]:
    att, rows = blk.tssa, []
    C = att.q_conv.weight.shape[0]
    for name in ("q_conv", "k_conv", "p_conv"):
        if hasattr(att, name):
            rows.append(weighted_flops(f"{prefix}.tssa.{name}", getattr(att, name), N))
    rows.append(LayerFlops(f"{prefix}.tssa.q_column_sum", "head_sum", N * C, f"{prefix}.tssa.q_lif"))
    if hasattr(att, "p_conv"):
        rows.append(LayerFlops(f"{prefix}.tssa.p_column_sum", "head_sum", N * C, f"{prefix}.tssa.p_lif"))
    rows.append(LayerFlops(f"{prefix}.tssa.token_mask", "mask", N * C, f"{prefix}.tssa.attn_lif"))
    rows.append(weighted_flops(f"{prefix}.tssa.proj_conv", att.proj_conv, N))
    return rows + _conv_mlp(prefix, blk.mlp, N)


def _ssa_block(prefix: str, blk, N: int) -> list[LayerFlops]:
    att: SpikingSelfAttention = blk.ssa
    C = att.q_conv.weight.shape[0]
    d = C // att.num_heads
    rows = [weighted_flops(f"{prefix}.ssa.{n}", getattr(att, n), N) for n in ("q_conv", "k_conv", "v_conv")]
    rows.append(LayerFlops(f"{prefix}.ssa.kt_matmul_v", "matmul", N * C * d, f"{prefix}.ssa.k_lif"))
    rows.append(LayerFlops(f"{prefix}.ssa.q_matmul_ktv", "matmul", N * C * d, f"{prefix}.ssa.q_lif"))
    rows.append(weighted_flops(f"{prefix}.ssa.proj_conv", att.proj_conv, N))
    return rows + _conv_mlp(prefix, blk.mlp, N)


def _conv_mlp(prefix: str, mlp, N: int) -> list[LayerFlops]:
    return [weighted_flops(f"{prefix}.mlp.mlp1_conv", mlp.mlp1_conv, N),
            weighted_flops(f"{prefix}.mlp.mlp2_conv", mlp.mlp2_conv, N)]


def _hierarchical(model: HierarchicalSpikingTransformer) -> list[LayerFlops]:
    S = model.img_size
    rows = _embed("patch_embed1", model.patch_embed1, S)
    rows += [r for i, b in enumerate(model.stage1) for r in _token_block(f"stage1.{i}", b, S * S)]
    rows += _embed("patch_embed2", model.patch_embed2, S)
    rows += [r for i, b in enumerate(model.stage2) for r in _token_block(f"stage2.{i}", b, (S // 2) ** 2)]
    rows += _embed("patch_embed3", model.patch_embed3, S // 2)
    rows += [r for i, b in enumerate(model.stage3) for r in _ssa_block(f"stage3.{i}", b, (S // 4) ** 2)]
    rows.append(dense_flops("head", model.head, 1))
    return rows


def count_flops(model) -> list[LayerFlops]:
    """Per-layer MACs per image and time step, in forward order.

    Spikformer, MSViT and QKFormer are counted here; any other model may provide its own
    `flop_rows() -> list[LayerFlops]` (Dy-SViT does).
    """
    if hasattr(model, "flop_rows"):
        return model.flop_rows()
    if isinstance(model, Spikformer):
        return _spikformer(model)
    if isinstance(model, HierarchicalSpikingTransformer):
        return _hierarchical(model)
    raise TypeError(f"count_flops supports Spikformer, MSViT and QKFormer models, not {type(model).__name__}")


def total_flops(model) -> int:
    """MACs of one image through the model: dense layers once, spike-driven layers at every step."""
    return sum(r.flops if r.source == DENSE else r.flops * model.T for r in count_flops(model))


@dataclasses.dataclass
class EnergyReport:
    """Per-image operation counts and energy; `rows` = (name, flops per step, rate, ops) per layer."""
    rows: list
    mac_ops: float           # multiply-accumulates of the dense layers
    sops: float              # synaptic (accumulate) operations of the spike-driven layers
    energy_mj: float         # E_MAC·mac_ops + E_AC·sops, in millijoules
    ann_energy_mj: float     # the same network with every operation a MAC at every step (ANN-style)

    def format(self) -> str:
        width = max(len(r[0]) for r in self.rows)
        lines = [f"{'layer':{width}s}  {'MFLOPs/step':>11s}  {'rate':>6s}  {'M ops':>9s}"]
        for name, flops, rate, ops in self.rows:
            rate_txt = "  MAC " if rate is None else f"{rate:6.3f}"
            lines.append(f"{name:{width}s}  {flops / 1e6:11.3f}  {rate_txt}  {ops / 1e6:9.3f}")
        lines.append(f"MACs {self.mac_ops / 1e6:.2f} M, SOPs {self.sops / 1e6:.2f} M, "
                     f"energy {self.energy_mj:.4f} mJ (as an ANN: {self.ann_energy_mj:.4f} mJ)")
        return "\n".join(lines)

    __str__ = format


def energy_report(model, monitor, first_layer_steps: int = 1) -> EnergyReport:
    """Theoretical energy per image from `count_flops` and the rates measured by `monitor`.

    `monitor` is a FiringRateMonitor that has seen at least one forward pass of `model`.
    `first_layer_steps`: how many times the dense first conv is counted (1 as in the papers;
    pass model.T to count the repeated computation the code performs).
    """
    neuron_rates, input_rates = monitor.rates(), monitor.input_rates()
    rows, macs, sops, all_macs = [], 0.0, 0.0, 0.0
    for r in count_flops(model):
        if r.source == DENSE:
            ops = r.flops * (first_layer_steps if r.name != "head" else 1)
            macs += ops
            rows.append((r.name, r.flops, None, ops))
        else:
            rate = input_rates.get(r.source, neuron_rates.get(r.source))
            if rate is None:
                raise KeyError(f"no rate recorded for {r.source!r}; run a forward pass of the model inside "
                               f"`with FiringRateMonitor(model) as monitor:` before calling energy_report")
            ops = rate * model.T * r.flops
            sops += ops
            rows.append((r.name, r.flops, rate, ops))
        all_macs += r.flops * (1 if r.source == DENSE else model.T)
    energy = (E_MAC_PJ * macs + E_AC_PJ * sops) * 1e-9      # pJ -> mJ
    return EnergyReport(rows, macs, sops, energy, E_MAC_PJ * all_macs * 1e-9)
