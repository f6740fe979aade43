"""An eval-mode BatchNorm folded into the layer before it: the `affine` argument of conv2d, conv1d and
linear (y = scale·layer(x) + shift), `_BatchNorm.folded_affine` and `models.blocks.folded_bn`."""
from __future__ import annotations

import numpy as np
import pytest

from minisnn import Tensor, gradcheck, no_grad
from minisnn import functional as F
from minisnn.models.blocks import folded_bn
from minisnn.nn import BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, Linear
from minisnn.ops import winograd

# layer kind -> (input shape, weight shape, call); the conv2d kinds take Winograd, im2col and the 1×1 path
LAYERS = {
    "conv2d-winograd": ((3, 16, 9, 7), (24, 16, 3, 3), lambda x, w, b, a: F.conv2d(x, w, b, padding=1, affine=a)),
    "conv2d-im2col": ((2, 3, 8, 8), (5, 3, 3, 3), lambda x, w, b, a: F.conv2d(x, w, b, stride=2, padding=1, affine=a)),
    "conv2d-1x1": ((2, 6, 5, 5), (4, 6, 1, 1), lambda x, w, b, a: F.conv2d(x, w, b, affine=a)),
    "conv1d": ((2, 6, 9), (4, 6, 3), lambda x, w, b, a: F.conv1d(x, w, b, padding=1, affine=a)),
    "linear": ((2, 5, 6), (4, 6), lambda x, w, b, a: F.linear(x, w, b, affine=a)),
}


def operands(kind: str, dtype, seed: int = 0, spikes: bool = False):
    """(x, w, b, (scale, shift)) for one layer kind; scale and shift are float64, as folded_affine gives them."""
    rng = np.random.default_rng(seed)
    x_shape, w_shape = LAYERS[kind][:2]
    x = (rng.random(x_shape) < 0.3) if spikes else rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape) / np.sqrt(np.prod(w_shape[1:]))
    b = rng.standard_normal(w_shape[0])
    affine = (rng.uniform(0.5, 2.0, w_shape[0]), rng.standard_normal(w_shape[0]))
    return x.astype(dtype), w.astype(dtype), b.astype(dtype), affine


def channels_axis_shape(kind: str, o: int) -> tuple:
    """Where the output channels sit: axis 1, except for linear (the last axis)."""
    return (o,) if kind == "linear" else (1, o) + (1,) * (len(LAYERS[kind][0]) - 2)


@pytest.mark.parametrize("kind", sorted(LAYERS))
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_affine_argument_is_the_layer_then_its_affine_map(kind, bias, dtype):
    x, w, b, (scale, shift) = operands(kind, dtype)
    b = b if bias else None
    call = LAYERS[kind][2]
    folded = call(x, w, b, (scale, shift)).data
    plain = call(x.astype(np.float64), w.astype(np.float64), None if b is None else b.astype(np.float64), None).data
    shape = channels_axis_shape(kind, w.shape[0])
    expected = plain * scale.reshape(shape) + shift.reshape(shape)
    assert folded.dtype == dtype
    np.testing.assert_allclose(folded, expected, rtol=1e-12 if dtype == np.float64 else 2e-6,
                               atol=1e-12 if dtype == np.float64 else 2e-6)


@pytest.mark.parametrize("spikes", [False, True])
def test_a_winograd_layer_applies_the_map_before_its_one_rounding(spikes):
    """The folded float32 Winograd forward is the folded float64 forward rounded once, bias and map included."""
    x, w, b, affine = operands("conv2d-winograd", np.float32, seed=3, spikes=spikes)
    assert winograd.use_winograd(w.shape, (1, 1), (1, 1))
    y32 = F.conv2d(x, w, b, padding=1, affine=affine).data
    y64 = F.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), padding=1, affine=affine).data
    np.testing.assert_array_equal(y32, y64.astype(np.float32))


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_gradients_through_the_affine_argument(kind):
    """y = scale·layer(x, W, b) + shift: float64 gradcheck for x, W and b (scale and shift are constants)."""
    x, w, b, affine = operands(kind, np.float64, seed=1)
    call = LAYERS[kind][2]
    assert gradcheck(lambda x_, w_, b_: call(x_, w_, b_, affine), [x, w, b])


