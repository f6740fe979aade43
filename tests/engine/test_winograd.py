"""Winograd F(2×2, 3×3) and F(4×4, 3×3): the tile kernels (jit == reference, adjointness, mixed precisions),
conv2d through them against PyTorch (forward and every gradient) and against float64 finite differences,
the float32 forward being the float64 forward rounded once, and the choice of tile size."""
from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minisnn import Tensor, gradcheck, kernels
from minisnn import functional as F
from minisnn.kernels.jit import winograd as JIT
from minisnn.kernels.reference import winograd as REF
from minisnn.ops import conv as conv_ops
from minisnn.ops import winograd

from ..conftest import tol

@contextlib.contextmanager
def winograd_settings(backend: str, tile: int, **attributes):
    """Run with kernel backend `backend`, every convolution on F(tile×tile), and the given `ops.winograd`
    attributes; restores them after (hypothesis-safe)."""
    attributes.update(TILE=tile, BACKWARD_TILE=tile, FLOAT64_TILE=tile, F4_MIN_ROWS=0, F4_MAX_WORK=np.inf)
    old = {name: getattr(winograd, name) for name in attributes}, kernels.backend()
    for name, value in attributes.items():
        setattr(winograd, name, value)
    kernels.set_backend(backend)
    try:
        yield
    finally:
        for name, value in old[0].items():
            setattr(winograd, name, value)
        kernels.set_backend(old[1])


# CHUNK_BYTES 1: one image per chunk; 1000: uneven chunks; huge: one chunk; with CHUNK_ROWS_PER_CHANNEL 2 the
# GEMM-row floor decides (2·max(C, O) tiles: one to three images here)
CHUNKINGS = [dict(CHUNK_BYTES=b, CHUNK_ROWS_PER_CHANNEL=r) for b, r in ((1, 0), (1000, 0), (1 << 30, 0), (1, 2))]

images = st.fixed_dictionaries(dict(
    m=st.integers(1, 3), h=st.integers(1, 13), w=st.integers(1, 13), c=st.integers(1, 5),
    ph=st.integers(0, 2), pw=st.integers(0, 2), seed=st.integers(0, 2**31),
    dtype=st.sampled_from([np.float64, np.float32]), r=st.sampled_from([2, 4]),
))


