"""Classify raw images with a trained model, applying the model's own preprocessing.

    import minisnn
    model = minisnn.pretrained("dysvit-tiny-cifar10")
    result = minisnn.predict(model, images)     # images: uint8, [N, 32, 32, 3] or [N, 3, 32, 32]
    result.labels, result.names, result.probs   # [N] ints, [N] class names, [N, 10] softmax

A network trained on CIFAR-10 sees normalised inputs, (x / 255 − mean) / std per channel,
with the mean and std of the recipe it was trained with.  Fed raw pixels it still returns
confident-looking answers, but scores about 10 %: the chance level.  `predict` takes the
images as they come from a file or a camera (uint8, channels last or first) and uses the
normalisation that the weights file records (`model.pretrained_info["normalization"]`,
set by `minisnn.pretrained`); for any other model, pass `normalization=` (its recipe's).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import functional as F
from .autograd.grad_mode import no_grad
from .data.augment import normalize

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


class Prediction(NamedTuple):
    """The answer for N images: `labels` [N] ints, `names` [N] class names, `probs` [N, classes] softmax."""

    labels: np.ndarray
    names: list
    probs: np.ndarray


def as_image_batch(images) -> np.ndarray:
    """uint8 images [N, H, W, 3], [N, 3, H, W], [H, W, 3] or [3, H, W] -> uint8 [N, 3, H, W].

    Channels last is assumed when the last axis has 3 entries (and the first image axis does not).
    Anything else (floats, other channel counts) raises a ValueError saying what was expected.
    """
    x = np.asarray(images)
    if x.dtype != np.uint8:
        raise ValueError(f"predict expects uint8 images (0..255, as read from a file), got dtype {x.dtype}; "
                         "convert [0, 1] floats with (x * 255).round().astype(np.uint8)")
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise ValueError(f"predict expects images [N, H, W, 3] or [N, 3, H, W], got shape {list(np.shape(images))}")
    if x.shape[-1] == 3 and x.shape[1] != 3:
        x = x.transpose(0, 3, 1, 2)
    elif x.shape[1] != 3:
        raise ValueError(f"predict expects 3 colour channels (first or last), got shape {list(np.shape(images))}")
    return np.ascontiguousarray(x)


def _model_info(model, normalization, classes):
    info = getattr(model, "pretrained_info", {}) or {}
    normalization = normalization or info.get("normalization")
    if normalization is None:
        raise ValueError("this model records no input normalisation; pass normalization='dysvit' or 'upstream' "
                         "(the recipe it was trained with), or load it with minisnn.pretrained / load_trained")
    classes = tuple(classes or info.get("classes") or CIFAR10_CLASSES)
    return normalization, classes


def predict(model, images, *, normalization=None, classes=None, batch_size: int = 256) -> Prediction:
    """Class predictions of `model` (put in eval mode) for uint8 `images` (see `as_image_batch`).

    normalization: 'dysvit', 'upstream' or (mean, std); by default the one recorded with the weights.
    classes: class names; by default those recorded with the weights (CIFAR-10's otherwise).
    """
    x = as_image_batch(images)
    normalization, classes = _model_info(model, normalization, classes)
    model.eval()
    batches = []
    with no_grad():
        for i in range(0, len(x), batch_size):
            batches.append(F.softmax(model(normalize(x[i:i + batch_size], normalization)), axis=1).data)
    probs = np.concatenate(batches).astype(np.float32) if batches else np.zeros((0, len(classes)), np.float32)
    labels = probs.argmax(axis=1)
    return Prediction(labels, [classes[i] for i in labels], probs)


__all__ = ["predict", "as_image_batch", "Prediction", "CIFAR10_CLASSES"]
