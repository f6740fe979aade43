"""DistributedDataParallel on the CPU (2 gloo processes) trains like one process on the same global batch.

Every rank builds the same global batch (seeded order, crops, flips, mixup partners) and trains on its
half; DDP averages the gradients and BatchNorm takes its statistics over both halves
(`AllReduceBatchNorm`, since torch's SyncBatchNorm runs on GPUs only).  After 5 steps:

* float64: every parameter and buffer equals the single process's to 1e-9 (what is left is the
  order of the sums: observed about 1e-12);
* float32: the losses agree to 1e-5, buffers to 1e-3, and every parameter to 2·Σ lr_t, the distance
  two AdamW runs can drift apart on a parameter whose true gradient is zero and whose computed one is
  rounding noise (biases right before a BatchNorm): AdamW scales any gradient to steps of about lr.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from minisnn.train import config_for, load_state  # noqa: E402
from minisnn.torch import TorchTrainer, train  # noqa: E402
from minisnn.torch.distributed import launch, process_group  # noqa: E402
from minisnn.torch.optim import WarmupCosineLR  # noqa: E402

from ..train.test_time_budget import budget_config, timed  # noqa: E402

DTYPES = ("float64", "float32")
STEPS = 5


def quiet(*_args, **_kwargs) -> None:
    pass


def config(root, dtype: str, nproc: int):
    """dysvit-tiny at width 32 (BatchNorm everywhere, learned slopes), 5 steps of 32 images, mixup on."""
    return config_for("dysvit-tiny", epochs=1, batch_size=32, train_limit=32 * STEPS, mixup_alpha=0.5,
                      mixup_off_epochs=0, label_smoothing=0.1, model_overrides={"dim": 32, "heads": 2},
                      out=str(root / f"{dtype}-{nproc}"))


def train_both_dtypes(rank: int, world: int, device: str, root) -> None:
    """One rank: both trainings in one process group (saves starting processes twice)."""
    torch.set_num_threads(1)
    with process_group(rank, world, device) as place:
        for dtype in DTYPES:
            TorchTrainer(config(root, dtype, world), place, progress=False, dtype=dtype, log=quiet).fit()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    launch(train_both_dtypes, 2, "cpu", args=(root,))
    for dtype in DTYPES:
        train(config(root, dtype, 1), nproc=1, progress=False, dtype=dtype, log=quiet)
    return {(dtype, n): load_state(root / f"{dtype}-{n}" / "last.npz") for dtype in DTYPES for n in (1, 2)}


def differences(a: dict, b: dict) -> dict:
    return {k: float(np.abs(a[k].astype(np.float64) - b[k]).max()) for k in a}


def test_two_gloo_processes_equal_one_process_in_float64(runs):
    one, two = runs["float64", 1], runs["float64", 2]
    assert two["schedule"]["t"] == one["schedule"]["t"] == STEPS
    assert two["model"]["norm.num_batches_tracked"] == STEPS          # one BN update per step, not per rank
    worst = differences(one["model"], two["model"])
    assert max(worst.values()) <= 1e-9, sorted(worst.items(), key=lambda kv: -kv[1])[:3]
    for index, state in one["optimizer"]["state"].items():
        other = two["optimizer"]["state"][index]
        assert state["step"] == other["step"] == STEPS
        np.testing.assert_allclose(other["exp_avg"], state["exp_avg"], rtol=0, atol=1e-12)
    assert two["history"][0]["train_loss"] == pytest.approx(one["history"][0]["train_loss"], rel=1e-12)


def test_two_gloo_processes_equal_one_process_in_float32_within_adamw_noise(runs):
    one, two = runs["float32", 1], runs["float32", 2]
    schedule = WarmupCosineLR(torch.optim.SGD([torch.zeros(1)], lr=1.0), **{
        k: one["schedule"][k] for k in ("warmup", "total", "base_lr", "min_lr")})
    tolerance = 2 * sum(schedule.lr_at(t) for t in range(STEPS))
    worst = differences(one["model"], two["model"])
    params = {k: v for k, v in worst.items() if "running" not in k and "num_batches" not in k}
    buffers = {k: v for k, v in worst.items() if k not in params}
    assert max(params.values()) <= tolerance, (tolerance, sorted(params.items(), key=lambda kv: -kv[1])[:3])
    assert max(buffers.values()) <= 1e-3
    assert two["history"][0]["train_loss"] == pytest.approx(one["history"][0]["train_loss"], rel=1e-5)
    assert two["history"][0]["train_acc"] == one["history"][0]["train_acc"]


def test_a_batch_that_does_not_split_evenly_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not divisible by 3 processes"):
        train(config(tmp_path, "float32", 3), nproc=3)


def train_on_a_budget(rank: int, world: int, device: str, root) -> None:
    """One rank of a budgeted run on a fake clock: rank r's steps take 1 + r seconds (rank 1 is the slow one)."""
    torch.set_num_threads(1)
    with process_group(rank, world, device) as place:
        trainer = TorchTrainer(budget_config(root / "run"), place, progress=False, log=quiet)
        clock, steps = timed(trainer, lambda t: 1.0 + rank)
        trainer.fit()
        (root / f"rank{rank}.txt").write_text(f"{trainer.schedule.t} {trainer.budget.total} {len(steps)}")


def test_a_time_budget_across_two_gloo_processes_plans_the_same_steps_from_the_slowest(tmp_path):
    launch(train_on_a_budget, 2, "cpu", args=(tmp_path,))
    done = [tuple(map(int, (tmp_path / f"rank{r}.txt").read_text().split())) for r in (0, 1)]
    assert done[0] == done[1] and done[0][0] == done[0][1] == done[0][2]     # same plan, every step taken
    saved = load_state(tmp_path / "run" / "last.npz")
    assert saved["budget"]["plan_seconds"] == 2.0                              # rank 1's pace, not rank 0's
    assert saved["schedule"]["t"] == done[0][0] and saved["history"][-1]["steps"] == done[0][0]
    # the slow rank's clock: 2 s a step plus rank 0's validations (2 s each) fit the 60 s budget
    assert 2.0 * done[0][0] + 2.0 * len(saved["history"]) <= 60.0
