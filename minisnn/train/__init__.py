"""Training on CIFAR-10: configuration, the guarded training loop, checkpoints, evaluation."""
from .config import TrainConfig, config_for, FAMILY_DEFAULTS
from .state import TrainCheckpointError, save_state, load_state
from .trainer import Trainer, evaluate, accuracy
from .restore import load_trained, evaluate_checkpoint
from .export import export_weights, pretrained, pretrained_names, pretrained_path

__all__ = ["TrainConfig", "config_for", "FAMILY_DEFAULTS", "TrainCheckpointError", "save_state", "load_state",
           "Trainer", "evaluate", "accuracy", "load_trained", "evaluate_checkpoint", "export_weights", "pretrained",
           "pretrained_names", "pretrained_path"]
