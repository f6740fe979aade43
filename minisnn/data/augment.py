"""Image transforms over a whole uint8 batch [B, 3, H, W], vectorised (no per-image loop).

A transform is a callable `transform(x_uint8, rng=None) -> float32 [B, 3, H, W]` that ends
with normalisation  x_norm = (x / 255 - mean) / std  (per channel):

    Normalize("upstream")                                   evaluation: normalise only
    RandomCropFlip(padding=4, flip=True, normalization="dysvit")   training: crop, flip, normalise

`TrainTransform` and `EvalTransform` are the same two classes under the names the trainer uses.
Random decisions come from the `rng` passed in (a numpy Generator), so a batch is reproducible.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# Per-channel (R, G, B) statistics of the CIFAR-10 training images, on the [0, 1] scale.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
NORMALIZATIONS = {
    # Dy-SViT model card: the widely copied std triple (not the true per-pixel std).
    "dysvit": (CIFAR10_MEAN, (0.2023, 0.1994, 0.2010)),
    # Spikformer / QKFormer / MSViT training configs: the true per-pixel std.
    "upstream": (CIFAR10_MEAN, (0.2470, 0.2435, 0.2616)),
}
PAD_MODES = ("zero", "reflect")


def normalization_stats(normalization) -> tuple[np.ndarray, np.ndarray]:
    """'dysvit' | 'upstream' | (mean, std) -> (mean, std) float64 arrays of shape [3]."""
    if isinstance(normalization, str):
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {', '.join(NORMALIZATIONS)} or a (mean, std) pair, "
                             f"got {normalization!r}")
        mean, std = NORMALIZATIONS[normalization]
    else:
        try:
            mean, std = normalization
        except (TypeError, ValueError):
            raise TypeError(f"normalization must be a name or a (mean, std) pair, got {normalization!r}") from None
    mean, std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
    if mean.shape != (3,) or std.shape != (3,) or not (std > 0).all():
        raise ValueError(f"mean and std must each hold 3 numbers and std must be > 0, got {mean} and {std}")
    return mean, std


def _check_batch(x: np.ndarray) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 4 or x.shape[1] != 3:
        desc = f"{x.dtype} {list(x.shape)}" if isinstance(x, np.ndarray) else type(x).__name__
        raise ValueError(f"expected a uint8 image batch [B, 3, H, W], got {desc}")
    return x


def normalize(x: np.ndarray, normalization="upstream") -> np.ndarray:
    """uint8 [B, 3, H, W] -> float32 (x / 255 - mean) / std, per channel."""
    mean, std = normalization_stats(normalization)
    scale = (1.0 / (255.0 * std)).astype(np.float32).reshape(1, 3, 1, 1)
    shift = (mean / std).astype(np.float32).reshape(1, 3, 1, 1)
    out = _check_batch(x).astype(np.float32)
    out *= scale
    out -= shift
    return out


def hflip(x: np.ndarray) -> np.ndarray:
    """Mirror every image left-right (a copy)."""
    return np.ascontiguousarray(x[..., ::-1])


def random_flip(x: np.ndarray, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
    """Mirror each image left-right with probability p (one draw per image)."""
    flip = rng.random(x.shape[0]) < p
    return np.where(flip[:, None, None, None], x[..., ::-1], x)


def pad_batch(x: np.ndarray, padding: int, pad_mode: str = "zero") -> np.ndarray:
    """Pad H and W by `padding` on each side: zeros (black) or a mirror that does not repeat the edge."""
    if pad_mode not in PAD_MODES:
        raise ValueError(f"pad_mode must be one of {', '.join(PAD_MODES)}, got {pad_mode!r}")
    widths = ((0, 0), (0, 0), (padding, padding), (padding, padding))
    return np.pad(x, widths, mode="constant" if pad_mode == "zero" else "reflect")


def random_crop(x: np.ndarray, rng: np.random.Generator, padding: int = 4, pad_mode: str = "zero") -> np.ndarray:
    """Pad by `padding`, then cut an H x W window at a random offset (top, left) in [0, 2*padding] per image.

    windows[b, c, i, j] is a view of the window whose corner is (i, j); one corner is picked per image.
    """
    if padding == 0:
        return x.copy()
    b, c, h, w = x.shape
    padded = pad_batch(x, padding, pad_mode)
    top = rng.integers(0, 2 * padding + 1, size=b)
    left = rng.integers(0, 2 * padding + 1, size=b)
    windows = sliding_window_view(padded, (h, w), axis=(2, 3))   # [B, C, 2p+1, 2p+1, H, W], no copy
    return windows[np.arange(b), :, top, left]                  # [B, C, H, W]


class Normalize:
    """Evaluation transform: uint8 [B, 3, H, W] -> float32 normalised.  `rng` is accepted and unused."""

    def __init__(self, normalization="upstream"):
        self.normalization = normalization
        self.mean, self.std = normalization_stats(normalization)

    def __call__(self, x: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        return normalize(x, (self.mean, self.std))

    def __repr__(self) -> str:
        return f"Normalize({self.normalization!r})"


class RandomCropFlip:
    """Training transform: random crop with padding, random horizontal flip (p = 0.5), normalise.

    rng draws, in order: crop offsets (top, left) then flip decisions.  Without an rng a fresh,
    unseeded one is used (not reproducible).
    """

    def __init__(self, padding: int = 4, flip: bool = True, normalization="upstream", pad_mode: str = "zero"):
        if not isinstance(padding, (int, np.integer)) or padding < 0:
            raise ValueError(f"padding must be a non-negative integer, got {padding!r}")
        if pad_mode not in PAD_MODES:
            raise ValueError(f"pad_mode must be one of {', '.join(PAD_MODES)}, got {pad_mode!r}")
        self.padding, self.flip, self.pad_mode = int(padding), bool(flip), pad_mode
        self.normalize = Normalize(normalization)

    def __call__(self, x: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        x = _check_batch(x)
        rng = np.random.default_rng() if rng is None else rng
        if self.pad_mode == "reflect" and self.padding >= min(x.shape[2:]):
            raise ValueError(f"reflect padding {self.padding} must be smaller than the image size {x.shape[2:]}")
        x = random_crop(x, rng, self.padding, self.pad_mode)
        if self.flip:
            x = random_flip(x, rng)
        return self.normalize(x)

    def __repr__(self) -> str:
        return (f"RandomCropFlip(padding={self.padding}, flip={self.flip}, "
                f"normalization={self.normalize.normalization!r}, pad_mode={self.pad_mode!r})")


TrainTransform = RandomCropFlip
EvalTransform = Normalize
