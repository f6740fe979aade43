"""Test-time flip (`minisnn eval --flip`): the logits of each image and its mirror image, averaged."""
from __future__ import annotations

import numpy as np

from minisnn import data as D
from minisnn import functional as F
from minisnn import models
from minisnn.autograd.grad_mode import no_grad
from minisnn.nn import init
from minisnn.train.trainer import evaluate


def test_flip_averages_the_logits_of_the_image_and_its_mirror():
    init.manual_seed(3)
    model = models.create("dysvit-tiny", dim=32, depth=1, heads=2).eval()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(10, 3, 32, 32), dtype=np.uint8)
    y = rng.integers(0, 10, size=10)
    transform = D.EvalTransform(normalization="dysvit")
    with no_grad():
        plain = model(transform(x)).data
        mirrored = model(transform(x[..., ::-1].copy())).data
    averaged = (plain + mirrored) / 2
    got = evaluate(model, x, y, transform, batch_size=4, flip=True)
    assert got["acc"] == np.mean(averaged.argmax(axis=1) == y)
    loss = float(F.cross_entropy(averaged, y, reduction="mean").item())
    np.testing.assert_allclose(got["loss"], loss, rtol=1e-5)
    assert not np.allclose(plain, mirrored)         # the mirror image is a different input
    without = evaluate(model, x, y, transform, batch_size=4)
    assert without["acc"] == np.mean(plain.argmax(axis=1) == y)
