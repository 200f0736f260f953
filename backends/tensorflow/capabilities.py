"""What the TensorFlow backend can do, declared without importing TensorFlow.

The driver reads this (``harness.backend.declarations``) to decide, before Ray starts, which options a
TensorFlow trial can honour; the adapter in this package is only imported inside a worker.
"""

# The distribution whose version keys caches of what this backend produced (read with importlib.metadata).
DISTRIBUTION = "tensorflow"
# Distributions beside the framework that the backend's models come from: Keras 3 is a package of its own (the
# importer, keras.applications, the .weights.h5 layout). A cache also records their versions (harness.cachekeys).
COMPANION_DISTRIBUTIONS = ("keras",)

CAPABILITIES = frozenset(
    {
        "jit_compile",  # RuntimeOptions.jit_compile: XLA-compile the train step (modes custom and fit)
        "tf_mode:fit",  # RuntimeOptions.tf_mode="fit": Keras Model.fit over the harness's batches (modes.py)
        "tf_mode:eager",  # RuntimeOptions.tf_mode="eager": GradientTape without tf.function
        "epoch_loop:compiled",  # RuntimeOptions.epoch_loop="compiled": each epoch's steps in one tf.while_loop
        "precision:mixed_bfloat16",  # Keras' mixed_bfloat16 policy: bf16 compute, float32 variables and loss
        "precision:mixed_float16",  # Keras' mixed_float16 policy, the update pipeline's dynamic loss scaling
        "precision:float64",  # Keras' float64 policy: variables, activations, optimizer state and loss
        "per_group_lr",  # set_optimizer honours per-layer learning-rate multipliers (fine_tune, freeze_early)
        "freeze",  # freeze_layers: no gradient, BatchNorm at inference (feature_extraction, freeze_early, transfer)
        "shared_dropout",  # RuntimeOptions.dropout_rng="shared": masks from harness.dropout_rng
        "gpu",  # RuntimeOptions.device="gpu", when the worker's machine has one
        # an Add or Concat of vectors flattened from feature maps: Keras flattens in the neutral H,W,C order
        "merge_flattened_maps",  # harness.shapes.MERGE_FLATTENED_MAPS
    }
)

# What the framework does where xfbench sets nothing: trials recorded before xfbench set a setting ran with this
# (harness.config.recorded_runtime reads old rows through it).
OWN_DEFAULTS = {"cudnn_autotune": True}  # TF_CUDNN_USE_AUTOTUNE unset: TensorFlow times cuDNN's convolution algorithms

# Whether a warm worker gives a finished trial's GPU memory back before its next trial: TensorFlow's allocator
# (memory growth on) keeps what it grew until the process ends, and has no call that gives it back. On a fractional
# --gpus-per-trial its workers are therefore not reused (harness.scheduler.warm_workers).
RELEASES_GPU_MEMORY = False

# Environment variables that change what a trial runs while its recorded options stay as they are: each set one is
# recorded with the trial's rows (results column framework_env, harness.provenance.framework_env) and a run's
# comparison warns of a difference (harness.baselines). name -> what it changes.
FRAMEWORK_ENV = {
    "TF_XLA_FLAGS": "--tf_xla_auto_jit=1|2|fusible: XLA auto-clusters the tf.function steps, outside --jit-compile",
    "TF_ENABLE_ONEDNN_OPTS": "=0: Eigen's CPU kernels instead of oneDNN's (other speed, other float32 rounding)",
    "XLA_FLAGS": "XLA's compiler options (its autotuning, fusion, CPU code generation) under --jit-compile",
}
# Those that contradict a runtime option, refused before a local run starts (harness.preflight): (variable, a
# regular expression its value matches where it does, the option, the option's values it contradicts, what then
# runs instead, how to mend it). Auto-clustering is off at -1 and 0 (TensorFlow's mark_for_compilation flags).
_AUTO_JIT_ON = r"--tf_xla_auto_jit=(?!(-1|0)(\s|\Z))"
FRAMEWORK_ENV_CONFLICTS = (
    (
        "TF_XLA_FLAGS",
        _AUTO_JIT_ON,
        "jit_compile",
        (False,),
        "has TensorFlow auto-cluster the tf.function train step into XLA: it would run XLA while its rows say "
        "jit_compile false",
        "drop --tf_xla_auto_jit from TF_XLA_FLAGS (or set it to 0), and give --jit-compile for XLA",
    ),
    (
        "TF_XLA_FLAGS",
        _AUTO_JIT_ON,
        "jit_compile",
        (True,),
        "has TensorFlow auto-cluster what --jit-compile leaves out (XLA chosen by the environment, not recorded: "
        "XLA should run where --jit-compile puts it, the train step, evaluation and prediction, and only there)",
        "drop --tf_xla_auto_jit from TF_XLA_FLAGS (or set it to 0): --jit-compile alone gives XLA",
    ),
)
