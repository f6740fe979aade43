"""Mixup, CutMix and label smoothing on a (normalised) batch, producing soft targets [B, K].

Mixup (one lambda and one partner per batch):

    lam ~ Beta(alpha, alpha),  x_i <- lam * x_i + (1 - lam) * x_p(i),  t_i <- lam * t_i + (1 - lam) * t_p(i)

CutMix: lam ~ Beta(a, a); a box covering about (1 - lam) of the image is pasted from the partner,
and lam is corrected to the box's true area.  The partner p is a random permutation
(pairing="permute", as the Dy-SViT card describes) or the reversed batch (pairing="flip", as timm does).
Label smoothing makes t a smoothed one-hot: (1 - s) on the class plus s/K on every class.

Mixing happens after normalisation.  Normalisation is affine and the mixing weights sum to 1,
so this equals normalising the mixed images.
"""
from __future__ import annotations

import numpy as np

PAIRINGS = ("permute", "flip")


def one_hot(labels: np.ndarray, num_classes: int, smoothing: float = 0.0) -> np.ndarray:
    """int labels [B] -> float32 [B, K]: (1 - smoothing) on the class, + smoothing / K everywhere."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 1-D integer array, got {labels.dtype} {list(labels.shape)}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got range [{labels.min()}, {labels.max()}]")
    off = smoothing / num_classes
    t = np.full((len(labels), num_classes), off, dtype=np.float32)
    t[np.arange(len(labels)), labels] = 1.0 - smoothing + off
    return t


def mixup_active(epoch: int, epochs: int, off_last: int) -> bool:
    """True while mixing is on: every epoch (0-based) except the last `off_last` of `epochs`."""
    if not 0 <= off_last <= epochs:
        raise ValueError(f"off_last must be in [0, epochs={epochs}], got {off_last}")
    if not 0 <= epoch < epochs:
        raise ValueError(f"epoch must be in [0, {epochs}), got {epoch}")
    return epoch < epochs - off_last


def cutmix_box(height: int, width: int, lam: float, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of a box of about (1 - lam) * H * W, centred uniformly, clipped."""
    ratio = np.sqrt(1.0 - lam)
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    cy, cx = int(rng.integers(0, height)), int(rng.integers(0, width))
    top, bottom = np.clip([cy - cut_h // 2, cy + cut_h // 2], 0, height)
    left, right = np.clip([cx - cut_w // 2, cx + cut_w // 2], 0, width)
    return int(top), int(bottom), int(left), int(right)


class Mixup:
    """Callable `(x float [B, C, H, W], labels int [B], rng) -> (x_mixed float32, targets float32 [B, K])`.

    mixup_alpha, cutmix_alpha: Beta parameters, 0 turns that one off.  When both are on, each batch
    uses CutMix with probability `switch_prob`.  With both off it only builds (smoothed) one-hots.
    rng draws, in order: [mixup-or-cutmix choice], lambda, [box centre], partner permutation.
    """

    def __init__(self, mixup_alpha: float = 0.2, cutmix_alpha: float = 0.0, num_classes: int = 10,
                 label_smoothing: float = 0.0, switch_prob: float = 0.5, pairing: str = "permute"):
        if mixup_alpha < 0 or cutmix_alpha < 0:
            raise ValueError(f"mixup_alpha and cutmix_alpha must be >= 0, got {mixup_alpha} and {cutmix_alpha}")
        if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        if not 0 <= switch_prob <= 1:
            raise ValueError(f"switch_prob must be in [0, 1], got {switch_prob}")
        if pairing not in PAIRINGS:
            raise ValueError(f"pairing must be one of {', '.join(PAIRINGS)}, got {pairing!r}")
        self.mixup_alpha, self.cutmix_alpha = float(mixup_alpha), float(cutmix_alpha)
        self.num_classes, self.label_smoothing = int(num_classes), float(label_smoothing)
        self.switch_prob, self.pairing = float(switch_prob), pairing

    def without_mixing(self) -> "Mixup":
        """Same targets (one-hot, smoothed) but no mixing: for the epochs after the mixup cooldown."""
        return Mixup(0.0, 0.0, self.num_classes, self.label_smoothing, self.switch_prob, self.pairing)

    def _partner(self, batch: int, rng: np.random.Generator) -> np.ndarray:
        return rng.permutation(batch) if self.pairing == "permute" else np.arange(batch)[::-1]

    def __call__(self, x: np.ndarray, labels: np.ndarray, rng: np.random.Generator):
        x = np.asarray(x)
        if x.ndim != 4 or len(x) != len(labels):
            raise ValueError(f"expected images [B, C, H, W] and labels [B], got {list(x.shape)} and {len(labels)} labels")
        targets = one_hot(labels, self.num_classes, self.label_smoothing)
        use_mixup, use_cutmix = self.mixup_alpha > 0, self.cutmix_alpha > 0
        if use_mixup and use_cutmix:
            use_cutmix = bool(rng.random() < self.switch_prob)
            use_mixup = not use_cutmix
        x = np.asarray(x, dtype=np.float32)
        if use_cutmix:
            lam = float(rng.beta(self.cutmix_alpha, self.cutmix_alpha))
            top, bottom, left, right = cutmix_box(x.shape[2], x.shape[3], lam, rng)
            partner = self._partner(len(x), rng)
            x = x.copy()
            x[:, :, top:bottom, left:right] = x[partner, :, top:bottom, left:right]
            lam = 1.0 - (bottom - top) * (right - left) / (x.shape[2] * x.shape[3])
        elif use_mixup:
            lam = float(rng.beta(self.mixup_alpha, self.mixup_alpha))
            partner = self._partner(len(x), rng)
            mixed = x[partner]                      # a copy (fancy indexing)
            mixed *= np.float32(1.0 - lam)
            mixed += np.float32(lam) * x
            x = mixed
        else:
            return x, targets
        targets = np.float32(lam) * targets + np.float32(1.0 - lam) * targets[partner]
        return x, targets

    def __repr__(self) -> str:
        return (f"Mixup(mixup_alpha={self.mixup_alpha}, cutmix_alpha={self.cutmix_alpha}, "
                f"num_classes={self.num_classes}, label_smoothing={self.label_smoothing}, pairing={self.pairing!r})")
