"""float32 fidelity: minisnn's float32 forward sits no farther from its float64 forward than PyTorch's
float32 does from PyTorch's float64 (`minisnn.parity.fidelity`, docs/parity.md).

Spikformer and QKFormer, the two patch-embedding designs that use Winograd (SPS; InitEmbed and
StageEmbed, which MSViT shares), at the full width of their CIFAR-10 versions (a convolution's
rounding grows with its channel count), but at T = 1 with one Spikformer block / no stage-3 block,
so that the file runs in well under a minute; 3 batches of 2 CIFAR-10 sample images, BatchNorms
calibrated on a held-out batch.  The full models at T = 4, and MSViT: docs/parity.md.
Judged on the input currents of the neuron layers that run before any spike differs (the clean
layers): these differ by rounding only, so they measure the arithmetic itself and vary little
from batch to batch.  The logits and the count of differing spikes mostly measure how far the
first flip spreads, which varies by orders of magnitude between batches (docs/parity.md), so
they are reported by `python -m minisnn.parity.fidelity`, not judged here.

RATIO = 1.1: layers where minisnn and PyTorch run the same kind of operation (linear layers,
BatchNorm, LIF) measure within about ±5 % of each other; ten per cent leaves room for that, while
the float32 Winograd forward sat up to 2.2x as far from float64 as PyTorch on the layers it feeds.
"""
from __future__ import annotations

import functools

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("spikingjelly")

from minisnn import models  # noqa: E402
from minisnn.nn import Conv2d  # noqa: E402
from minisnn.ops import winograd  # noqa: E402
from minisnn.parity.fidelity import WINOGRAD_FLOAT32, float32_distance  # noqa: E402

CASES = {"spikformer-cifar10": {"T": 1, "depth": 1}, "qkformer-cifar10": {"T": 1, "depth": 2}}
RATIO = 1.1
FLOOR = 1e-9      # absolute slack, for layers whose currents are exact on both sides (attention neurons)


def winograd_fed_layers(name: str, overrides: dict) -> list[str]:
    """Neuron layers whose input current comes through a Winograd convolution: the conv named like the
    neuron with `lif` -> `conv` (proj_lif1 <- proj_conv1, rpe_lif <- rpe_conv, proj4_lif <- proj4_conv)."""
    model = models.create(name, **overrides)
    modules = dict(model.named_modules())
    out = []
    for path, _ in model.neurons():
        conv = modules.get(path.replace("lif", "conv"))
        if isinstance(conv, Conv2d) and winograd.use_winograd(conv.weight.shape, conv.stride, conv.padding):
            out.append(path)
    return out


@functools.lru_cache(maxsize=None)
def measured(name: str):
    """(Fidelity with the float32-Winograd variant, the model's Winograd-fed neuron layers), once per model."""
    result = float32_distance(name, batches=3, batch_size=2, seed=0, overrides=CASES[name],
                              variants=WINOGRAD_FLOAT32)
    return result, winograd_fed_layers(name, CASES[name])


def _farther(result, key: str, path: str) -> bool:
    return result.layer_mean(key, path) > RATIO * result.layer_mean("torch", path) + FLOOR


def _clean_winograd_layers(name: str) -> tuple:
    result, layers = measured(name)
    clean = [p for p in layers if p in result.layer_currents["torch"]]
    assert len(clean) >= 3, (layers, result.format(layers=True))   # every model has 4-5; most run before any flip
    return result, clean


@pytest.mark.parametrize("name", list(CASES))
def test_layers_fed_by_winograd_no_farther_than_pytorch(name):
    result, clean = _clean_winograd_layers(name)
    farther = [p for p in clean if _farther(result, "minisnn", p)]
    assert not farther, f"float32 input currents of {farther} farther from float64 than PyTorch's:\n" \
                        f"{result.format(layers=True)}"


@pytest.mark.parametrize("name", list(CASES))
def test_float32_winograd_arithmetic_is_seen_to_be_farther(name):
    """The measurement tells the two forwards apart: computed in float32, the Winograd transforms and GEMMs
    put at least one layer's currents farther from float64 than PyTorch's (up to 2.2x when measured)."""
    result, clean = _clean_winograd_layers(name)
    assert any(_farther(result, "wino-f32", p) for p in clean), result.format(layers=True)


@pytest.mark.parametrize("name", list(CASES))
def test_mean_current_distance_no_farther_than_pytorch(name):
    """Averaged over all clean layers (measured: 0.84x PyTorch's for Spikformer, 0.85x for QKFormer)."""
    result, _ = measured(name)
    assert result.mean("currents", "minisnn") <= RATIO * result.mean("currents", "torch") + FLOOR, result.format()
    assert min(result.rates) > 0.05, result.format()        # calibrated inputs: the network fires
