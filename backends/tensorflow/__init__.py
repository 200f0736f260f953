"""TensorFlow/Keras adapter for the xfbench backend protocol.

Importing this package imports no framework: ``capabilities`` is read by the driver, ``adapter`` (which imports
TensorFlow) only inside a worker, by ``harness.backend.load_backend``.
"""
