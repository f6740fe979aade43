"""Make a randomly initialised oracle fire: BatchNorm statistics and attention input levels set from data.

    from minisnn.parity.oracles.calibrate import calibrate, firing_rates
    calibrate(oracle, x, seed=0)        # every neuron of `oracle` now fires at a rate inside (5 %, 95 %) on x
    firing_rates(oracle, x)             # {"stage1.0.tssa.q_lif": 0.31, ...} in forward order

Random weights with PyTorch's default BatchNorm (γ = 1, β = 0, running statistics 0/1) give
neurons that are either silent or always on, and a parity test on such a network proves
little.  `calibrate` fixes that in three steps, all on the input batch `x`:

1. every BatchNorm gets the per-channel mean/variance of its actual input as running
   statistics, γ ∈ [0.7, 1.3] and β = centre + [-0.3, 0.3] (one eval-mode pass, BNs set
   in execution order, so each one sees calibrated inputs);
2. Dy-SViT only: the patch embedding is rescaled the same way, so that the neurons that
   read the residual stream directly (no pre-norm when `stability=False`) fire too;
3. attention neurons read sums and products of spikes, not BN outputs, so no BN sits
   right before them.  Their rate is steered by the centre of the BNs that produce those
   spikes (Q and P for token attention, Q/K/V for SSA): a few passes of bisection move
   that centre until the attention neuron fires at 20-80 % while the Q/K/V neurons stay
   above 8 % and below 92 %.  Running statistics are re-measured on every pass.

Works in float32 and float64; leaves the model in eval mode with reset neurons.
"""
from __future__ import annotations

import torch
from torch import nn
from spikingjelly.clock_driven import functional as sj_functional
from spikingjelly.clock_driven.neuron import MultiStepLIFNode

from . import dysvit, upstream

ATTENTION_BAND = (0.2, 0.8)      # target rate of an attention neuron
SOURCE_BAND = (0.08, 0.92)       # allowed rate of the Q/K/V/P neurons steering it
SEARCH_PASSES = 16
# BNs whose output is max-pooled before its neuron (the max of 9 values sits higher): lower centre.
POOLED_BN_CENTRE = {"proj4_bn": 0.3}


# The torch-side neurons: SpikingJelly's LIF (upstream oracles) and the Dy-SViT oracle's neuron.
# (minisnn-side neurons are defined by `minisnn.spiking.Neuron`.)
ORACLE_NEURON_TYPES = (MultiStepLIFNode, dysvit.Neuron)


def is_oracle_neuron(module: nn.Module) -> bool:
    """True for a spiking neuron of a PyTorch oracle (a class in ORACLE_NEURON_TYPES)."""
    return isinstance(module, ORACLE_NEURON_TYPES)


def neuron_types() -> tuple:
    """The classes `is_oracle_neuron` accepts (ORACLE_NEURON_TYPES)."""
    return ORACLE_NEURON_TYPES


def _is_bn(module) -> bool:
    return isinstance(module, nn.modules.batchnorm._BatchNorm)


def _channel_axis(bn, z) -> int:
    return z.dim() - 1 if getattr(bn, "channels_last", False) else 1


def _rate_hooks(model: nn.Module, rates: dict) -> list:
    """Forward hooks that write each oracle neuron's mean output into `rates[path]`; remove them after use."""
    return [mod.register_forward_hook(lambda m, i, o, name=name: rates.__setitem__(name, float(o.double().mean())))
            for name, mod in model.named_modules() if is_oracle_neuron(mod)]


