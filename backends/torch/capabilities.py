"""What the PyTorch backend can do, declared without importing torch.

The driver reads this (``harness.backend.declarations``) to decide, before Ray starts, which options a
torch trial can honour; the adapter in this package is only imported inside a worker.
"""

# The distribution whose version keys caches of what this backend produced (read with importlib.metadata).
DISTRIBUTION = "torch"
# Distributions beside the framework that the backend's models come from: torchvision's architectures (the
# torchvision: prefix and the ImageNet weights' layouts). A cache also records their versions (harness.cachekeys).
COMPANION_DISTRIBUTIONS = ("torchvision",)

CAPABILITIES = frozenset(
    {
        "torch_compile",  # RuntimeOptions.torch_compile: torch.compile the model
        "channels_last",  # RuntimeOptions.channels_last: model and images in channels_last memory format
        "precision:mixed_bfloat16",  # torch.autocast to bfloat16: bf16 compute, float32 parameters and loss
        "precision:mixed_float16",  # torch.autocast to float16, the update pipeline's dynamic loss scaling
        "precision:float64",  # the module and the images in double; optimizer state follows the parameters
        "per_group_lr",  # set_optimizer honours per-layer learning-rate multipliers (fine_tune, freeze_early)
        "freeze",  # freeze_layers: no gradient, BatchNorm at inference (feature_extraction, freeze_early, transfer)
        "shared_dropout",  # RuntimeOptions.dropout_rng="shared": masks from harness.dropout_rng
        "gpu",  # RuntimeOptions.device="gpu" (CUDA), when the worker's machine has one
    }
)

# Programs a runtime option needs on the machine its trials run on, found before Ray starts (harness.backend
# .check_programs): option -> each (the environment variable naming the program, the programs looked for in turn
# where it is unset, the devices it is needed on, why). Without one, the trial failed in its worker with inductor's
# InvalidCxxCompiler.
PROGRAMS = {
    "torch_compile": (
        (
            "CXX",
            ("g++",),
            ("cpu",),
            "torch.compile's inductor builds its CPU kernels with a C++ compiler (torch._inductor.config.cpp.cxx)",
        ),
        (
            "CC",
            ("gcc", "clang"),
            ("gpu",),
            "torch.compile's Triton builds its CUDA launcher (driver.c) with a C compiler on first use "
            "(triton.runtime.build: $CC, else gcc, else clang)",
        ),
    ),
}

# What the framework does where xfbench sets nothing: trials recorded before xfbench set a setting ran with this
# (harness.config.recorded_runtime reads old rows through it).
OWN_DEFAULTS = {"cudnn_autotune": False}  # torch.backends.cudnn.benchmark off: torch picks them by cuDNN's heuristics

# Whether a warm worker gives a finished trial's GPU memory back before its next trial: torch empties the caching
# allocator's reserve when a backend is created (adapter.py). harness.scheduler.warm_workers reads it.
RELEASES_GPU_MEMORY = True

# Environment variables that change what a trial runs while its recorded options stay as they are: each set one is
# recorded with the trial's rows (results column framework_env, harness.provenance.framework_env) and a run's
# comparison warns of a difference (harness.baselines). name -> what it changes.
FRAMEWORK_ENV = {
    "TORCHDYNAMO_DISABLE": "=1: torch.compile returns the model uncompiled (torch._dynamo.eval_frame)",
    "TORCH_COMPILE_DISABLE": "=1: torch.compile returns the model uncompiled (torch._dynamo.config.disable)",
}
# Those that contradict a runtime option, refused before a local run starts (harness.preflight): (variable, a
# regular expression its value matches where it does, the option, the option's values it contradicts, what then
# runs instead, how to mend it). torch compares each with "1" exactly.
_UNCOMPILED = (
    "makes torch.compile return the model uncompiled: the trial would run eager while its rows say torch_compile true"
)
FRAMEWORK_ENV_CONFLICTS = (
    ("TORCHDYNAMO_DISABLE", r"\A1\Z", "torch_compile", (True,), _UNCOMPILED, "unset it, or drop --torch-compile"),
    ("TORCH_COMPILE_DISABLE", r"\A1\Z", "torch_compile", (True,), _UNCOMPILED, "unset it, or drop --torch-compile"),
)
