"""Channels-last images between layers without a graph (`ops/layout.py`): same values, layout kept, no copies."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minisnn import Tensor, models, no_grad
from minisnn import functional as F
from minisnn.kernels.jit import pool as jit_pool
from minisnn.nn import init
from minisnn.kernels.reference import pool as ref_pool
from minisnn.models import blocks
from minisnn.ops import conv as conv_ops, layout
from minisnn.spiking import LIF, reset_net

from .strategies import seeds


def channels_last_images(x: np.ndarray) -> np.ndarray:
    """The same values as x [N, C, H, W], held channels last (the view a no-graph convolution returns)."""
    return layout.as_images(np.ascontiguousarray(x.transpose(0, 2, 3, 1)))


def is_channels_last(x: np.ndarray) -> bool:
    return layout.channels_last_only(x) is not None


def test_layout_helpers():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4, 5))
    x_cl = channels_last_images(x)
    assert is_channels_last(x_cl) and not is_channels_last(x)
    assert np.shares_memory(layout.channels_last(x_cl), x_cl)
    first = layout.contiguous(x_cl)
    assert first.flags.c_contiguous and np.array_equal(first, x)
    assert layout.contiguous(x) is x
    strided = x[:, :, ::2]
    assert np.array_equal(layout.contiguous(strided), strided) and layout.channels_last(strided) is None
    one_channel = rng.standard_normal((2, 1, 4, 5))        # both layouts are the same memory
    assert layout.channels_last(one_channel) is not None
    seq = layout.as_images(rng.standard_normal((6, 4, 5, 3))).reshape(2, 3, 3, 4, 5)   # [T, B, C, H, W]
    assert layout.axes_in_memory_order(seq) == (0, 1, 3, 4, 2)
    seq_contiguous = layout.contiguous(seq)
    assert seq_contiguous.flags.c_contiguous and np.array_equal(seq_contiguous, seq)
    mixed = (Tensor(seq) + Tensor(seq_contiguous)).data                 # a channels-last image plus a contiguous one
    assert mixed.flags.c_contiguous and np.array_equal(mixed, 2 * seq)
    assert layout.axes_in_memory_order(x) == (0, 1, 2, 3)
    assert layout.axes_in_memory_order(x.transpose(1, 0, 2, 3)) is None     # axis 0 not outermost


@pytest.mark.parametrize("source_last", [False, True])
@pytest.mark.parametrize("target_last", [False, True])
def test_last_chunks_read_and_store_either_layout_through_one_shared_buffer(source_last, target_last):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((7, 3, 4, 5))
    source = channels_last_images(x) if source_last else x
    target = layout.empty_images(x.shape, x.dtype, target_last)
    assert is_channels_last(target) == target_last and (target_last or target.flags.c_contiguous)
    buf = np.empty(3 * 4 * 5 * 3)                      # chunks of 3 images, shared by reader and writer
    reader, writer = layout.LastChunks(source, 3, buf), layout.LastChunks(target, 3, buf)
    for start in range(0, 7, 3):
        stop = min(start + 3, 7)
        chunk = reader.read(start, stop)
        assert chunk.shape == (stop - start, 4, 5, 3) and np.array_equal(chunk, x[start:stop].transpose(0, 2, 3, 1))
        assert np.shares_memory(chunk, buf) != source_last
        doubled = 2 * chunk                              # used up before the writer fills the buffer
        out = writer.slot(start, stop)
        assert np.shares_memory(out, buf) != target_last
        out[...] = doubled
        writer.store(start, stop, out)
    assert np.array_equal(target, 2 * x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k, stride, padding, c, density", [
    (3, 1, 1, 16, 1.0),    # Winograd
    (3, 2, 1, 4, 1.0),     # im2col
    (4, 4, 0, 3, 1.0),     # im2col, a patchify stem
    (1, 1, 0, 8, 1.0),     # 1×1: one GEMM on a channels-last input
    (1, 2, 0, 8, 1.0),     # strided 1×1
    (3, 1, 1, 8, 0.05),    # events
])
def test_every_convolution_path_reads_and_writes_either_layout(dtype, k, stride, padding, c, density):
    rng = np.random.default_rng(k + stride + c)
    x = rng.standard_normal((3, c, 9, 8)) * (rng.random((3, c, 9, 8)) < density)
    x = x.astype(dtype)
    w = rng.standard_normal((5 if c < 16 else 16, c, k, k)).astype(dtype)
    b = rng.standard_normal(w.shape[0]).astype(dtype)
    want = conv_ops.conv2d_forward(x, w, b, (stride, stride), (padding, padding))
    assert want.flags.c_contiguous
    for x_in in (x, channels_last_images(x)):
        for ok in (False, True):
            got = conv_ops.conv2d_forward(x_in, w, b, (stride, stride), (padding, padding), channels_last_ok=ok)
            np.testing.assert_array_equal(got, want)
            if not ok:
                assert got.flags.c_contiguous


def test_without_a_graph_a_convolution_returns_channels_last_and_with_one_contiguous():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 16, 6, 6)), Tensor(rng.standard_normal((16, 16, 3, 3)), requires_grad=True)
    with no_grad():
        assert is_channels_last(F.conv2d(x, w, padding=1).data)
    assert F.conv2d(x, w, padding=1).data.flags.c_contiguous


@pytest.mark.parametrize("k, stride, padding", [(3, 1, 1), (1, 1, 0), (3, 2, 1)])
def test_gradients_of_a_channels_last_input_are_those_of_the_contiguous_one(k, stride, padding):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 16, 7, 7))
    w = rng.standard_normal((16, 16, k, k))
    g = None
    grads = []
    for x_in in (x, channels_last_images(x)):
        tx, tw = Tensor(x_in, requires_grad=True), Tensor(w, requires_grad=True)
        y = F.conv2d(tx, tw, stride=stride, padding=padding)
        g = rng.standard_normal(y.shape) if g is None else g
        y.backward(g)
        grads.append((y.data, tx.grad, tw.grad))
    for want, got in zip(*grads):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_lif_keeps_the_memory_order_without_a_graph():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 4, 5, 6)) + 0.8                       # [T, B, C, H, W]
    x_cl = layout.as_images(np.ascontiguousarray(x.reshape(6, 4, 5, 6).transpose(0, 2, 3, 1))).reshape(x.shape)
    neuron = LIF(tau=2.0)
    want = neuron(x).data
    reset_net(neuron)
    with no_grad():
        got = neuron(x_cl).data
    np.testing.assert_array_equal(got, want)
    assert got.strides == x_cl.strides
    reset_net(neuron)
    assert neuron(Tensor(x_cl, requires_grad=True)).data.flags.c_contiguous       # with a graph: as before


@pytest.mark.parametrize("backend", [ref_pool, jit_pool])
@given(seed=seeds, n=st.integers(1, 3), c=st.integers(1, 20), h=st.integers(1, 9), w=st.integers(1, 9),
       k=st.integers(1, 3), s=st.integers(1, 3), nan=st.booleans())
def test_channels_last_max_pool_matches_the_planes(backend, seed, n, c, h, w, k, s, nan):
    rng = np.random.default_rng(seed)
    p = k // 2
    if h + 2 * p < k or w + 2 * p < k:
        return
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    if nan:
        x.reshape(-1)[rng.integers(x.size)] = np.nan
    want = ref_pool.max_pool2d_values(x, k, k, s, s, p, p)
    got = backend.max_pool2d_values_channels_last(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), k, k, s, s, p, p)
    np.testing.assert_array_equal(got.transpose(0, 3, 1, 2), want)


def test_max_pool_keeps_a_channels_last_image_without_a_graph():
    x = np.random.default_rng(3).standard_normal((2, 5, 7, 7)).astype(np.float32)
    with no_grad():
        y = F.max_pool2d(channels_last_images(x), 3, 2, 1).data
    assert is_channels_last(y)
    np.testing.assert_array_equal(y, F.max_pool2d(x, 3, 2, 1).data)


@pytest.mark.parametrize("name", ["spikformer-tiny", "qkformer-tiny", "msvit-tiny", "dysvit-tiny"])
def test_models_give_the_same_logits_with_channels_last_images(name, monkeypatch):
    """A no-graph forward passes channels-last images from layer to layer; forcing every convolution to return
    contiguous [N, C, H, W] instead changes no bit of the logits.  In Spikformer's patch embedding every
    convolution after the first reads the channels-last output of the one before (no transposes)."""
    rng = np.random.default_rng(4)
    init.manual_seed(0)
    model = models.create(name)
    model.eval()
    for module in model.modules():                           # fire in eval mode: small running variances
        if hasattr(module, "running_var") and module.running_var is not None:
            module.running_var[...] = 0.05
    x = rng.random((2, 3, 32, 32)).astype(np.float32)
    seen = []
    forward = conv_ops.conv2d_forward

    def spy(x, *args, **kwargs):
        seen.append(is_channels_last(x))
        return forward(x, *args, **kwargs)

    monkeypatch.setattr(conv_ops, "conv2d_forward", spy)
    with no_grad():
        logits = model(x).data
    if name == "spikformer-tiny":
        assert seen == [False] + [True] * 4
    monkeypatch.setattr(conv_ops, "conv2d_forward", lambda *a, channels_last_ok=False, **k: forward(*a, **k))
    reset_net(model)
    with no_grad():
        contiguous = model(x).data
    np.testing.assert_array_equal(logits, contiguous)
    assert np.abs(logits).max() > 0


@pytest.mark.parametrize("last", [False, True])
def test_repeated_frames_keep_each_frame_in_its_memory_order(last):
    rng = np.random.default_rng(5)
    frame = rng.standard_normal((2, 3, 4, 5))
    frame = channels_last_images(frame) if last else frame
    seq = layout.repeated_frames(frame, 3)
    assert seq.shape == (3,) + frame.shape
    for t in range(3):
        np.testing.assert_array_equal(seq[t], frame)
        assert is_channels_last(seq[t]) == last
    strided = frame[:, :, ::2]                                 # no memory order: plain copies
    np.testing.assert_array_equal(layout.repeated_frames(strided, 2)[1], strided)


@pytest.mark.parametrize("name", ["spikformer-tiny", "qkformer-tiny", "msvit-tiny"])
def test_repeated_images_are_convolved_once_without_a_graph(name, monkeypatch):
    """The first convolution sees the T repeated images once (B images, not T·B) in an eval forward without a
    graph, and the logits are those of the frame-by-frame computation to the bit; with a graph, or a
    training-mode BatchNorm, it sees all T·B."""
    init.manual_seed(0)
    model = models.create(name)
    model.eval()
    x = np.random.default_rng(6).random((3, 3, 32, 32)).astype(np.float32)
    batches = []
    forward = conv_ops.conv2d_forward

    def spy(x, *args, **kwargs):
        batches.append(x.shape[0])
        return forward(x, *args, **kwargs)

    monkeypatch.setattr(conv_ops, "conv2d_forward", spy)
    with no_grad():
        once = model(x).data
    assert batches[0] == 3 and model.T > 1
    batches.clear()
    reset_net(model)
    monkeypatch.setattr(blocks.F, "broadcast_to",            # T copies in memory: frame by frame
                        lambda x, shape: Tensor(np.ascontiguousarray(np.broadcast_to(x.data, shape))))
    with no_grad():
        frames = model(x).data
    assert batches[0] == 3 * model.T
    np.testing.assert_array_equal(once, frames)
    monkeypatch.undo()
    monkeypatch.setattr(conv_ops, "conv2d_forward", spy)
    batches.clear()
    reset_net(model)
    model(x)                                                   # a graph
    assert batches[0] == 3 * model.T
    model.train()
    batches.clear()
    reset_net(model)
    with no_grad():
        model(x)
    assert batches[0] == 3 * model.T
