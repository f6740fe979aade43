"""`minisnn.predict`: raw uint8 images in, the model's own normalisation applied, classes out."""
from __future__ import annotations

import numpy as np
import pytest

import minisnn
from minisnn.data.sample import load_sample
from minisnn.inference import CIFAR10_CLASSES, as_image_batch, predict


@pytest.fixture(scope="module")
def unseen():
    """The shipped model and the embedded sample's images that lie in its held-out split (uint8, CHW)."""
    model = minisnn.pretrained("dysvit-tiny-cifar10")
    s = load_sample()
    x, y = s["train"]
    keep = np.isin(s["train_source_index"], model.pretrained_info["heldout_indices"])
    return model, x[keep], y[keep]


def test_raw_images_are_classified_with_the_recorded_normalisation(unseen):
    model, x, y = unseen
    result = predict(model, x)
    assert (result.labels == y).mean() > 0.5          # chance is 0.1; the model scores ~0.65 on CIFAR-10 test
    assert result.names[0] == CIFAR10_CLASSES[result.labels[0]]
    np.testing.assert_allclose(result.probs.sum(axis=1), 1.0, rtol=1e-5)


def test_channels_last_gives_the_same_answer_as_channels_first(unseen):
    model, x, _ = unseen
    first = predict(model, x[:20])
    last = predict(model, x[:20].transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(first.labels, last.labels)
    np.testing.assert_array_equal(first.probs, last.probs)
    single = predict(model, x[3].transpose(1, 2, 0))
    assert single.labels.tolist() == [first.labels[3]]


def test_the_wrong_normalisation_is_what_predict_protects_against(unseen):
    """Without the recorded normalisation (raw pixels / 255) the same model falls to about chance."""
    model, x, y = unseen
    wrong = predict(model, x, normalization=((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)))
    right = predict(model, x)
    assert (wrong.labels == y).mean() < (right.labels == y).mean() - 0.2


@pytest.mark.parametrize("images, says", [
    (np.zeros((2, 32, 32, 3), np.float32), "uint8"),
    (np.zeros((2, 32, 32, 4), np.uint8), "3 colour channels"),
    (np.zeros((32, 32), np.uint8), r"\[N, H, W, 3\]"),
])
def test_bad_images_say_what_is_expected(images, says):
    with pytest.raises(ValueError, match=says):
        as_image_batch(images)


def test_a_model_without_recorded_normalisation_must_be_told():
    model = minisnn.models.create("dysvit-tiny")
    with pytest.raises(ValueError, match="normalization="):
        predict(model, np.zeros((1, 32, 32, 3), np.uint8))
    assert predict(model, np.zeros((1, 32, 32, 3), np.uint8), normalization="dysvit").probs.shape == (1, 10)
