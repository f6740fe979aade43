"""The Dy-SViT oracle: `minisnn.torch.dysvit` (the supported PyTorch version), under its old names."""
from minisnn.torch.dysvit import MLP, Attn, Block, DySViT, Hyper, Neuron, SpikeSigmoidSTE, TokenBN, build_dysvit, guard

DySViTOracle = DySViT

__all__ = ["DySViTOracle", "DySViT", "build_dysvit", "Attn", "Block", "Hyper", "MLP", "Neuron", "SpikeSigmoidSTE",
           "TokenBN", "guard"]
