"""Pieces shared by the seed models: input checks, per-frame layers, conv-BN-LIF stages,
and for MSViT/QKFormer the conv MLP, stage-3 spiking self-attention, the patch embeddings,
the token block and the three-stage skeleton (`HierarchicalSpikingTransformer`).

Layout conventions (upstream_models.md §1.2):

* sequences are time-major, `x_seq` [T, B, ...]; a static image is repeated T times;
* conv/linear/BN layers run frame by frame on the merged [T·B, ...] batch, so training-mode
  BatchNorm statistics are pooled over T·B (and space);
* neurons run over axis 0 of [T, B, ...] (the T axis);
* every neuron is the SpikingJelly-style LIF of §1.1: tau 2, hard reset to 0, threshold 1
  unless stated, detached reset, sigmoid surrogate (alpha 4).

Modules keep the upstream attribute names (`proj_conv`, `proj_bn`, `proj_lif`, ...), so
their state_dict keys are the upstream keys.
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from ..autograd.grad_mode import is_grad_enabled
from ..autograd.tensor import Tensor
from ..nn import BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, LayerNorm, Linear, MaxPool2d, Module, ModuleList, init
from ..nn.module import StateDictError
from ..ops import layout
from ..attention import ssa
from ..spiking import LIF, named_neurons, reset_net, surrogate
from ..spiking.surrogate import get as get_surrogate


def lif(v_threshold: float = 1.0) -> LIF:
    """The upstream neuron: `MultiStepLIFNode(tau=2.0, detach_reset=True)`, hard reset to 0."""
    return LIF(tau=2.0, v_threshold=v_threshold, v_reset=0.0, decay_input=True, detach_reset=True,
               surrogate=surrogate.Sigmoid(alpha=4.0))


def per_frame(layer, x_seq: Tensor) -> Tensor:
    """Apply a frame-wise layer to [T, B, ...] by merging T and B: [T·B, ...] -> layer -> [T, B, ...]."""
    T, B = x_seq.shape[:2]
    y = layer(x_seq.reshape((T * B,) + x_seq.shape[2:]))
    return y.reshape((T, B) + y.shape[1:])


def folded_bn(layer, bn, x):
    """bn(layer(x)) for a Linear or convolution `layer` and the BatchNorm after it.

    Without a graph, an eval-mode BN is an affine map per channel, y = scale·x + shift, and is folded into
    the layer (its `affine` argument): the output is written once instead of written, read and written
    again, and a Winograd convolution applies the map in float64 before its one rounding.  With a graph
    the two stay apart, since BN's own parameters need their gradients.
    """
    affine = None if is_grad_enabled() else bn.folded_affine()
    if affine is None or len(affine[0]) != layer.weight.shape[0]:
        return bn(layer(x))
    return layer(x, affine=affine)


def conv_bn(conv, bn, x_seq: Tensor) -> Tensor:
    """BN(conv(x)) frame by frame on [T, B, C, ...] (`folded_bn`).

    Without a graph and with an eval-mode BN, frames that are one array repeated (stride 0 along T: the
    images of `images_to_sequence`) are computed once and the result repeated (`layout.repeated_frames`):
    the same frames, T − 1 convolutions fewer.  (A training-mode BN counts T·B images in its running
    variance, so it always sees all of them.)
    """
    T = x_seq.shape[0]
    if T > 1 and x_seq.data.strides[0] == 0 and not bn.training and not is_grad_enabled():
        frame = folded_bn(conv, bn, Tensor(x_seq.data[0]))
        return Tensor(layout.repeated_frames(frame.data, T))
    return per_frame(lambda z: folded_bn(conv, bn, z), x_seq)


# ================================================================== model base
FAMILY_NAMES = {"spikformer": "Spikformer", "msvit": "MSViT", "qkformer": "QKFormer"}


def guess_family(state: dict) -> str | None:
    """Which seed model a state_dict comes from, judged by its distinctive keys (None: none of them)."""
    keys = set(state)
    if "patch_embed.rpe_conv.weight" in keys or "block.0.attn.q_linear.weight" in keys:
        return "spikformer"
    if "stage1.0.tssa.p_conv.weight" in keys:
        return "msvit"
    if "stage1.0.tssa.q_conv.weight" in keys:
        return "qkformer"
    return None


class SpikingVisionModel(Module):
    """Common surface of the seed models: `.T`, `.num_classes`, `.config`, input checks.

    Subclasses call `_setup(config)` first in `__init__` and implement `forward_features`.
    """

    family = "model"

    def _setup(self, config: dict) -> None:
        for key in ("img_size", "in_channels", "num_classes", "embed_dim", "num_heads", "depth", "T"):
            value = config.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{type(self).__name__}: {key} must be an integer >= 1, got {value!r}")
        for key in ("mlp_ratio", "attn_threshold"):
            if isinstance(config[key], bool) or not isinstance(config[key], (int, float)) or not config[key] > 0:
                raise ValueError(f"{type(self).__name__}: {key} must be a number > 0, got {config[key]!r}")
        self.config = dict(config)
        self.T = int(config["T"])
        self.num_classes = int(config["num_classes"])
        self.img_size = int(config["img_size"])
        self.in_channels = int(config["in_channels"])

    def _use_surrogate(self, family) -> None:
        """Every neuron of the model fires with surrogate `family` (a `Surrogate`, or a name or spec such as
        "atan(alpha=2.0)"); None keeps the upstream sigmoid (alpha 4) and adds nothing to the config.
        config["surrogate"] records the family's spec, so a checkpoint's model config rebuilds it (once a
        family of one's own is defined again in the loading process)."""
        if family is None:
            return
        family = get_surrogate(family)
        self.config["surrogate"] = family.spec
        for _, neuron in named_neurons(self):
            neuron.set_surrogate(family)

    @staticmethod
    def _check_divisible(name: str, dim: int, heads: int) -> None:
        if dim % heads:
            raise ValueError(f"{name}: channel count {dim} is not divisible by num_heads={heads}")

    @staticmethod
    def _check_hidden(name: str, dim: int, mlp_ratio: float) -> None:
        """The MLP of a `dim`-channel block has int(dim · mlp_ratio) hidden channels: at least one."""
        if int(dim * mlp_ratio) < 1:
            raise ValueError(f"{name}: mlp_ratio {mlp_ratio} leaves the MLP of a {dim}-channel block without "
                             "hidden channels")

    @property
    def dtype(self):
        return next(iter(self.parameters())).dtype

    def images_to_sequence(self, images) -> Tensor:
        """Validate [B, C, H, W] images (array or Tensor), cast to the model dtype, repeat T times."""
        x = images if isinstance(images, Tensor) else Tensor(np.asarray(images))
        name, s, c = type(self).__name__, self.img_size, self.in_channels
        if x.ndim != 4 or x.shape[1] != c or x.shape[2] != s or x.shape[3] != s:
            raise ValueError(f"{name} expects images of shape [B, {c}, {s}, {s}], got {tuple(x.shape)}")
        if x.dtype.kind != "f":
            raise TypeError(f"{name} expects normalised floating-point images, got dtype {x.dtype}")
        if x.dtype != self.dtype:
            x = F.cast(x, self.dtype)
        return F.broadcast_to(x, (self.T,) + x.shape)          # [T, B, C, H, W]

    def forward(self, images) -> Tensor:
        """images [B, C, H, W] (normalised) -> logits [B, num_classes]."""
        reset_net(self)
        return self.forward_features(self.images_to_sequence(images))

    def neurons(self) -> list[tuple[str, Module]]:
        """(path, neuron) for every spiking neuron, in registration order."""
        return named_neurons(self)

    def load_state_dict(self, state: dict, strict: bool = True) -> dict:
        """As `Module.load_state_dict`, but first says clearly when the keys belong to another model."""
        own = self.state_dict()
        name = type(self).__name__
        other = guess_family(state)
        if other is not None and other != self.family:
            raise StateDictError(f"this state_dict does not belong to {name}: its keys are those of a "
                                 f"{FAMILY_NAMES[other]} model; load it into that model instead")
        shared = sum(k in own for k in state)
        if len(state) and shared < 0.5 * len(own):
            sample = ", ".join(list(state)[:3])
            raise StateDictError(
                f"this state_dict does not belong to {name}: only {shared} of its {len(state)} keys "
                f"match the model's {len(own)} (it has keys like {sample}); load it into the model it was saved from")
        return super().load_state_dict(state, strict=strict)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config.items())