def test_folded_affine_is_the_eval_mode_layer_and_none_otherwise():
    rng = np.random.default_rng(2)
    bn = BatchNorm2d(5)
    bn.running_mean[...] = rng.standard_normal(5)
    bn.running_var[...] = rng.uniform(0.5, 2.0, 5)
    bn.weight.data[...] = rng.uniform(0.5, 2.0, 5)
    bn.bias.data[...] = rng.standard_normal(5)
    assert bn.folded_affine() is None                          # training: batch statistics
    bn.eval()
    scale, shift = bn.folded_affine()
    assert scale.dtype == shift.dtype == np.float64 and scale.shape == shift.shape == (5,)
    x = rng.standard_normal((2, 5, 3, 3))
    with no_grad():
        y = bn(Tensor(x.astype(np.float32))).data
    np.testing.assert_allclose(y, x * scale[:, None, None] + shift[:, None, None], rtol=1e-6, atol=1e-6)
    assert BatchNorm1d(5, track_running_stats=False).eval().folded_affine() is None   # no running statistics
    no_affine = BatchNorm1d(5, affine=False).eval()
    np.testing.assert_allclose(no_affine.folded_affine()[0], 1 / np.sqrt(1 + no_affine.eps))


def eval_pair(layer, bn, seed: int = 4):
    """`layer` and `bn` in eval mode, bn with random running statistics and affine parameters."""
    rng = np.random.default_rng(seed)
    c = bn.num_features
    bn.running_mean[...] = rng.standard_normal(c)
    bn.running_var[...] = rng.uniform(0.5, 2.0, c)
    bn.weight.data[...] = rng.uniform(0.5, 2.0, c)
    bn.bias.data[...] = rng.standard_normal(c)
    return layer.eval(), bn.eval()


@pytest.mark.parametrize("make, x_shape", [
    (lambda: (Conv2d(16, 20, 3, padding=1, bias=False), BatchNorm2d(20)), (2, 16, 8, 8)),
    (lambda: (Conv2d(6, 8, 1), BatchNorm2d(8)), (2, 6, 4, 4)),
    (lambda: (Conv1d(6, 8, 1), BatchNorm1d(8)), (2, 6, 10)),
    (lambda: (Linear(6, 8), BatchNorm1d(8)), (7, 6)),
])
def test_folded_bn_without_a_graph_matches_bn_after_the_layer(make, x_shape):
    layer, bn = eval_pair(*make())
    x = np.random.default_rng(5).standard_normal(x_shape).astype(np.float32)
    with no_grad():
        folded = folded_bn(layer, bn, Tensor(x)).data
    separate = bn(layer(Tensor(x))).data                           # a graph is recorded: BN runs on its own
    np.testing.assert_allclose(folded, separate, rtol=2e-6, atol=2e-6)


def test_folded_bn_with_a_graph_keeps_the_batch_norm_parameters_trainable():
    layer, bn = eval_pair(Conv2d(16, 20, 3, padding=1, bias=False), BatchNorm2d(20))
    x = Tensor(np.random.default_rng(6).standard_normal((2, 16, 6, 6)).astype(np.float32))
    folded_bn(layer, bn, x).sum().backward()
    assert bn.weight.grad is not None and bn.bias.grad is not None and layer.weight.grad is not None


@pytest.mark.parametrize("bad", [
    (np.ones(4), np.ones(3)),                          # wrong length
    (np.ones(4, np.float32), np.zeros(4, np.float32)),  # not float64
    [np.ones(4), np.zeros(4)],                          # not a tuple
    (np.ones(4),),                                      # not a pair
])
def test_a_bad_affine_argument_says_what_it_must_be(bad):
    x, w, b, _ = operands("conv2d-1x1", np.float32)
    with pytest.raises(ValueError, match=r"affine must be a pair \(scale, shift\) of float64 arrays of shape \(4,\)"):
        F.conv2d(x, w, b, affine=bad)
