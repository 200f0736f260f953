"""Where a trial's backends cannot compute exactly the same thing, and why: the ``inexact`` column.

Fairness by construction makes both backends start from the same weights, see the same batches and drop the same
units; what is left between them is float rounding order, which every float32 trial has (and float64 all but
removes). A few settings go further: the two frameworks then compute something different by design, and every row
of such a trial says so, in words, instead of leaving a reader to find it in ``config_json``.
"""

from __future__ import annotations

from harness.config import TrialConfig
from harness.spec import BatchNorm, Dropout, ModelSpec, Resize2D
from harness.strategy_options import training_phases

# Strategies that run the network's BatchNorm layers in training mode: the others keep a frozen backbone in
# inference mode (running statistics, the same arithmetic in both) or train no network at all.
TRAINS_BATCHNORM = ("scratch", "fine_tune", "freeze_early", "transfer", "pretrain")
MIXED_PRECISIONS = ("mixed_bfloat16", "mixed_float16")


def trains_batchnorm(config: TrialConfig, spec: ModelSpec) -> bool:
    """Whether the trial runs one of ``spec``'s BatchNorm layers in training mode: a frozen layer runs in inference
    mode (its running statistics, the same arithmetic in both frameworks). freeze_early trains the layers beyond
    its frozen groups; transfer trains only the ``classifier`` group's unless it unfreezes the rest."""
    if config.strategy not in TRAINS_BATCHNORM:
        return False
    frozen: set[str] = set()
    if config.strategy == "freeze_early":
        frozen = set(list(spec.groups())[: config.transfer.freeze_groups])
    elif config.strategy == "transfer" and "unfrozen" not in dict(training_phases(config)):
        frozen = set(spec.groups()) - {"classifier"}
    return any(isinstance(layer, BatchNorm) and layer.group not in frozen for layer in spec.layers)


def inexact_reasons(config: TrialConfig, spec: ModelSpec) -> tuple[str, ...]:
    """Why ``config``'s backends cannot agree beyond rounding order, one phrase per reason; () when they can."""
    runtime = config.runtime
    reasons = []
    # deep_features only runs the network in inference mode, where dropout drops nothing (unless MC passes ask)
    draws_masks = config.strategy != "deep_features" or config.mc_dropout_passes > 0
    if runtime.dropout_rng == "framework" and draws_masks and any(isinstance(layer, Dropout) for layer in spec.layers):
        compiled = (
            " (other masks again under XLA or torch.compile)" if runtime.jit_compile or runtime.torch_compile else ""
        )
        reasons.append(f"dropout masks from each framework's own generator (--dropout-rng framework){compiled}")
    if runtime.jit_compile and runtime.precision != "float64" and any(isinstance(x, Resize2D) for x in spec.layers):
        # XLA contracts the resize's multiply-adds into FMAs, rounded once: other arithmetic, not another order
        reasons.append(
            "input resize under XLA (--jit-compile): its multiply-adds fused into FMAs, about one resized pixel in "
            "five a float32 step from torch's"
        )
    if runtime.precision in MIXED_PRECISIONS:
        reasons.append(f"{runtime.precision}: each framework chooses which ops run in reduced precision")
    if runtime.computes_tf32:
        reasons.append(
            "TF32 matmuls and convolutions (--tf32 on): inputs rounded to 10 mantissa bits, far beyond float32's "
            "rounding, in each framework's own kernels"
        )
    trains_bn = trains_batchnorm(config, spec)
    if trains_bn and runtime.bn_statistics == "float32" and runtime.precision != "float64":  # float64: one computation
        # PyTorch's CPU kernel accumulates in double; on a GPU both frameworks' kernels accumulate in float32
        sums = (
            "each summing its statistics in float32 in its own order on the GPU"
            if runtime.device == "gpu"
            else "PyTorch's summing its statistics in double on a CPU and TensorFlow's in float32"
        )
        reasons.append(
            f"training-mode BatchNorm in each framework's own float32 kernel, {sums} (--bn-statistics float64 makes "
            "it one computation)"
        )
    return tuple(reasons)


def inexact_text(config: TrialConfig, spec: ModelSpec) -> str:
    """The ``inexact`` column: the reasons joined by '; ' (no reason holds one), '' when the backends compute the
    same thing."""
    return "; ".join(inexact_reasons(config, spec))
