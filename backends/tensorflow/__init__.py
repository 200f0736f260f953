"""TensorFlow/Keras adapter for the xfbench backend protocol."""

from backends.tensorflow.adapter import TensorFlowBackend, create_backend

__all__ = ["TensorFlowBackend", "create_backend"]
