"""What the trial's GPU is and how much memory TensorFlow's tensors took on it (the results' gpu, gpu_peak_mib)."""

from __future__ import annotations

import math

from backends.tensorflow.framework import tf
from harness.config import RuntimeOptions

# TensorFlow names the first visible GPU so; a trial sees only the GPU(s) Ray gave it.
FIRST_GPU = "GPU:0"


def gpu_name(runtime: RuntimeOptions) -> str:
    if runtime.device != "gpu":
        return "cpu"
    details = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0])
    return str(details.get("device_name", "gpu"))


def reset_peak_memory(runtime: RuntimeOptions) -> None:
    """At a model's build: the peak reported is then that model's, not that of a trial a warm worker ran before."""
    if runtime.device == "gpu":
        tf.config.experimental.reset_memory_stats(FIRST_GPU)


def peak_memory_mib(runtime: RuntimeOptions) -> float:
    if runtime.device != "gpu":
        return math.nan
    return float(tf.config.experimental.get_memory_info(FIRST_GPU)["peak"]) / 2**20