def _sizes(case):
    """(Ho, Wo, tiles per image, α²) of an images case with output tiles of r×r."""
    ho, wo, r = case["h"] + 2 * case["ph"] - 2, case["w"] + 2 * case["pw"] - 2, case["r"]
    return ho, wo, -(-ho // r) * -(-wo // r), (r + 2) ** 2


@given(case=images)
def test_input_tiles_jit_equals_reference(case):
    ho, wo, tiles, positions = _sizes(case)
    if ho < 1 or wo < 1:
        return
    x = np.random.default_rng(case["seed"]).standard_normal((case["m"], case["h"], case["w"], case["c"]))
    x = x.astype(case["dtype"])
    shape = (positions, case["m"] * tiles, case["c"])
    a = JIT.winograd_input_tiles(x, case["ph"], case["pw"], np.full(shape, np.nan, case["dtype"]))
    b = REF.winograd_input_tiles(x, case["ph"], case["pw"], np.full(shape, np.nan, case["dtype"]))
    np.testing.assert_array_equal(a, b)


@given(case=images)
def test_output_transform_and_its_adjoint(case):
    """jit == reference for both, and ⟨out(M), g⟩ = ⟨M, adjoint(g)⟩ for random M and g."""
    ho, wo, tiles, positions = _sizes(case)
    if ho < 1 or wo < 1:
        return
    rng = np.random.default_rng(case["seed"])
    m, o, dtype = case["m"], case["c"], case["dtype"]
    mt = rng.standard_normal((positions, m * tiles, o)).astype(dtype)
    g = rng.standard_normal((m, ho, wo, o)).astype(dtype)
    y_jit = JIT.winograd_output_tiles(mt, ho, wo, np.full((m, ho, wo, o), np.nan, dtype))
    y_ref = REF.winograd_output_tiles(mt, ho, wo, np.full((m, ho, wo, o), np.nan, dtype))
    np.testing.assert_array_equal(y_jit, y_ref)
    d_jit = JIT.winograd_output_tiles_adjoint(g, np.full(mt.shape, np.nan, dtype))
    d_ref = REF.winograd_output_tiles_adjoint(g, np.full(mt.shape, np.nan, dtype))
    np.testing.assert_array_equal(d_jit, d_ref)
    lhs = float(np.vdot(y_ref.astype(np.float64), g.astype(np.float64)))
    rhs = float(np.vdot(mt.astype(np.float64), d_ref.astype(np.float64)))
    assert lhs == pytest.approx(rhs, rel=1e-4 if dtype == np.float32 else 1e-12, abs=1e-6)


@given(case=images)
def test_mixed_precision_transforms(case):
    """float32 images into float64 tiles (exact), float64 GEMM results rounded once into float32 outputs:
    jit == reference, and both equal the float64 transforms (rounded where the output is float32)."""
    ho, wo, tiles, positions = _sizes(case)
    if ho < 1 or wo < 1:
        return
    rng = np.random.default_rng(case["seed"])
    m, c = case["m"], case["c"]
    x = rng.standard_normal((m, case["h"], case["w"], c)).astype(np.float32)
    shape = (positions, m * tiles, c)
    v64 = REF.winograd_input_tiles(x.astype(np.float64), case["ph"], case["pw"], np.empty(shape))
    for impl in (JIT, REF):
        v = impl.winograd_input_tiles(x, case["ph"], case["pw"], np.full(shape, np.nan))
        np.testing.assert_array_equal(v, v64)
    mt = rng.standard_normal((positions, m * tiles, c))
    y64 = REF.winograd_output_tiles(mt, ho, wo, np.empty((m, ho, wo, c)))
    for impl in (JIT, REF):
        y = impl.winograd_output_tiles(mt, ho, wo, np.full((m, ho, wo, c), np.nan, np.float32))
        np.testing.assert_array_equal(y, y64.astype(np.float32))


@pytest.mark.parametrize("kernel_backend", ["jit", "reference"])
@given(n=st.integers(1, 3), c=st.integers(1, 6), o=st.integers(1, 6), h=st.integers(1, 13), w=st.integers(1, 13),
       ph=st.integers(0, 2), pw=st.integers(0, 2), spikes=st.booleans(), seed=st.integers(0, 2**31),
       chunking=st.sampled_from(CHUNKINGS), tile=st.sampled_from([2, 4]))
def test_float32_forward_is_the_float64_forward_rounded_once(kernel_backend, n, c, o, h, w, ph, pw, spikes, seed,
                                                            chunking, tile):
    """The forward runs its transforms and GEMMs in FORWARD_DTYPE = float64: a float32 forward rounds the
    float64 result once (so it is as close to float64 as float32 can be; winograd.md, docs/parity.md)."""
    if h + 2 * ph < 3 or w + 2 * pw < 3:
        return
    rng = np.random.default_rng(seed)
    x = (rng.random((n, c, h, w)) < 0.3) if spikes else rng.standard_normal((n, c, h, w))
    x = x.astype(np.float32)
    wt = (rng.standard_normal((o, c, 3, 3)) / np.sqrt(9 * c)).astype(np.float32)
    with winograd_settings(kernel_backend, tile, **chunking):
        y32 = winograd.winograd_conv2d_forward(x, wt, (ph, pw))
        y64 = winograd.winograd_conv2d_forward(x.astype(np.float64), wt.astype(np.float64), (ph, pw))
    assert winograd.FORWARD_DTYPE == np.float64 and y32.dtype == np.float32
    np.testing.assert_array_equal(y32, y64.astype(np.float32))


def test_float32_forward_is_closer_to_float64_than_float32_arithmetic(monkeypatch):
    """On spike inputs of a wide layer, the float64 forward rounded once is several times closer to float64
    than the same forward computed in float32 (whose nine-term output transform adds up rounding)."""
    rng = np.random.default_rng(5)
    x = (rng.random((2, 128, 12, 12)) < 0.2).astype(np.float32)
    wt = (rng.standard_normal((128, 128, 3, 3)) / np.sqrt(9 * 128)).astype(np.float32)
    exact = winograd.winograd_conv2d_forward(x.astype(np.float64), wt.astype(np.float64), (1, 1))
    distance = {}
    for dtype in (np.float64, np.float32):
        monkeypatch.setattr(winograd, "FORWARD_DTYPE", dtype)
        y = winograd.winograd_conv2d_forward(x, wt, (1, 1))
        distance[dtype] = np.linalg.norm(y - exact) / np.linalg.norm(exact)
    assert distance[np.float64] < 3e-8                      # rounding once: about 2.5e-8 (relative, RMS)
    assert distance[np.float32] > 5 * distance[np.float64]  # measured: 2.5e-7, ten times farther


@pytest.mark.parametrize("r", [2, 4])
def test_one_tile_is_the_direct_convolution(r):
    """Aᵀ[(G w Gᵀ) ⊙ (Bᵀ d B)]A on a single α×α tile equals the r² 3×3 correlations it stands for."""
    rng = np.random.default_rng(0)
    alpha = r + 2
    d, w = rng.standard_normal((alpha, alpha)), rng.standard_normal((3, 3))
    v = REF.winograd_input_tiles(d[None, :, :, None], 0, 0, np.empty((alpha * alpha, 1, 1)))
    u = winograd.weight_tiles(w[None, None], r)
    y = REF.winograd_output_tiles(v * u, r, r, np.empty((1, r, r, 1)))[0, :, :, 0]
    direct = np.array([[np.sum(d[i:i + 3, j:j + 3] * w) for j in range(r)] for i in range(r)])
    np.testing.assert_allclose(y, direct, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("r", [2, 4])
def test_weight_transform_adjoint(r):
    rng = np.random.default_rng(1)
    w, du = rng.standard_normal((5, 4, 3, 3)), rng.standard_normal(((r + 2) ** 2, 4, 5))
    assert np.vdot(winograd.weight_tiles(w, r), du) == pytest.approx(np.vdot(w, winograd.weight_tiles_adjoint(du)),
                                                                    rel=1e-12)


def test_tile_size_rule():
    """float32: F(4×4) where its GEMMs get enough rows per channel and its edge tiles waste little, else
    F(2×2); float64: F(2×2)."""
    f32 = np.float32
    assert winograd.tile_for(128, 32, 32, 64, f32, largest=4) == 4
    assert winograd.tile_for(32, 8, 8, 384, f32, largest=4) == 4       # 128 tiles for 384 channels: enough
    assert winograd.tile_for(8, 8, 8, 384, f32, largest=4) == 2        # 32 tiles: the weights dominate
    assert winograd.tile_for(128, 5, 5, 64, f32, largest=4) == 2       # 4×4 tiles compute 8×8 for 5×5
    assert winograd.tile_for(128, 6, 6, 64, f32, largest=4) == 2       # as many multiplications as F(2×2)
    assert winograd.tile_for(128, 7, 7, 64, f32, largest=4) == 4
    assert winograd.tile_for(128, 32, 32, 16, f32, largest=2) == 2
    assert winograd.tile_for(128, 32, 32, 64, np.float64, largest=4) == 2


def test_float64_zero_windows_stay_exact_zeros():
    """An output whose 3×3 window of input is all zeros is exactly 0 under F(2×2), as in a direct convolution
    (max-pool ties on spike maps depend on it); F(4×4)'s transforms leave rounding residues there."""
    rng = np.random.default_rng(0)
    x = (rng.random((4, 16, 8, 8)) < 0.02).astype(np.float64)
    w = rng.standard_normal((32, 16, 3, 3))
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))), (3, 3), (2, 3))
    direct = np.einsum("nchwij,ocij->nohw", windows, w)
    zero = direct == 0
    assert zero.sum() > 100
    y = winograd.winograd_conv2d_forward(x, w, (1, 1))                  # float64: F(2×2)
    assert np.all(y[zero] == 0)
    with winograd_settings("jit", 4):
        y4 = winograd.winograd_conv2d_forward(x, w, (1, 1))
    assert np.count_nonzero(y4[zero]) > zero.sum() // 2                  # why float64 keeps F(2×2)