@torch.no_grad()
def firing_rates(model: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Mean output of every neuron on input `x` (eval mode as the model is), keyed by path, in forward order."""
    rates: dict[str, float] = {}
    upstream.forward_with_hooks(model, x, _rate_hooks(model, rates))
    return rates


class _Steer:
    """One attention neuron, the BNs whose centre steers it, and the neurons those BNs feed."""

    def __init__(self, neuron: str, bns: list[str], sources: list[str], lo: float, hi: float, start: float):
        self.neuron, self.bns, self.sources = neuron, bns, sources
        self.lo, self.hi, self.centre = lo, hi, start
        self.done = False

    def update(self, rates: dict[str, float]) -> None:
        """One bisection step from the measured rates."""
        self.done = False
        if self.neuron not in rates:
            return
        r = rates[self.neuron]
        src = [rates[s] for s in self.sources if s in rates]
        if src and min(src) < SOURCE_BAND[0]:
            self.lo = self.centre                 # Q/K/V too sparse: centre must rise
        elif src and max(src) > SOURCE_BAND[1]:
            self.hi = self.centre
        elif r > ATTENTION_BAND[1]:
            self.hi = self.centre
        elif r < ATTENTION_BAND[0]:
            self.lo = self.centre
        else:
            self.done = True
            return
        self.centre = 0.5 * (self.lo + self.hi)


def _steering(model: nn.Module, lo: float, hi: float, start: float) -> list[_Steer]:
    out = []
    for path, m in model.named_modules():
        pre = f"{path}." if path else ""
        if isinstance(m, upstream.TokenAttention):
            names = ["q"] + (["p"] if m.multiscale else [])
            out.append(_Steer(pre + "attn_lif", [pre + f"{n}_bn" for n in names], [pre + f"{n}_lif" for n in names],
                              lo, hi, start))
        elif isinstance(m, (upstream.SpikingSelfAttention, upstream.SpikformerSSA)):
            out.append(_Steer(pre + "attn_lif", [pre + f"{n}_bn" for n in "qkv"], [pre + f"{n}_lif" for n in "qkv"],
                              lo, hi, start))
        elif isinstance(m, dysvit.Attn):
            out.append(_Steer(pre + "sn_attn", [pre + f"{n}_bn" for n in "qkv"], [pre + f"sn_{n}" for n in "qkv"],
                              lo, hi, start))
    return out


@torch.no_grad()
def _affine_patch_embed(model, x, centre: float, gen) -> None:
    """Dy-SViT: rescale the patch-embedding conv so each output channel is ≈ N(centre ± 0.3, 1) on `x`."""
    conv = model.patch_embed
    y = conv(x)
    mean = y.mean(dim=(0, 2, 3))
    std = y.std(dim=(0, 2, 3)).clamp_min(1e-6)
    jitter = 0.6 * (torch.rand(mean.shape, generator=gen, dtype=torch.float64) - 0.5)
    conv.weight.div_(std.view(-1, 1, 1, 1))
    conv.bias.copy_((conv.bias - mean) / std + (centre + jitter).to(conv.bias.dtype))
    model.pos_embed.zero_()


@torch.no_grad()
def perturb_hypernetworks(model: nn.Module, seed: int = 0, std: float = 0.5) -> nn.Module:
    """Dy-SViT: draw the slope hypernetworks' weights at random so the slopes spread over (1, 5).

    At initialisation fc2 is zero and every slope is exactly 2, which would leave the slope
    gradient path untested.  fc1 gets N(0, std²/C), fc2 N(0, (4·std)²/hidden), biases unchanged.
    """
    gen = torch.Generator().manual_seed(seed)
    for name, mod in model.named_modules():
        if isinstance(mod, dysvit.Hyper):
            for lin, scale in ((mod.fc1, std), (mod.fc2, 4 * std)):
                w = torch.randn(lin.weight.shape, generator=gen, dtype=torch.float64)
                lin.weight.copy_((w * scale / lin.weight.shape[1] ** 0.5).to(lin.weight.dtype))
    return model


@torch.no_grad()
def calibrate(model: nn.Module, x: torch.Tensor, seed: int = 0, centre: float | None = None,
              attention_start: float | None = None) -> nn.Module:
    """Set BN statistics/affines (and steer attention inputs) so every neuron fires on `x`; see the module doc.

    `centre`: the β around which BN outputs sit (default 1.5 for LIF oracles, whose first step fires
    at 2·v_th; 1.0 for Dy-SViT, whose single step fires at v_th).  Returns the model, in eval mode.
    """
    is_dysvit = isinstance(model, dysvit.DySViTOracle)
    centre = (1.0 if is_dysvit else 1.5) if centre is None else centre
    lo, hi = (-0.5, 3.0) if is_dysvit else (0.4, 3.5)
    start = (0.5 if is_dysvit else 1.0) if attention_start is None else attention_start
    gen = torch.Generator().manual_seed(seed)
    model.eval()
    if is_dysvit:
        _affine_patch_embed(model, x, centre, gen)
    steering = _steering(model, lo, hi, start)
    steered = {bn: s for s in steering for bn in s.bns}
    bns = [(name, m) for name, m in model.named_modules() if _is_bn(m)]
    base = {}                                           # name -> (γ, β jitter), drawn once
    for name, m in bns:
        c = m.num_features
        gamma = 0.7 + 0.6 * torch.rand(c, generator=gen, dtype=torch.float64)
        jitter = 0.6 * (torch.rand(c, generator=gen, dtype=torch.float64) - 0.5)
        base[name] = (gamma, jitter)

    def pre_hook(name):
        def hook(bn, inputs):
            z = inputs[0]
            axis = _channel_axis(bn, z)
            axes = [a for a in range(z.dim()) if a != axis]
            bn.running_mean.copy_(z.mean(dim=axes))
            bn.running_var.copy_(z.var(dim=axes, unbiased=False).clamp_min(1e-3))
            gamma, jitter = base[name]
            c = steered[name].centre if name in steered else POOLED_BN_CENTRE.get(name.rsplit(".", 1)[-1], centre)
            bn.weight.copy_(gamma.to(bn.weight.dtype))
            bn.bias.copy_((c + jitter).to(bn.bias.dtype))
        return hook

    hooks = [m.register_forward_pre_hook(pre_hook(name)) for name, m in bns]
    rates: dict[str, float] = {}
    rate_hooks = _rate_hooks(model, rates)
    try:
        for _ in range(SEARCH_PASSES if steering else 1):
            rates.clear()
            model(x)
            sj_functional.reset_net(model)
            for s in steering:
                s.update(rates)
            if all(s.done for s in steering):
                break
        if steering and not all(s.done for s in steering):
            model(x)                                    # statistics for the final centres
    finally:
        for h in hooks + rate_hooks:
            h.remove()
        sj_functional.reset_net(model)
    return model
