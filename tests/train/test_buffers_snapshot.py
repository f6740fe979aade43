"""Module.buffers_snapshot / load_buffers_snapshot: the trainer's way to undo a skipped step's BN updates."""
from __future__ import annotations

import numpy as np

from minisnn import Tensor, nn


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.bn = nn.BatchNorm1d(4)
        self.inner = nn.Module()
        self.inner.bn = nn.BatchNorm1d(4)

    def forward(self, x):
        return self.inner.bn(self.bn(self.fc(x)))


def _buffers(model):
    return {k: np.array(v, copy=True) for k, v in model.named_buffers()}


def test_snapshot_is_a_copy_of_every_buffer():
    net = _Net()
    saved = net.buffers_snapshot()
    assert list(saved) == [k for k, _ in net.named_buffers()]
    assert "inner.bn.running_mean" in saved and "bn.num_batches_tracked" in saved
    net(Tensor(np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)))     # training-mode update
    assert not np.array_equal(net.bn.running_mean, saved["bn.running_mean"])        # the snapshot did not move


def test_loading_the_snapshot_undoes_training_forward_passes_exactly():
    net = _Net()
    x = Tensor(np.random.default_rng(1).normal(size=(8, 3)).astype(np.float32))
    net(x)
    before = _buffers(net)
    saved = net.buffers_snapshot()
    net(x * 3.0)
    net(x + 1.0)
    net.load_buffers_snapshot(saved)
    after = _buffers(net)
    assert list(after) == list(before)
    for k in before:
        assert after[k].dtype == before[k].dtype
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)
    net(x)                                                    # the restored buffers are copies, not the snapshot
    assert np.array_equal(saved["bn.running_mean"], before["bn.running_mean"])


def test_buffers_missing_from_the_snapshot_are_left_alone():
    net = _Net()
    saved = {k: v for k, v in net.buffers_snapshot().items() if not k.startswith("inner.")}
    net(Tensor(np.random.default_rng(2).normal(size=(8, 3)).astype(np.float32)))
    moved = np.array(net.inner.bn.running_mean, copy=True)
    net.load_buffers_snapshot(saved)
    np.testing.assert_array_equal(net.inner.bn.running_mean, moved)
    np.testing.assert_array_equal(net.bn.running_mean, np.zeros(4, np.float32))