# ======================================================== shared by MSViT/QKFormer
class ConvMLP(Module):
    """Token MLP with 1×1 convs: S = LIF(BN(conv1x1(X))), out = LIF(BN(conv1x1(S))).  x_seq [T, B, C, H, W]."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.mlp1_conv = Conv2d(dim, hidden, 1)
        self.mlp1_bn = BatchNorm2d(hidden)
        self.mlp1_lif = lif()
        self.mlp2_conv = Conv2d(hidden, dim, 1)
        self.mlp2_bn = BatchNorm2d(dim)
        self.mlp2_lif = lif()

    def forward(self, x_seq: Tensor) -> Tensor:
        h_seq = self.mlp1_lif(conv_bn(self.mlp1_conv, self.mlp1_bn, x_seq))
        return self.mlp2_lif(conv_bn(self.mlp2_conv, self.mlp2_bn, h_seq))


STAGE3_PROJ_LIF_MODES = ("merged", "per_sample")


class SpikingSelfAttention(Module):
    """Stage-3 spiking self-attention of MSViT/QKFormer (`Spiking_Self_Attention`, upstream §2.4).

        Q, K, V = LIF(BN(conv1x1(X)))            spikes [T, B, C, N], heads of d = C/h channels
        A = attn_lif((Q Kᵀ) V · 0.125)           per head and time step; no softmax
        out = proj_lif(BN(conv1x1(A) + b))

    `stage3_proj_lif` picks how the last neuron runs:
    * "merged" (upstream code, default): over the [T·B, C, N] tensor, i.e. with T·B as its time
      axis in (t-major, b-minor) order, so membrane potential flows from one sample to the next
      within a batch.  Outputs then depend on batch composition; with B = 1 both modes agree.
    * "per_sample": the ordinary LIF over T for each sample (batch-independent inference).
    """

    def __init__(self, dim: int, num_heads: int, attn_threshold: float, stage3_proj_lif: str = "merged"):
        super().__init__()
        if stage3_proj_lif not in STAGE3_PROJ_LIF_MODES:
            raise ValueError(f"stage3_proj_lif must be one of {STAGE3_PROJ_LIF_MODES}, got {stage3_proj_lif!r}")
        self.num_heads = num_heads
        self.stage3_proj_lif = stage3_proj_lif
        self.scale = 0.125
        self.q_conv, self.q_bn, self.q_lif = Conv1d(dim, dim, 1, bias=False), BatchNorm1d(dim), lif()
        self.k_conv, self.k_bn, self.k_lif = Conv1d(dim, dim, 1, bias=False), BatchNorm1d(dim), lif()
        self.v_conv, self.v_bn, self.v_lif = Conv1d(dim, dim, 1, bias=False), BatchNorm1d(dim), lif()
        self.attn_lif = lif(attn_threshold)
        self.proj_conv = Conv1d(dim, dim, 1)
        self.proj_bn = BatchNorm1d(dim)
        self.proj_lif = lif()

    def _heads(self, conv, bn, neuron, tokens: Tensor) -> Tensor:
        """tokens [T, B, C, N] -> spikes as heads [T, B, h, N, d]."""
        T, B, C, N = tokens.shape
        s = neuron(conv_bn(conv, bn, tokens))
        return s.reshape(T, B, self.num_heads, C // self.num_heads, N).transpose(-1, -2)

    def forward(self, x_seq: Tensor) -> Tensor:
        T, B, C, H, W = x_seq.shape
        tokens = x_seq.reshape(T, B, C, H * W)
        q = self._heads(self.q_conv, self.q_bn, self.q_lif, tokens)
        k = self._heads(self.k_conv, self.k_bn, self.k_lif, tokens)
        v = self._heads(self.v_conv, self.v_bn, self.v_lif, tokens)
        z = ssa(q, k, v, scale=self.scale)                           # [T, B, h, N, d]
        a_seq = self.attn_lif(z.transpose(-1, -2).reshape(T, B, C, H * W))
        u = folded_bn(self.proj_conv, self.proj_bn, a_seq.reshape(T * B, C, H * W))   # [T·B, C, N]
        if self.stage3_proj_lif == "merged":
            out = self.proj_lif(u)                                   # T·B is the neuron's time axis
        else:
            out = self.proj_lif(u.reshape(T, B, C, H * W))
        return out.reshape(T, B, C, H, W)


class SSABlock(Module):
    """`SpikingTransformer`: X ← X + SSA(X); X ← X + MLP(X) (no normalisation in the residual path)."""

    def __init__(self, dim, num_heads, mlp_ratio, attn_threshold, stage3_proj_lif):
        super().__init__()
        self.ssa = SpikingSelfAttention(dim, num_heads, attn_threshold, stage3_proj_lif)
        self.mlp = ConvMLP(dim, int(dim * mlp_ratio))

    def forward(self, x_seq: Tensor) -> Tensor:
        x_seq = x_seq + self.ssa(x_seq)
        return x_seq + self.mlp(x_seq)


class InitEmbed(Module):
    """`PatchEmbedInit` (SPEDS/SPEMSF #1), no down-sampling; x_seq [T, B, Cin, H, W] -> [T, B, E, H, W].

        A = LIF(BN(conv3x3 Cin→E/2 (X)));  out = LIF(BN(conv3x3 E/2→E (A))) + LIF(BN(conv1x1 E/2→E (A)))
    The sum of two spike tensors takes values {0, 1, 2}.
    """

    def __init__(self, in_channels: int, embed: int):
        super().__init__()
        self.proj_conv = Conv2d(in_channels, embed // 2, 3, padding=1, bias=False)
        self.proj_bn = BatchNorm2d(embed // 2)
        self.proj_lif = lif()
        self.proj1_conv = Conv2d(embed // 2, embed, 3, padding=1, bias=False)
        self.proj1_bn = BatchNorm2d(embed)
        self.proj1_lif = lif()
        self.proj_res_conv = Conv2d(embed // 2, embed, 1, bias=False)
        self.proj_res_bn = BatchNorm2d(embed)
        self.proj_res_lif = lif()

    def forward(self, x_seq: Tensor) -> Tensor:
        a_seq = self.proj_lif(conv_bn(self.proj_conv, self.proj_bn, x_seq))
        main = self.proj1_lif(conv_bn(self.proj1_conv, self.proj1_bn, a_seq))
        short = self.proj_res_lif(conv_bn(self.proj_res_conv, self.proj_res_bn, a_seq))
        return main + short


class StageEmbed(Module):
    """`PatchEmbeddingStage` (SPEDS/SPEMSF #2, #3): halves the grid; [T, B, Cin, H, W] -> [T, B, E, H/2, W/2].

        A = LIF(BN(conv3x3 Cin→E (X)))
        out = LIF(maxpool3x3/2(BN(conv3x3 E→E (A)))) + LIF(BN(conv1x1 stride 2, Cin→E (X)))
    The pool acts on the BN output (before the neuron); the shortcut branches off the input X.
    """

    def __init__(self, in_dim: int, embed: int):
        super().__init__()
        self.proj3_conv = Conv2d(in_dim, embed, 3, padding=1, bias=False)
        self.proj3_bn = BatchNorm2d(embed)
        self.proj3_lif = lif()
        self.proj4_conv = Conv2d(embed, embed, 3, padding=1, bias=False)
        self.proj4_bn = BatchNorm2d(embed)
        self.proj4_maxpool = MaxPool2d(3, stride=2, padding=1)
        self.proj4_lif = lif()
        self.proj_res_conv = Conv2d(in_dim, embed, 1, stride=2, bias=False)
        self.proj_res_bn = BatchNorm2d(embed)
        self.proj_res_lif = lif()

    def forward(self, x_seq: Tensor) -> Tensor:
        a_seq = self.proj3_lif(conv_bn(self.proj3_conv, self.proj3_bn, x_seq))
        pooled = per_frame(lambda z: self.proj4_maxpool(folded_bn(self.proj4_conv, self.proj4_bn, z)), a_seq)
        main = self.proj4_lif(pooled)
        short = self.proj_res_lif(conv_bn(self.proj_res_conv, self.proj_res_bn, x_seq))
        return main + short


class TokenBlock(Module):
    """`TokenSpikingTransformer` (stages 1-2 of MSViT/QKFormer): X ← X + attention(X); X ← X + MLP(X)."""

    def __init__(self, attention: Module, dim: int, mlp_ratio: float):
        super().__init__()
        self.tssa = attention
        self.mlp = ConvMLP(dim, int(dim * mlp_ratio))

    def forward(self, x_seq: Tensor) -> Tensor:
        x_seq = x_seq + self.tssa(x_seq)
        return x_seq + self.mlp(x_seq)


class HierarchicalSpikingTransformer(SpikingVisionModel):
    """Three-stage skeleton shared by QKFormer and MSViT (upstream `spiking_transformer`).

        images [B, Cin, S, S] --repeat T--> patch_embed1 (S×S grid)  -> stage1: 1 token-attention block
        -> patch_embed2 (/2) -> stage2: 1 token-attention block
        -> patch_embed3 (/2) -> stage3: depth − 2 SSA blocks
        -> mean over tokens, then over T -> Linear head -> logits [B, num_classes]

    The constructor takes the upstream arguments (E = embed_dim; `num_heads` is one count for
    all stages, upstream hard-codes 8).  A subclass says what differs:

        token_attention = TokenQKAttention      # stage-1/2 attention, built as (dim, num_heads, attn_threshold)
        stage_divisors = (4, 2)                 # stage dims E/4, E/2 (stage 3 has E)
        __init__ = functools.partialmethod(HierarchicalSpikingTransformer.__init__, attn_threshold=0.5)

    (the last line gives the family's default attention threshold).  surrogate: every neuron's surrogate
    family (`SpikingVisionModel._use_surrogate`); None is upstream's sigmoid.
    """

    token_attention: type
    stage_divisors: tuple[int, int]

    def __init__(self, img_size: int = 32, in_channels: int = 3, num_classes: int = 10, embed_dim: int = 384,
                 num_heads: int = 8, mlp_ratio: float = 4, depth: int = 4, T: int = 4, *,
                 attn_threshold: float, stage3_proj_lif: str = "merged", surrogate=None):
        super().__init__()
        self._setup(dict(img_size=img_size, in_channels=in_channels, num_classes=num_classes, embed_dim=embed_dim,
                         num_heads=num_heads, mlp_ratio=mlp_ratio, depth=depth, T=T,
                         attn_threshold=attn_threshold, stage3_proj_lif=stage3_proj_lif))
        E, h = embed_dim, num_heads
        d1, d2 = (E // divisor for divisor in self.stage_divisors)
        for name, dim in (("stage 1", d1), ("stage 2", d2), ("stage 3", E)):
            if dim < 1:
                raise ValueError(f"{type(self).__name__}: embed_dim {E} gives an empty {name}")
            self._check_divisible(f"{type(self).__name__} {name}", dim, h)
            self._check_hidden(f"{type(self).__name__} {name}", dim, mlp_ratio)
        if self.img_size % 4:
            raise ValueError(f"{type(self).__name__}: img_size must be a multiple of 4 (two 2× down-samplings), "
                             f"got {self.img_size}")
        if stage3_proj_lif not in STAGE3_PROJ_LIF_MODES:
            raise ValueError(f"{type(self).__name__}: stage3_proj_lif must be one of {STAGE3_PROJ_LIF_MODES}, "
                             f"got {stage3_proj_lif!r}")
        if depth < 2:
            raise ValueError(f"{type(self).__name__}: depth counts the two token blocks plus the stage-3 blocks, "
                             f"so it must be >= 2, got {depth}")
        self.patch_embed1 = InitEmbed(self.in_channels, d1)
        self.patch_embed2 = StageEmbed(d1, d2)
        self.patch_embed3 = StageEmbed(d2, E)
        self.stage1 = ModuleList([self._token_block(d1)])
        self.stage2 = ModuleList([self._token_block(d2)])
        self.stage3 = ModuleList([SSABlock(E, h, mlp_ratio, attn_threshold, stage3_proj_lif)
                                  for _ in range(depth - 2)])
        self.head = Linear(E, self.num_classes)
        init_linear_weights(self)
        self._use_surrogate(surrogate)

    def _token_block(self, dim: int) -> TokenBlock:
        cfg = self.config
        attention = self.token_attention(dim, cfg["num_heads"], cfg["attn_threshold"])
        return TokenBlock(attention, dim, cfg["mlp_ratio"])

    def forward_features(self, x_seq: Tensor) -> Tensor:
        x_seq = self.patch_embed1(x_seq)
        for blk in self.stage1:
            x_seq = blk(x_seq)
        x_seq = self.patch_embed2(x_seq)
        for blk in self.stage2:
            x_seq = blk(x_seq)
        x_seq = self.patch_embed3(x_seq)
        for blk in self.stage3:
            x_seq = blk(x_seq)
        T, B, C, H, W = x_seq.shape
        features = x_seq.reshape(T, B, C, H * W).mean(axis=3).mean(axis=0)    # [B, C]
        return self.head(features)


def init_linear_weights(model: Module) -> None:
    """Upstream `_init_weights`: Linear weight trunc-normal(std 0.02), bias 0; LayerNorm weight 1, bias 0.

    Convolutions and BatchNorm keep their default initialisation.
    """
    for _, m in model.named_modules():
        if isinstance(m, Linear):
            init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                init.zeros_(m.bias)
        elif isinstance(m, LayerNorm):
            init.ones_(m.weight)
            init.zeros_(m.bias)