@pytest.fixture
def always_winograd(monkeypatch):
    monkeypatch.setattr(winograd, "MIN_CHANNELS", 1)


@pytest.mark.parametrize("kernel_backend", ["jit", "reference"])
@given(n=st.integers(1, 3), c=st.integers(1, 5), o=st.integers(1, 5), h=st.integers(1, 13), w=st.integers(1, 13),
       ph=st.integers(0, 2), pw=st.integers(0, 2), bias=st.booleans(), seed=st.integers(0, 2**31),
       chunking=st.sampled_from(CHUNKINGS), dtype=st.sampled_from([np.float64, np.float32]),
       tile=st.sampled_from([2, 4]))
def test_winograd_conv2d_matches_torch(kernel_backend, n, c, o, h, w, ph, pw, bias, seed,
                                       chunking, dtype, tile):
    torch = pytest.importorskip("torch")
    if h + 2 * ph < 3 or w + 2 * pw < 3:
        return
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((n, c, h, w)), rng.standard_normal((o, c, 3, 3)),
              rng.standard_normal(o) if bias else None]
    rtol, atol = tol(dtype)
    with winograd_settings(kernel_backend, tile, MIN_CHANNELS=1, **chunking):   # MIN_CHANNELS 1: always Winograd
        assert winograd.use_winograd((o, c, 3, 3), (1, 1), (ph, pw))
        mine = [None if a is None else Tensor(a.astype(dtype), requires_grad=True) for a in arrays]
        ref = [None if a is None else torch.tensor(a.astype(dtype), requires_grad=True) for a in arrays]
        out = F.conv2d(*mine, padding=(ph, pw))
        expected = torch.nn.functional.conv2d(*ref, padding=(ph, pw))
        np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=rtol, atol=atol)
        cot = rng.standard_normal(out.shape).astype(dtype)
        out.backward(cot)
        expected.backward(torch.from_numpy(cot))
    for i, (a, b) in enumerate(zip(mine, ref)):
        if a is not None:
            expected_grad = b.grad.numpy()
            # F(4×4)'s transforms (entries up to 8 and 1/24) amplify float32 rounding in the backward, which
            # computes in float32: errors scale with the gradient's largest entries (winograd.md, "Precision")
            slack = 2e-5 * np.abs(expected_grad).max() if (tile == 4 and dtype == np.float32) else 0.0
            assert a.grad.dtype == dtype
            np.testing.assert_allclose(a.grad, expected_grad, rtol=rtol, atol=atol + slack, err_msg=f"gradient {i}")


