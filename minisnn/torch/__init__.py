"""minisnn in PyTorch: the same networks as torch.nn.Modules, and minisnn's training recipe on PyTorch.

    import minisnn.torch as mt
    module = mt.to_torch(models.create("dysvit-tiny"))       # same architecture, same state_dict
    model = mt.from_torch(module, "dysvit-tiny")              # back to minisnn, bit for bit
    mt.train(config_for("dysvit-cifar10", epochs=30, data_dir=DATA, out="runs/dy"), device="cuda", nproc=1)

* `convert.py`: `to_torch`, `from_torch`, `load_torch_state_dict`, `build_module`.
* `dysvit.py`, `upstream.py`: the modules (the parity suite's oracles; the upstream families use
  SpikingJelly's LIF neuron, so they need `pip install spikingjelly==0.0.0.0.14 --no-deps`).
* `engine.py`: `train(config, device, nproc, ...)`: the minisnn trainer's recipe on PyTorch, data-parallel
  with DistributedDataParallel; it writes minisnn's checkpoint files (`minisnn eval` reads them).
  `trainer.py`: `TorchTrainer`, what each process runs.
* `optim.py`, `guard.py`, `distributed.py`: AdamW and the schedule in minisnn's checkpoint layout, the
  NaN guard, process groups and BatchNorm over the global batch.
* `run.py`: the command line, `python -m minisnn.torch.run` (also under `torchrun`).  See docs/scale.md.

Importing this package needs torch; `import minisnn` never imports it.
"""
try:
    import torch as _torch             # the real PyTorch (imports are absolute): present, or a one-line error
except ImportError:
    raise ImportError('minisnn.torch needs PyTorch, which is not installed: pip install "minisnn[torch]"') from None
del _torch

from .convert import build_module, from_torch, load_torch_state_dict, numpy_state_dict, to_torch, unwrap  # noqa: E402
from .engine import train  # noqa: E402
from .trainer import TorchTrainer  # noqa: E402

__all__ = ["TorchTrainer", "build_module", "from_torch", "load_torch_state_dict", "numpy_state_dict", "to_torch",
           "train", "unwrap"]
