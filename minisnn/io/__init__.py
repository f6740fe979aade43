"""Checkpoint I/O without torch: torch.save zip files and safetensors, read and written in NumPy.

    from minisnn.io import load_checkpoint, save_checkpoint, describe_checkpoint
    sd = load_checkpoint("model_best.pth.tar")      # dict[str, np.ndarray], nothing executed
    save_checkpoint(sd, "weights.safetensors")

See format.md for the byte layouts.
"""
from .checkpoint import StateDict, describe_checkpoint, detect_format, load_checkpoint, save_checkpoint
from .errors import CheckpointError, InputFileError, UnsafeCheckpointError
from .safetensors import read_safetensors, read_safetensors_metadata, write_safetensors
from .torch_zip import read_torch_zip, write_torch_zip

__all__ = [
    "load_checkpoint", "save_checkpoint", "describe_checkpoint", "detect_format", "StateDict",
    "CheckpointError", "UnsafeCheckpointError", "InputFileError",
    "read_torch_zip", "write_torch_zip", "read_safetensors", "read_safetensors_metadata", "write_safetensors",
]
