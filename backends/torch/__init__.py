"""PyTorch adapter for the xfbench backend protocol."""

from backends.torch.adapter import TorchBackend, create_backend

__all__ = ["TorchBackend", "create_backend"]
