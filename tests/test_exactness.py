"""The ``inexact`` column: which settings make the backends compute something different by design."""

from __future__ import annotations

from dataclasses import replace

import pytest

from harness.config import RuntimeOptions, TrialConfig
from harness.exactness import inexact_reasons, inexact_text
from harness.models import ModelOptions, build_spec

DIGITS = (8, 8, 1)


def _trial(model: str, strategy: str = "scratch", **runtime: object) -> TrialConfig:
    options = RuntimeOptions(**runtime)  # type: ignore[arg-type]
    return TrialConfig(strategy, model, "digits", "torch", 0, 1, runtime=options)


def _spec(model: str, **options: object):
    model_options = ModelOptions(**options)  # type: ignore[arg-type]
    return build_spec(model, DIGITS if model != "resnet20" else (28, 28, 1), 10, model_options)


def test_shared_masks_and_float32_without_batchnorm_compute_alike():
    assert inexact_reasons(_trial("cnn_small"), _spec("cnn_small")) == ()
    assert inexact_text(_trial("mlp", dropout_rng="framework"), _spec("mlp")) == ""  # no dropout layer to differ


def test_each_framework_drawing_its_own_masks_is_said():
    (reason,) = inexact_reasons(_trial("cnn_small", dropout_rng="framework"), _spec("cnn_small"))
    assert "each framework's own generator" in reason and "XLA" not in reason
    # a compiled step draws other masks again: XLA's against TensorFlow's other modes, torch.compile's against eager
    (compiled,) = inexact_reasons(_trial("cnn_small", dropout_rng="framework", jit_compile=True), _spec("cnn_small"))
    assert compiled.endswith("(other masks again under XLA or torch.compile)")
    # deep features run the network in inference mode: dropout drops nothing there
    assert inexact_reasons(_trial("cnn_small", "deep_features", dropout_rng="framework"), _spec("cnn_small")) == ()


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_is_said(precision):
    (reason,) = inexact_reasons(_trial("mlp", precision=precision), _spec("mlp"))
    assert reason.startswith(precision)


def test_tf32_on_a_gpu_is_said():
    (reason,) = inexact_reasons(_trial("mlp", tf32=True, device="gpu"), _spec("mlp"))
    assert "--tf32 on" in reason
    assert inexact_reasons(_trial("mlp", tf32=True), _spec("mlp")) == ()  # a CPU computes no TF32 (an old run's row)
    assert inexact_reasons(_trial("mlp", tf32=True, device="gpu", precision="float64"), _spec("mlp")) == ()


def test_training_batchnorm_in_the_frameworks_float32_kernels_is_said_and_float64_statistics_are_one_computation():
    spec = _spec("resnet20", width_multiplier=0.5)
    (reason,) = inexact_reasons(_trial("resnet20"), spec)
    assert "BatchNorm" in reason and "--bn-statistics float64" in reason
    assert inexact_reasons(_trial("resnet20", bn_statistics="float64"), spec) == ()
    # all of it in float64: every framework's BatchNorm too (it was said to run in float32 kernels)
    assert inexact_reasons(_trial("resnet20", precision="float64"), spec) == ()
    # the kernels' sums as the device has them: PyTorch's CPU kernel sums in double, no framework's GPU kernel does
    assert "double on a CPU" in reason
    (on_gpu,) = inexact_reasons(_trial("resnet20", device="gpu"), spec)
    assert "in float32 in its own order on the GPU" in on_gpu and "CPU" not in on_gpu
    # a frozen backbone keeps BatchNorm in inference mode: running statistics, the same arithmetic in both
    assert inexact_reasons(replace(_trial("resnet20"), strategy="feature_extraction"), spec) == ()


def test_batchnorm_layers_frozen_in_every_phase_compute_alike():
    """freeze_early trains the BatchNorm layers beyond its frozen groups, transfer those in ``classifier`` unless
    it unfreezes the rest; a frozen layer runs in inference mode (every row of a frozen convnet3 said otherwise)."""
    from harness.config import TransferOptions
    from harness.spec import spec_from_dict, spec_to_dict

    layers = spec_to_dict(_spec("convnet3", batchnorm="after"))
    for layer in layers["layers"][3:7]:  # conv2, act2, conv2_bn, flatten: a middle group of their own
        layer["group"] = "middle"
    spec = spec_from_dict(layers)
    assert list(spec.groups()) == ["features", "middle", "classifier"]

    def reasons(strategy: str, **transfer: object) -> tuple[str, ...]:
        return inexact_reasons(replace(_trial("convnet3", strategy), transfer=TransferOptions(**transfer)), spec)

    assert reasons("freeze_early", freeze_groups=1) and not reasons("freeze_early", freeze_groups=2)
    assert not reasons("transfer") and reasons("transfer", frozen_epochs=0)


def test_reasons_join_into_one_cell():
    spec = _spec("cnn_small", batchnorm="before")
    text = inexact_text(_trial("cnn_small", dropout_rng="framework", precision="mixed_bfloat16"), spec)
    assert text.count("; ") == 2


def test_no_reason_holds_the_separator():
    spec = _spec("cnn_small", batchnorm="before")
    every = inexact_reasons(_trial("cnn_small", dropout_rng="framework", precision="mixed_float16"), spec)
    assert len(every) == 3 and not any("; " in reason for reason in every)


def test_every_strategy_is_placed_as_training_batchnorm_or_not():
    """A new strategy must be sorted into the BatchNorm rule: every one trains its network's BatchNorm layers but
    the two that keep a frozen backbone in inference mode."""
    from harness.exactness import TRAINS_BATCHNORM
    from harness.strategies import _registry

    assert set(_registry()) - set(TRAINS_BATCHNORM) == {"feature_extraction", "deep_features"}


def test_an_input_resize_under_xla_is_said_as_other_arithmetic():
    """XLA contracts the resize's multiply-adds into FMAs (rounded once): about one resized pixel in five a float32
    step from torch's, while the column said the backends computed alike."""
    from harness.input_pipeline import InputConfig, with_input_pipeline

    resized = with_input_pipeline(build_spec("mlp", (16, 16, 1), 10, ModelOptions()), InputConfig(size=16), DIGITS)
    (reason,) = inexact_reasons(_trial("mlp", jit_compile=True), resized)
    assert reason.startswith("input resize under XLA (--jit-compile): its multiply-adds fused into FMAs")
    assert inexact_reasons(_trial("mlp"), resized) == ()  # TensorFlow's default step: the same pixels as torch's
    assert inexact_reasons(_trial("mlp", jit_compile=True), _spec("mlp")) == ()  # no resize, nothing fused
    assert inexact_reasons(_trial("mlp", jit_compile=True, precision="float64"), resized) == ()