@pytest.mark.parametrize("tile", [2, 4])
@pytest.mark.parametrize("padding", [(1, 1), (0, 2), (2, 0)])
def test_winograd_conv2d_gradcheck(padding, tile):
    rng = np.random.default_rng(3)
    x = Tensor(rng.standard_normal((2, 3, 7, 9)), requires_grad=True)
    w = Tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    b = Tensor(rng.standard_normal(4), requires_grad=True)
    with winograd_settings("jit", tile, MIN_CHANNELS=1):
        assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=padding), (x, w, b))


def test_dispatch_rule():
    """Only 3×3, stride 1, padding ≤ 2, with MIN_CHANNELS in and out, takes the Winograd path."""
    c = winograd.MIN_CHANNELS
    assert winograd.use_winograd((c, c, 3, 3), (1, 1), (1, 1))
    assert not winograd.use_winograd((c, c - 1, 3, 3), (1, 1), (1, 1))   # e.g. the RGB stem
    assert not winograd.use_winograd((c, c, 3, 3), (2, 2), (1, 1))
    assert not winograd.use_winograd((c, c, 1, 1), (1, 1), (0, 0))
    assert not winograd.use_winograd((c, c, 3, 3), (1, 1), (3, 3))


def test_backward_computes_only_what_is_needed(always_winograd):
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3))
    g = rng.standard_normal((2, 4, 6, 6))
    dx, dw = winograd.winograd_conv2d_backward(g, x, w, (1, 1), need_x=False, need_w=True)
    assert dx is None and dw.shape == w.shape
    dx, dw = winograd.winograd_conv2d_backward(g, x, w, (1, 1), need_x=True, need_w=False)
    assert dw is None and dx.shape == x.shape
    assert conv_ops.conv2d_forward(x, w, None, (1, 1), (1, 1)).shape == (2, 4, 6, 6)


def test_chunks_of_wide_layers_give_their_gemms_enough_rows():
    """A chunk holds about CHUNK_BYTES of transformed tiles, but never fewer than CHUNK_ROWS_PER_CHANNEL ×
    max(C, O) tiles (GEMM rows) unless that would pass CHUNK_BYTES_MAX, and never more images than the batch."""
    rows_per_channel = winograd.CHUNK_ROWS_PER_CHANNEL
    # 192 -> 192 on 32×32, F(4×4), float64 tiles: 4 MiB hold 1 image (64 rows); the floor asks 384 rows
    per_image = 36 * 64 * 192 * 8
    assert winograd._chunk(128, 64, 192, per_image) == -(-rows_per_channel * 192 // 64)
    assert winograd._chunk(3, 64, 192, per_image) == 3
    # 384 -> 384 on 16×16: the floor asks 768 rows (48 images, 85 MB of tiles); CHUNK_BYTES_MAX allows 37
    per_image = 36 * 16 * 384 * 8
    assert winograd._chunk(128, 16, 384, per_image) == winograd.CHUNK_BYTES_MAX // per_image
    # 1024 -> 1024 on 16×16: at most CHUNK_BYTES_MAX of tiles, not 2048 rows (600 MB)
    per_image = 36 * 16 * 1024 * 8
    assert winograd._chunk(128, 16, 1024, per_image) * per_image <= winograd.CHUNK_BYTES_MAX
    # 16 -> 32 on 32×32: the bytes decide (7 images, 448 rows >= 64)
    assert winograd._chunk(256, 64, 32, 36 * 64 * 32 * 8) == (4 << 20) // (36 * 64 * 32 * 8)
