"""Command-line behaviour: bad input exits 2 with a one-line message before Ray (or a framework) is imported."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import InputError

ROOT = Path(__file__).resolve().parents[1]

MLP_RUN = ["run", "--strategy", "scratch", "--model", "mlp", "--dataset", "digits"]
CNN_TUNE = ["tune", "--strategy", "scratch", "--model", "cnn_small", "--dataset", "digits"]

BAD_INPUTS = {
    # before, each blamed an option not given: "Drop --jit-compile", "Drop one of them"
    "a tf mode for the whole speed matrix that one of its variants cannot join": (
        ["run", "--suite", "speed_matrix", "--tf-mode", "eager"],
        "Received: --tf-mode eager, but its cases set runtime.tf_mode differently",
    ),
    "the compiled epoch loop for the whole speed matrix": (
        ["run", "--suite", "speed_matrix", "--epoch-loop", "compiled"],
        "Received: --epoch-loop compiled, but its cases set runtime.epoch_loop differently",
    ),
    "augmentation for the whole speed matrix, whose compiled loop cannot augment": (
        ["run", "--suite", "speed_matrix", "--augment", "crop:2"],
        "(Case scratch-mlp+epoch-loop-digits of suite speed_matrix sets the other itself, and an option given for a "
        "suite reaches all its cases: leave this one out for this suite.)",
    ),
    "BatchNorm statistics in float64 where everything is": (
        [
            *MLP_RUN,
            "--model",
            "convnet3",
            "--batchnorm",
            "after",
            "--precision",
            "float64",
            "--bn-statistics",
            "float64",
        ],
        "BatchNorm already computes in float64 in every framework, so it would be recorded, yet change nothing. "
        "Received: --bn-statistics float64 for scratch-convnet3-digits, in float64. To fix, drop --bn-statistics "
        "float64.",
    ),
    # the suite's own float64 cases: the refusal said "under --precision float64" to a user who had given none
    "BatchNorm statistics in float64 for a suite that trains in float64": (
        ["run", "--suite", "zoo_smoke", "--bn-statistics", "float64"],
        "Received: --bn-statistics float64 for scratch-resnet20-digits, in float64. To fix, drop --bn-statistics "
        "float64, or add --precision float32 to train the suite's float64 cases in float32",
    ),
    # argparse's abbreviations read it as --seeds 42: 84 trials, exit 0
    "an abbreviated option": (
        [*MLP_RUN, "--seed", "42"],
        "Received: --seed 42, which it does not take. To fix, drop or correct them. --seed: did you mean --seeds? "
        "(--seeds K runs K seeds; a search's "
        "sampling seed is --search-seed)",
    ),
    "a shortened option": (
        [*MLP_RUN, "--cpus", "2"],
        "Received: --cpus 2, which it does not take. To fix, drop or correct them. --cpus: did you mean "
        "--cpus-per-trial?",
    ),
    # an unset shell variable in --suite "$SUITE" ran the quick suite
    "an empty suite name": (["run", "--suite", ""], "Expected --suite: a name. Received: ''"),
    # before, its 8 samples trained 2 configurations, 6 of them again to the same numbers
    "a random search over choices that repeats its points": (
        [*CNN_TUNE, "--space", "optimizer=choice:momentum,adam"],
        "Received: 8 sample(s) (--num-samples 8) over 2 point(s), where 6 repeat (sample 1 repeats sample 0; sample 2 "
        "repeats sample 0; sample 4 repeats sample 3; ...). To fix, use --search grid to train each combination once",
    ),
    # before, the adam samples trained without the decay and the momentum samples with it, each recorded so
    "a setting beside a searched optimizer": (
        [*CNN_TUNE, "--weight-decay", "0.001", "--space", "optimizer=choice:momentum,adam"],
        "Received: optimizer.weight_decay=0.001, which some samples would train with and others not. To fix, search it "
        "too (--space weight_decay=choice:0.001: every sample then sets it, where its optimizer reads it)",
    ),
    # before, the onecycle samples recorded momentum 0.5 and trained with 0.95 -> 0.85 -> 0.95, as at 0.9
    "a momentum beside a searched schedule that cycles it": (
        [*CNN_TUNE, "--momentum", "0.5", "--space", "schedule=choice:constant,onecycle", "--search", "grid"],
        "Expected no optimizer.momentum beside a searched schedule that includes onecycle: its samples cycle the "
        "momentum themselves, so they would record the value and train without it. Received: optimizer.momentum=0.5 "
        "(given as --momentum)",
    ),
    # before, accepted: the target's BatchNorm is frozen, but its backbone's pretrain trial trains it at batch 1
    # (torch refused the batch, TensorFlow diverged) and every target was skipped
    "batches of one for a transfer whose run pretrains a BatchNorm backbone": (
        [*MLP_RUN, "--strategy", "transfer", "--batchnorm", "after", "--batch-size", "1"],
        "Expected batches of 2 samples or more for mlp",
    ),
    "a compiled epoch loop with augmentation": (
        [*MLP_RUN, "--model", "cnn_small", "--backend", "tensorflow", "--epoch-loop", "compiled", "--augment", "flip"],
        "Received: --epoch-loop compiled and --augment flip. To fix, drop --epoch-loop compiled to train with "
        "augmentation, or drop the augmentation to time the compiled loop.",
    ),
    # before, it trained AlexNet at 227x227 on the CPU for hours, a GPU machine's too (no trial asked Ray for a GPU)
    # before, Ray refused it once Tune had started: a traceback, and a run recorded as interrupted
    "a GPU count Ray cannot schedule": (
        [*MLP_RUN, "--gpus-per-trial", "1.5"],
        "Expected --gpus-per-trial: 0 or a share of one GPU up to 1 (a trial trains on one GPU: neither backend "
        "spreads it over several, so more would sit idle, reserved). Received: 1.5. To fix, give 1, or a share such "
        "as 0.5 to fit several trials on one GPU.",
    ),
    # before, a trial reserved two GPUs and trained on the first, the other idle and unavailable to other trials
    "GPUs a trial would not use": ([*MLP_RUN, "--gpus-per-trial", "2"], "Received: 2. To fix, give 1"),
    "a GPU share below Ray's unit": (
        [*MLP_RUN, "--gpus-per-trial", "0.00001"],
        "Expected --gpus-per-trial: 0 or a share of at least 0.0001 GPU (Ray's smallest unit). Received: 1e-05. "
        "To fix, give 0 to train on the CPU, or at least 0.0001.",
    ),
    "a suite sized for GPUs without --gpus-per-trial": (
        ["run", "--suite", "s1_alexnet_gpu"],
        "Expected --gpus-per-trial (1, or a fraction of a GPU) for s1_alexnet_gpu, sized for GPUs: each trial takes "
        "hours on CPUs. Received: no GPU asked for, so every trial would train on the CPU. To fix, add "
        "--gpus-per-trial 1 on a machine or cluster with GPUs, run the tier a CPU runs in minutes: s1_alexnet_quick, "
        "or give --gpus-per-trial 0 to train it on CPUs anyway.",
    ),
    # before, it trained the search's base configuration alone, under the suite's name
    "a search suite given to run": (
        ["run", "--suite", "tune_smoke"],
        "Expected a suite of cases to run. Received: suite tune_smoke, a search over optimizer.lr, optimizer.name",
    ),
    # before, each was applied to every case: opt_sgd, opt_rmsprop, ... trained with Adam under their own labels
    "an option that would erase a suite's optimizer variants": (
        ["run", "--suite", "techniques", "--optimizer", "adam"],
        "Expected options given for suite techniques to leave the settings that make its variants alone. Received: "
        "--optimizer adam, but its cases set optimizer.name differently: scratch-mlp+opt_sgd-digits has",
    ),
    "an option that would erase a suite's init variants": (
        ["run", "--suite", "techniques", "--init", "he_normal"],
        "Received: --init he_normal, but its cases set init differently",
    ),
    "an option that would erase the speed matrix's precision variants": (
        ["run", "--suite", "speed_matrix", "--precision", "float32"],
        "Received: --precision float32, but its cases set runtime.precision differently: scratch-mlp+default-digits "
        "has runtime.precision='float32', scratch-mlp+bf16-digits has runtime.precision='mixed_bfloat16'.",
    ),
    "an option that would erase the speed matrix's tf modes": (
        ["run", "--suite", "speed_matrix", "--tf-mode", "custom"],
        "Received: --tf-mode custom, but its cases set runtime.tf_mode differently",
    ),
    "a switch that would erase the speed matrix's compile variant": (
        ["run", "--suite", "speed_matrix", "--backend", "torch", "--torch-compile"],
        "Received: --torch-compile, but its cases set runtime.torch_compile differently",
    ),
    # before, scratch ran and config_json recorded the head as if a scikit-learn classifier had been fitted
    "an option its strategy does not read": (
        [*MLP_RUN, "--sklearn-head", "rbf_svc"],
        "Expected only options that strategy scratch reads (scratch-mlp-digits). Received: --sklearn-head 'rbf_svc', "
        "read by deep_features. Given, it would be recorded with the results, yet change nothing. To fix, drop it,",
    ),
    "a search over an option its strategy does not read": (
        [*CNN_TUNE, "--space", "sklearn_head=choice:linear_svc,rbf_svc"],
        "Expected only searched options that strategy scratch reads (scratch-cnn_small-digits). Received: "
        "transfer.sklearn_head in the search space",
    ),
    # every sample would train the same network: a whole search spent on nothing
    "a searched model option that changes no network": (
        [*CNN_TUNE, "--model", "convnet3", "--space", "model_options.bn_decay=uniform:0.8,0.99"],
        "Received: bn_decay=0.8 on convnet3, which has no BatchNorm layer (--batchnorm before|after adds them",
    ),
    # the refusal listed field names (bn_decay, bn_running_variance ...) that no flag sets, and the activation hint
    # for a model that takes no activation
    "a model option the model does not use, named by its flag": (
        ["model", "resnet18", "--dropout", "0.3"],
        "Expected only options that model 'resnet18' uses (--bn-variance, --width-multiplier). Received: --dropout "
        "0.3. To fix, drop them,",
    ),
    # the refusal named config fields (patience=0) and told the user to "pick the schedule they belong to"
    "a schedule setting its schedule does not read": (
        [*MLP_RUN, "--schedule", "power", "--plateau-patience", "0", "--plateau-factor", "0.2"],
        "Expected only the settings the power schedule reads (--schedule-power, --schedule-steps). Received: "
        "--plateau-factor 0.2, --plateau-patience 0, which it would ignore. To fix, drop them, or choose the schedule "
        "that reads them: --plateau-factor, --plateau-patience: --schedule plateau.",
    ),
    "an activation alpha its activation does not take": (
        ["model", "mlp", "--activation-alpha", "0.2"],
        "--hidden; --activation-alpha with leaky_relu or elu only). Received: --activation-alpha 0.2. To fix, drop "
        "them,",
    ),
    # the first suite was dropped without a word: half of what was asked for ran, exit 0
    "a second suite": (
        ["run", "--suite", "smoke", "--suite", "quick"],
        "Expected one --suite per command. Received: --suite smoke, then --suite quick. To fix, give one,",
    ),
    # recorded among the settings, yet every image kept its size: nothing resized, nothing cropped
    "a resize mode without a size to resize to": (
        [*MLP_RUN, "--resize-mode", "resize-crop"],
        "Expected --input-size N with --resize-mode resize-crop (images resized to about N / 0.875, then a centred NxN "
        "crop). Received: no input size for scratch-mlp-digits, so its images keep their 8x8",
    ),
    # one sample per batch: torch refused BatchNorm1d in the worker, TensorFlow's moving variance turned NaN
    "a batch of one sample for BatchNorm on flat features": (
        [*MLP_RUN, "--batchnorm", "after", "--batch-size", "1"],
        "Expected batches of 2 samples or more for mlp, whose BatchNorm fc1_bn sees one value per channel for each "
        "sample (flat features, or 1x1 maps)",
    ),
    # layer4's maps are 1x1 at 32x32: one image gives each channel one value, as a Dense layer's output would
    "a batch of one sample for BatchNorm on 1x1 maps": (
        ["run", "--strategy", "scratch", "--model", "resnet18", "--dataset", "digits", "--input-size", "32"]
        + ["--batch-size", "1", "--width-multiplier", "0.125"],
        "whose BatchNorm layer4_0_bn1, layer4_0_bn2, layer4_0_downsample_1, layer4_1_bn1, layer4_1_bn2 sees one value",
    ),
    "epochs beyond what the driver can hold": (
        [*MLP_RUN, "--epochs", "100000000000000000000000"],
        "Expected epochs <= 100,000 (each epoch is a row the driver keeps until its trial ends, about 2.4 KB). "
        "Received: epochs=100000000000000000000000",
    ),
    "source epochs beyond what the driver can hold": (
        ["run", "--strategy", "fine_tune", "--model", "mlp", "--dataset", "digits", "--source-epochs", "100001"],
        "Expected --source-epochs <= 100,000",
    ),
    # 10^9 passes over digits' 360 test images keep 10^9 x 360 x 10 logits and float64 probabilities: 40,233 GiB
    "MC-dropout passes beyond this machine's memory": (
        ["run", "--strategy", "scratch", "--model", "cnn_small", "--dataset", "digits", "--mc-dropout", "1000000000"],
        "and 1,000,000,000 MC-dropout passes' test logits and probabilities, 40,233.1 GiB of it)",
    ),
    # before the check, --seeds 10^11 spent minutes building trial configurations before anything was said
    "a run of more trials than a driver can keep": (
        [*MLP_RUN, "--seeds", "100000000000"],
        "Expected at most 100,000 trials in a run. Received: 2 backend(s) × 100000000000 seed(s) = 200,000,000,000",
    ),
    "a suite of more trials than a driver can keep": (
        ["run", "--suite", "quick", "--seeds", "20000"],
        "Received: 3 case(s) of quick on their backends (6) × 20000 seed(s) = 120,000 trials",
    ),
    "a search of more trials than a driver can keep": (
        ["tune", *MLP_RUN[1:], "--num-samples", "100000000000", "--space", "lr=loguniform:0.001,0.1"],
        "Received: 2 search(es) × (100,000,000,000 sample(s) + 3 final seed(s)) = 200,000,000,006 trials",
    ),
    # a search's points meet the checks its base meets: the base (no MC dropout) fits, one sampled value does not
    # an option of the user's own that fails in every point a search samples is refused alone: it blamed a point
    # ("Received: optimizer.lr=0.0001, which fails: ...") and told to narrow the space, which fixes nothing
    "a batch beyond the samples in every point a search samples": (
        ["tune", *MLP_RUN[1:], "--space", "lr=loguniform:1e-4,0.3", "--batch-size", "5000"],
        "xfbench: error: Expected --batch-size at most 1,257, the training samples of the target task (all) of "
        "digits. Received: 5,000 for scratch-mlp-digits",
    ),
    "mc dropout without dropout in every point a search samples": (
        ["tune", *MLP_RUN[1:], "--space", "lr=loguniform:1e-4,0.3", "--mc-dropout", "5"],
        "xfbench: error: Expected a model with dropout for --mc-dropout. Received: mlp has no dropout layer",
    ),
    # the options given for a suite reach every case: the case that cannot take one is named, with why it got it
    "mc dropout given for a suite with a case without dropout": (
        ["run", "--suite", "quick", "--mc-dropout", "5"],
        "(Case scratch-mlp-digits of suite quick: an option given for a suite reaches all its cases.)",
    ),
    "a train limit that cuts classes off": (  # the fixes read as a list: "at least 28, pick classes" lacked its "or"
        [*MLP_RUN, "--train-limit", "5"],
        "To fix, raise --train-limit to at least 28, or pick classes (--classes) that the training split of digits "
        "holds (",
    ),
    "beta1 with an optimizer that does not read it": (  # beta2 was named too, at its default, though not given
        [*MLP_RUN, "--beta1", "0.5"],
        "Received: beta1=0.5. To fix, drop it, or choose --optimizer adam or adamw.",
    ),
    "a spec file resized away from its input": (  # the fix named --input-size, the option at fault, with no size
        [*MLP_RUN, "--model", "mlp8.json", "--input-size", "16"],
        "Received: a spec for (8, 8, 1) and 10 classes. To fix, resize the inputs to the 8x8x1 it takes "
        "(--input-size 8), or export the spec for this task.",
    ),
    "a suite named where an option is expected": (["run", "quick"], "quick: did you mean --suite quick?"),
    "a searched width beyond this machine's memory": (
        ["tune", *MLP_RUN[1:], "--backend", "torch", "--space", "hidden=choice:64,1000000000"],
        "Expected every point the search may sample to fit scratch-mlp-digits on torch. Received: "
        "model_options.hidden=(1000000000,), which fails: Expected a trial that fits in this machine's memory",
    ),
    # run over the test split after training, which no sample scores: every sample trained and validated alike
    "searched MC-dropout passes": (
        [*CNN_TUNE, "--dropout", "0.2", "--space", "mc_dropout_passes=choice:5,10"],
        "Received: mc_dropout_passes in the search space: MC-dropout passes run over the test split after training",
    ),
    "a searched freeze_groups beyond the model's groups": (
        [
            "tune",
            "--strategy",
            "freeze_early",
            "--model",
            "cnn_small",
            "--dataset",
            "digits",
            "--space",
            "freeze_groups=int:1,2",
        ],
        "Received: transfer.freeze_groups=2, which fails: Expected --freeze-groups < 2 for cnn_small",
    ),
    "a searched dropout of 0 under MC dropout": (
        [*CNN_TUNE, "--mc-dropout", "5", "--space", "dropout=choice:0.0,0.5"],
        "Received: model_options.dropout=0.0, which fails: Expected a model with dropout for --mc-dropout",
    ),
    "momentum for adam": (
        [*MLP_RUN, "--optimizer", "adam", "--momentum", "0.5"],
        "Expected no momentum with optimizer adam: it has none, so the value would be recorded but never applied. "
        "Received: momentum=0.5",
    ),
    "beta1 out of range": (
        [*MLP_RUN, "--optimizer", "adam", "--beta1", "1"],
        "Expected 0 <= beta1 < 1 (--beta1, Adam's decay of its first moment). Received: beta1=1.0. To fix, "
        "give a decay",
    ),
    "a class listed twice": (
        [*MLP_RUN, "--classes", "0,1,1"],
        "Expected --classes: two or more distinct classes, each once (the head has one output per class), "
        "such as 0,1,2. Received: '0,1,1' (1 more than once). To fix, list two or more, each once, or leave --classes "
        "out for all of the dataset's classes",
    ),
    "one class": ([*MLP_RUN, "--classes", "3"], "Expected --classes: two or more distinct classes"),
    "one source class, given twice": (  # the fix named --classes
        ["run", "--strategy", "fine_tune", "--model", "mlp", "--dataset", "digits", "--source-classes", "3,3"],
        "Expected --source-classes: two or more distinct classes, each once (the head has one output per "
        "class), such as 0,1,2. Received: '3,3' (3 more than once). To fix, list two or more, each once, or leave "
        "--source-classes out to train the backbone on the target task",
    ),
    "unknown reference": (
        ["run", "--suite", "quick", "--reference", "pytorch"],
        "Expected --reference to be one of ['torch', 'tensorflow']. Received: 'pytorch'. To fix, did you mean "
        "--reference torch?",
    ),
    "epochs searched under asha": (
        ["tune", *MLP_RUN[1:], "--backend", "torch", "--space", "epochs=choice:2,4", "--asha"],
        "Expected no epochs in the search space with --asha",
    ),
    "an asha grace period as long as the trial": (  # Tune asserted grace_period <= max_t, a traceback mid-run
        ["tune", *MLP_RUN[1:], "--epochs", "2", "--space", "lr=uniform:0.01,0.1", "--asha", "--grace-period", "5"],
        "Received: --grace-period 5 for scratch-mlp-digits with 2 epoch(s). To fix, give --grace-period 1 or less",
    ),
    "asha rungs without asha": (
        ["tune", *MLP_RUN[1:], "--space", "lr=uniform:0.01,0.1", "--grace-period", "2", "--reduction-factor", "4"],
        "Expected --asha with --grace-period 2 and --reduction-factor 4",
    ),
    "an option both given and searched": (  # every trial takes the searched value
        ["tune", *MLP_RUN[1:], "--space", "lr=loguniform:0.001,0.1", "--lr", "0.05"],
        "Expected each option either given or searched. Received: optimizer.lr in the search space and given as 0.05",
    ),
    "rho on an optimizer that reads none": (
        [*MLP_RUN, "--optimizer", "sgd", "--rho", "0.5"],
        "Expected no --rho with optimizer sgd: only rmsprop, adadelta read it, so the value would be recorded but "
        "never applied. Received: rho=0.5.",
    ),
    "eps on an optimizer that reads none": (
        [*MLP_RUN, "--eps", "1e-3"],  # the default optimizer: SGD with momentum
        "Expected no --eps with optimizer momentum: only adam, adamw, rmsprop, adagrad, adadelta read it",
    ),
    "a searched eps on an optimizer that reads none": (  # the short name, as beta1's
        [*CNN_TUNE, "--space", "eps=loguniform:1e-8,1e-6"],
        "Expected every value of optimizer.eps to be valid. Received: 1e-08, which fails: Expected no --eps with "
        "optimizer momentum",
    ),
    "rho out of range": ([*MLP_RUN, "--optimizer", "adadelta", "--rho", "1"], "Expected 0 <= rho < 1 (--rho)."),
    "adam's betas on another optimizer": (
        [*MLP_RUN, "--optimizer", "sgd", "--beta1", "0.5"],
        "Expected no --beta1 / --beta2 with optimizer sgd: only adam and adamw read them",
    ),
    "a grid of choices repeated": (  # every repeat the same points from the same seed: the same numbers
        ["tune", *MLP_RUN[1:], "--space", "lr=choice:0.1,0.01", "--search", "grid", "--num-samples", "3"],
        "Expected --num-samples 1 for a grid of choices only",
    ),
    "epochs searched under asha with a long grace period": (  # the epochs are named, not the grace period
        ["tune", *MLP_RUN[1:], "--space", "epochs=int:1,5", "--asha", "--grace-period", "50"],
        "Expected no epochs in the search space with --asha",
    ),
    "a grid of ranges only": (
        ["tune", *MLP_RUN[1:], "--space", "lr=uniform:0.01,0.1", "--search", "grid"],
        "Expected a choice:... domain in the space with --search grid",
    ),
    "the baselines folder as a run id": (
        [*MLP_RUN, "--run-id", "baselines"],
        "Expected --run-id other than 'baselines'. Received: 'baselines', the folder of --results-dir that holds",
    ),
    "unknown backend": (
        ["run", "--suite", "smoke", "--backend", "mxnet"],
        "Expected --backend to be one of ['tensorflow', 'torch']. Received: 'mxnet'",
    ),
    "unknown model": (
        ["run", "--strategy", "scratch", "--model", "resnet0", "--dataset", "digits"],
        "Expected a model as a zoo name",
    ),
    "unknown dataset": (
        ["run", "--strategy", "scratch", "--model", "mlp", "--dataset", "imagenet"],
        "Received: 'imagenet'",
    ),
    "unknown strategy": (  # not pretrain, which xfbench schedules itself and refuses on its own
        ["run", "--strategy", "magic", "--model", "mlp", "--dataset", "digits"],
        "Expected --strategy to be one of ['deep_features', 'feature_extraction', 'fine_tune', 'freeze_early', "
        "'scratch', 'transfer']",
    ),
    "unknown suite": (["run", "--suite", "nightly"], "Expected --suite to be one of"),
    "unknown optimizer": (["run", "--suite", "smoke", "--optimizer", "lion"], "Expected --optimizer to be one of"),
    "epochs < 1": (["run", "--suite", "smoke", "--epochs", "0"], "a number >= 1. Received: 0."),
    "seeds < 1": (["run", "--suite", "smoke", "--seeds", "-2"], "a number >= 1. Received: -2."),
    "epochs not a number": (["run", "--suite", "smoke", "--epochs", "ten"], "a whole number. Received: 'ten'."),
    "negative lr": (["run", "--suite", "smoke", "--lr", "-0.1"], "Expected --lr: a number > 0"),
    "unreadable data dir": (
        ["run", "--suite", "smoke", "--data-dir", "/nonexistent/xfbench"],
        "Expected --data-dir to be a readable directory",
    ),
    "suite and case": (
        ["run", "--suite", "smoke", "--model", "mlp"],
        "Expected either --suite or --strategy/--model/--dataset",
    ),
    "incomplete case": (
        ["run", "--strategy", "scratch", "--model", "mlp"],
        "Expected --strategy, --model and --dataset together",
    ),
    "too many cpus": (["run", "--suite", "smoke", "--cpus-per-trial", "512"], "Expected --cpus-per-trial <="),
    "unknown schedule": (["run", "--suite", "smoke", "--schedule", "cosine"], "Expected --schedule to be one of"),
    "bad piecewise": (
        ["run", "--suite", "smoke", "--piecewise", "10,20:0.1"],
        "Expected len(values) == len(boundaries) + 1",
    ),
    # said "0 values, 0 boundaries", not that --piecewise was missing
    "a piecewise schedule without its steps": (
        ["run", "--strategy", "scratch", "--model", "mlp", "--dataset", "digits", "--schedule", "piecewise"],
        "Expected --piecewise BOUNDARIES:RATES with --schedule piecewise (its steps and the rate from each). "
        "Received: no --piecewise. To fix, give one, e.g.",
    ),
    "a missing weight file": (
        ["run", "--strategy", "feature_extraction", "--model", "mlp", "--dataset", "digits", "--weights", "no.pth"],
        "no.pth, which does not exist. To fix, check the path (a relative one is read from the working directory)",
    ),
    "bad activation": (
        ["run", "--suite", "smoke", "--activation", "relux"],
        "Received: 'relux'. To fix, did you mean --activation relu or --activation relu6? Otherwise pick one",
    ),
    # a typo was answered with the list alone
    "a mistyped zoo model": (
        [*MLP_RUN, "--model", "cnn_smal"],
        "Received: model='cnn_smal'. To fix, did you mean --model cnn_small? Otherwise give one of the zoo names",
    ),
    "an initializer named by half": (
        [*MLP_RUN, "--init", "glorot"],
        "To fix, did you mean --init glorot_normal or --init glorot_uniform? Otherwise pick one of those.",
    ),
    "bad sklearn head": (
        ["run", "--strategy", "deep_features", "--model", "cnn_small", "--dataset", "digits", "--sklearn-head", "knn"],
        "Expected a scikit-learn head. Received: 'knn'. To fix, pick one of ['linear_svc'",
    ),
    "bad binary task": (
        [
            "run",
            "--strategy",
            "scratch",
            "--model",
            "mlp",
            "--dataset",
            "digits",
            "--classes",
            "1,2,3",
            "--binary-positive",
            "2",
        ],
        "Expected --binary-positive to be one of exactly two --classes",
    ),
    "bad plateau factor": (
        ["run", "--suite", "smoke", "--schedule", "plateau", "--plateau-factor", "2"],
        "Expected 0 < factor < 1",
    ),
    "plateau threshold of 1": (
        ["run", "--suite", "smoke", "--schedule", "plateau", "--plateau-threshold", "1"],
        "Expected 0 <= threshold < 1 for reduce-on-plateau (--plateau-threshold",
    ),
    "searched negative patience": (
        [
            "tune",
            "--suite",
            "tune_smoke",
            "--schedule",
            "plateau",
            "--space",
            "schedule.patience=int:-1,2",
        ],
        "Expected a whole number >= 0 of epochs for reduce-on-plateau's patience",
    ),
    "tune without a space": (
        ["tune", "--strategy", "scratch", "--model", "mlp", "--dataset", "digits"],
        "Expected a search space",
    ),
    "space bounds reversed": (
        ["tune", "--suite", "tune_smoke", "--space", "lr=uniform:1,0.1"],
        "Expected LO < HI for optimizer.lr",
    ),
    "unknown search option": (
        ["tune", "--suite", "tune_smoke", "--space", "learning_rate=uniform:0.1,1"],
        "Expected a searchable option",
    ),
    "invalid choice": (
        ["tune", "--suite", "tune_smoke", "--space", "optimizer=choice:adam,lion"],
        "Expected every value of optimizer.name",
    ),
    "values valid only apart": (
        ["tune", "--suite", "tune_smoke", "--space", "momentum=uniform:0.5,0.9"],  # the suite searches adam too
        "Expected every combination of the searched values to be valid",
    ),
    "unknown search algorithm": (
        ["tune", "--suite", "tune_smoke", "--search", "bayes"],
        "Expected --search in ['random', 'grid', 'optuna']",
    ),
    "unknown metric": (
        ["tune", "--suite", "tune_smoke", "--metric", "test_acc"],
        "Expected --metric in ['val_acc', 'val_loss']",
    ),
    "seeds in a tune": (["tune", "--suite", "tune_smoke", "--seeds", "3"], "Expected --final-seeds K with tune"),
    "negative max failures": (
        ["run", "--suite", "smoke", "--max-failures", "-1"],
        "a number >= 0. Received: -1.",
    ),
    "resume an unknown run": (["run", "--resume", "no-such-run"], "which has no run.json there"),
    "resume with a suite": (
        ["run", "--resume", "finished-run", "--suite", "smoke"],
        "Expected --resume with execution options only",
    ),
    # --help lists it among the execution options, and the fix said to leave it out, whatever moved the data
    "resume with --data-dir": (
        ["run", "--resume", "finished-run", "--data-dir", "elsewhere"],
        "Received: --data-dir. To fix, leave it out; where that folder moved, link its old path to the new one",
    ),
    # before, each was accepted and changed nothing: the recorded normalisation kept, nothing downloaded either way
    "resume with --normalize weights or --no-download": (
        ["run", "--resume", "finished-run", "--normalize", "weights", "--no-download"],
        "Received: ['--normalize', '--no-download']. To fix, leave them out",
    ),
    # before, accepted without weights: nothing recorded, nothing changed
    "--normalize weights without weights": (
        [*MLP_RUN, "--normalize", "weights"],
        "Expected --pretrained or --weights with --normalize weights",
    ),
    # before, a suite with no pretrained case dropped it without a word
    "--normalize weights on a suite without weights": (
        ["run", "--suite", "quick", "--normalize", "weights"],
        "Received: --suite quick, none of whose selected cases does, so it would change nothing",
    ),
    # before, --dropout 0 left rate-0 dropout layers that the dropout kind and mask source were taken to meet
    "a dropout kind with every dropout rate 0": (
        [*MLP_RUN, "--model", "cnn_small", "--dropout", "0", "--alpha-dropout"],
        "dropout_kind='alpha' on cnn_small, which has no dropout layer that drops anything (its dropout layers are at "
        "rate 0)",
    ),
    # before, torch's and TensorFlow's targets each fine-tuned a backbone of their own (one trained without XLA)
    "a backbone whose compiled masks only one backend's trials ask for": (
        ["run", "--strategy", "fine_tune", "--model", "mlp", "--dataset", "digits", "--dropout", "0.2"]
        + ["--dropout-rng", "framework", "--jit-compile", "--source-backend", "tensorflow"],
        "Received: backbones whose training differs in framework_masks_from (torch's '', tensorflow's 'jit_compile')",
    ),
    # before, the advice was to use cnn_small, the model in use
    "MC dropout on a model whose dropout is at rate 0": (
        [*MLP_RUN, "--model", "cnn_small", "--dropout", "0", "--mc-dropout", "4"],
        "has no dropout layer with a rate > 0. To fix, give --dropout a rate above 0",
    ),
    # before, told to add --dropout, which convnet3 (and the residual families) refuse in turn
    "MC dropout on a model that takes no --dropout": (
        [*MLP_RUN, "--model", "convnet3", "--mc-dropout", "4"],
        "To fix, use a model with dropout (cnn_small, or mlp with --dropout RATE): convnet3 takes no --dropout.",
    ),
    # before, accepted, and the summary named a seed that chose nothing
    "a search seed for a grid of choices only": (
        [*CNN_TUNE, "--search", "grid", "--space", "lr=choice:0.1,0.01", "--search-seed", "7"],
        "Received: --search-seed 7 for a grid of choices only",
    ),
    "a search seed for a suite's grid of choices only": (
        ["tune", "--suite", "tune_smoke", "--search", "grid", "--space", "lr=choice:0.1,0.01", "--search-seed", "7"],
        "Received: --search-seed 7 for a grid of choices only",
    ),
    "resume with a backend": (
        ["run", "--resume", "finished-run", "--backend", "torch", "--seeds", "3"],
        "Received: ['--backend', '--seeds']. To fix, leave them out",
    ),
    "resume with trial options, named by their flags": (
        ["run", "--resume", "finished-run", "--lr", "0.1", "--piecewise", "2:0.1,0.01", "--data-dir", "."],
        "Received: ['--data-dir', '--lr', '--piecewise']. To fix, leave them out",
    ),
    "resume a tune with other search options": (
        ["tune", "--resume", "a-tune", "--num-samples", "4", "--asha", "--final-seeds", "2"],
        "Received: ['--num-samples', '--asha', '--final-seeds']",
    ),
    "resume a tune with search options at their defaults": (
        ["tune", "--resume", "a-tune", "--search", "random", "--metric", "val_acc", "--search-seed", "0"],
        "Received: ['--search', '--search-seed', '--metric']",
    ),
    "resume a finished run": (
        ["run", "--resume", "finished-run"],
        "Expected an interrupted run, or a finished one with failed trials. Received: 'finished-run' finished at",
    ),
    "resume a finished search": (
        ["tune", "--resume", "finished-tune"],
        "Expected an interrupted search, or a finished one whose final stage has failed trials. Received: "
        "'finished-tune' finished at",
    ),
    "resume a tune as a run": (
        ["run", "--resume", "a-tune"],
        "Expected a run made by `xfbench run` for `xfbench run --resume`. Received: 'a-tune', made by `xfbench tune`. "
        "To fix, use `xfbench tune --resume`",
    ),
    "resume onto a gpu": (
        ["run", "--resume", "interrupted-run", "--gpus-per-trial", "1"],
        "Expected --gpus-per-trial to keep the recorded device (cpu",
    ),
    # options a backend cannot honour, when no selected backend can
    "jit-compile on torch only": (
        ["run", "--suite", "smoke", "--backend", "torch", "--jit-compile"],
        "Expected --jit-compile to apply to a selected backend (only ['tensorflow']",
    ),
    "torch-compile on tensorflow only": (
        ["run", "--suite", "smoke", "--backend", "tensorflow", "--torch-compile"],
        "Expected --torch-compile to apply to a selected backend (only ['torch']",
    ),
    # input that used to fail only inside a worker
    "freeze every group": (
        ["run", "--strategy", "freeze_early", "--model", "cnn_small", "--dataset", "digits", "--freeze-groups", "2"],
        "Expected --freeze-groups < 2 for cnn_small (its layer groups are ['features', 'classifier']). Received: "
        "freeze_groups=2, which would leave nothing to train. To fix, give --freeze-groups 1 (at most 1:",
    ),
    "freeze no group": (  # trained the whole network at one rate, recorded as freeze_early
        ["run", "--strategy", "freeze_early", "--model", "cnn_small", "--dataset", "digits", "--freeze-groups", "0"],
        "Expected --freeze-groups of at least 1 for strategy freeze_early: it freezes the first k layer groups of "
        "cnn_small (['features', 'classifier']) and fine-tunes the rest. Received: --freeze-groups 0, which freezes "
        "nothing. To fix, give --freeze-groups 1, or use --strategy fine_tune (the backbone at a lower rate than the "
        "head) or --strategy scratch to train every layer.",
    ),
    "unknown feature layer": (
        [
            "run",
            "--strategy",
            "deep_features",
            "--model",
            "cnn_small",
            "--dataset",
            "digits",
            "--feature-layer",
            "conv9",
        ],
        "Expected --feature-layer to be a layer of cnn_small. Received: feature_layer='conv9'. To fix, pick one",
    ),
    "pooling a flat feature layer": (  # a no-op, yet recorded and part of the feature cache's key
        ["run", "--strategy", "deep_features", "--model", "cnn_small", "--dataset", "digits"]
        + ["--feature-layer", "fc1", "--feature-pool", "avg"],
        "Expected --feature-pool 'avg' on a layer whose output is a feature map (height, width, channels) for "
        "deep_features-cnn_small-digits: it averages over height and width. Received: --feature-layer 'fc1' of "
        "cnn_small, whose output has shape (128,): there is nothing to pool. To fix, drop --feature-pool, or a "
        "--feature-layer whose output is a map, such as ['act2', 'pool', 'drop1'].",
    ),
    "pooling the default feature layer": (
        ["run", "--strategy", "deep_features", "--model", "cnn_small", "--dataset", "digits", "--feature-pool", "avg"],
        "Received: the default feature layer 'drop2' (the head's input) of cnn_small, whose output has shape (128,)",
    ),
    "class out of range": (
        ["run", "--strategy", "scratch", "--model", "mlp", "--dataset", "digits", "--classes", "3,10"],
        "Expected classes among 0..9 of digits. Received: classes=(3, 10)",
    ),
    "source class out of range": (
        [
            "run",
            "--strategy",
            "fine_tune",
            "--model",
            "cnn_small",
            "--dataset",
            "digits",
            "--classes",
            "0,1,2,3,4",
            "--source-classes",
            "5,6,7,8,12",
        ],
        "Expected classes among 0..9 of digits. Received: classes=(5, 6, 7, 8, 12)",
    ),
    # refused before the data is looked for: online, CIFAR-10's 170 MB were downloaded first
    "class out of range, the data not there": (
        ["run", "--strategy", "scratch", "--model", "mlp", "--dataset", "cifar10"]
        + ["--classes", "0,11", "--no-download"],
        "Expected classes among 0..9 of cifar10. Received: classes=(0, 11). To fix, pick --classes",
    ),
    "train limit above the samples there are": (
        ["run", "--strategy", "scratch", "--model", "mlp", "--dataset", "digits", "--classes", "0,1"]
        + ["--train-limit", "300"],
        "Expected --train-limit at most 257, the training samples of classes 0,1 in digits. Received: 300 for "
        "scratch-mlp-digits. To fix, lower --train-limit to 257 or less",
    ),
    "negative frozen epochs": (
        ["run", "--strategy", "transfer", "--model", "cnn_small", "--dataset", "digits", "--frozen-epochs", "-1"],
        "Expected --frozen-epochs: a number >= 0. Received: -1.",
    ),
    "frozen epochs beyond the epochs": (  # never unfrozen, yet recorded as frozen for 3 of 2 epochs
        ["run", "--strategy", "transfer", "--model", "cnn_small", "--dataset", "digits", "--epochs", "2"]
        + ["--frozen-epochs", "3"],
        "Expected --frozen-epochs at most --epochs for transfer-cnn_small-digits: the reused layers are frozen for "
        "that many epochs, then trained for the rest. Received: --frozen-epochs 3 (given, or the suite case's own) "
        "with --epochs 2, so they would never unfreeze. To fix, give --frozen-epochs 0 or 1 to train them unfrozen "
        "too, 2 to keep them frozen throughout, or --epochs 4 or more",
    ),
    "frozen epochs beyond a single epoch": (  # was told to give "0 or less", when 0 is the one value below 1
        ["run", "--strategy", "transfer", "--model", "cnn_small", "--dataset", "digits", "--epochs", "1"]
        + ["--frozen-epochs", "3"],
        "To fix, give --frozen-epochs 0 (unfrozen from the start) to train them unfrozen too, 1 to keep them frozen "
        "throughout, or --epochs 4 or more",
    ),
    "searched epochs below the frozen epochs": (
        ["tune", "--strategy", "transfer", "--model", "cnn_small", "--dataset", "digits", "--frozen-epochs", "2"]
        + ["--space", "epochs=choice:1,4"],
        "Expected every point the search may sample to fit transfer-cnn_small-digits on torch. Received: epochs=1, "
        "which fails: Expected --frozen-epochs at most --epochs",
    ),
    "lr under a piecewise schedule": (  # its values are the rates: --lr was recorded, never applied
        [*MLP_RUN, "--piecewise", "2:0.1,0.01", "--lr", "0.5"],
        "Expected no optimizer.lr with the piecewise schedule (scratch-mlp-digits): its values are the rates",
    ),
    "momentum under 1cycle": (  # 1cycle cycles the momentum itself
        [*MLP_RUN, "--schedule", "onecycle", "--momentum", "0.5"],
        "Expected no optimizer.momentum with the onecycle schedule (scratch-mlp-digits): it cycles the momentum",
    ),
    "a searched lr under a piecewise schedule": (  # every sample trained alike
        ["tune", *MLP_RUN[1:], "--piecewise", "2:0.1,0.01", "--space", "lr=loguniform:0.001,0.1"],
        "which fails: Expected no optimizer.lr with the piecewise schedule",
    ),
    "a piecewise boundary past the last step": (  # its rate never reached, yet recorded
        [*MLP_RUN, "--epochs", "1", "--piecewise", "100:0.1,0.01"],
        "Expected piecewise boundaries below the 20 training steps of scratch-mlp-digits (1 epoch of 20 batches). "
        "Received: boundaries=(100,)",
    ),
    # 1 or 2 steps: the cycle never climbed past a tenth of --lr, yet the rows recorded 1cycle peaking at it
    "a 1cycle too short to reach its peak": (
        [*MLP_RUN, "--epochs", "2", "--batch-size", "1257", "--schedule", "onecycle"],
        "Expected at least 3 training steps in each 1cycle of scratch-mlp-digits: one up to the peak rate --lr, the "
        "peak, and the annealed last step. Received: 2 step(s) (2 epoch(s) of 1 batch(es) of 1257)",
    ),
    "a 1cycle too short in one of transfer's phases": (
        [*MLP_RUN, "--strategy", "transfer", "--hidden", "16", "--epochs", "3", "--frozen-epochs", "1"]
        + ["--source-epochs", "1", "--batch-size", "1257", "--schedule", "onecycle"],
        "Expected at least 3 training steps in each 1cycle of transfer-mlp-digits's frozen phase (transfer runs a "
        "cycle in each): one up to the peak rate --lr, the peak, and the annealed last step. Received: 1 step(s)",
    ),
    "a negative piecewise rate": (  # gradient ascent, status ok
        [*MLP_RUN, "--piecewise", "2:0.1,-0.01"],
        "Expected piecewise learning rates > 0 and finite. Received: values=(0.1, -0.01).",
    ),
    "mc dropout without dropout": (
        ["run", "--strategy", "scratch", "--model", "mlp", "--dataset", "digits", "--mc-dropout", "5"],
        "Expected a model with dropout for --mc-dropout",
    ),
    "mc dropout on a binary task": (
        [
            "run",
            "--strategy",
            "scratch",
            "--model",
            "cnn_small",
            "--dataset",
            "digits",
            "--classes",
            "1,2",
            "--binary-positive",
            "2",
            "--mc-dropout",
            "5",
        ],
        "Expected a multi-class task for --mc-dropout",
    ),
    "bad dropout rng": (
        ["run", "--suite", "smoke", "--dropout-rng", "numpy"],
        "Received: 'numpy'. To fix, pick one of those",
    ),
    "run id outside the results directory": (
        ["run", "--suite", "smoke", "--run-id", "../elsewhere"],
        "Expected --run-id as letters, digits, '.', '_' and '-'",
    ),
    "run id of the results directory's own": (["run", "--suite", "smoke", "--run-id", "_ray"], "Received: '_ray'"),
    "unknown option": (
        ["run", "--suite", "smoke", "--bogus"],
        "Received: --bogus, which it does not take. To fix, drop or correct it.",
    ),
    "a word a sub-command does not take": (  # named against `baseline list`, not the top level
        ["baseline", "list", "extra"],
        "xfbench baseline list: error: Expected only the options and arguments of `xfbench baseline list`. Received: "
        "extra, which it does not take. To fix, drop or correct it. See `xfbench baseline list --help` for the",
    ),
    # `xfbench list models` was "unrecognized arguments: models", with no word that list takes a kind or which
    "a kind the catalogue does not have": (
        ["list", "modles"],
        "xfbench list: error: Expected KIND: a kind of the catalogue, one of suites, strategies, models, "
        "datasets, backends, optimizers, initializers (none: all of them). Received: 'modles'. To fix, give one of "
        "those, or leave KIND out",
    ),
    "baseline without what to do": (
        ["baseline"],
        "xfbench baseline: error: Expected one of save, list (required). Received: none. To fix, give one of save, "
        "list. See",
    ),
    "a reference backend the run does not train": (
        ["run", "--suite", "smoke", "--backend", "torch", "--reference", "tensorflow"],
        "Expected --reference to be one of the backends this run trains, ['torch']. Received: 'tensorflow'.",
    ),
    "a value read as a flag": (  # argparse takes -1,2 for an option; the message says how to pass it
        ["run", "--suite", "smoke", "--classes", "-1,2"],
        "Expected --classes with a value. Received: --classes with none (a value starting with '-' reads as an "
        "option). To fix, give --classes a value; if the value starts with '-', write --classes=VALUE.",
    ),
    # argparse's own "argument --no-download: ignored explicit argument 'yes'" named no fix
    "a value given to a switch": (
        ["run", "--suite", "smoke", "--no-download=yes"],
        "Expected --no-download without a value (a switch). Received: the value 'yes'. To fix, write --no-download "
        "alone.",
    ),
    "a value given to a switch with a --no- form": (
        ["run", "--suite", "smoke", "--fresh-workers=no"],
        "Expected --fresh-workers or --no-fresh-workers without a value (a switch). Received: the value 'no'. To "
        "fix, write --fresh-workers to turn it on, --no-fresh-workers to turn it off.",
    ),
    # Commands other than run and tune: bad input is theirs to name too (the files are written by the fixture).
    "a spec file that is not a spec": (["model", "not_a_spec.json"], "Expected a model spec file as `xfbench model"),
    # before, recorded in config_json while the features were only extracted (nothing drew a dropout mask)
    "a dropout mask source for deep_features from a weights file": (
        [*MLP_RUN, "--strategy", "deep_features", "--hidden", "16", "--dropout", "0.2", "--weights", "mlp16.npz"]
        + ["--dropout-rng", "framework"],
        "dropout_rng='framework' on mlp, which has no dropout layer that drops anything (its dropout layers are in a "
        "network that never trains)",
    ),
    # before, it trained with its augmentation and schedule and saved the backbone under the recipe of one without
    "a pretrain trial of one's own": (
        [*MLP_RUN, "--strategy", "pretrain", "--augment", "flip"],
        "Received: strategy pretrain, which xfbench schedules itself",
    ),
    # before, each was recorded in config_json while a scikit-learn head was fitted on fixed features
    "training options for deep_features from a weights file": (
        [*MLP_RUN, "--strategy", "deep_features", "--hidden", "16", "--weights", "mlp16.npz", "--batch-size", "7"],
        "Received: --batch-size 7, read by scratch, feature_extraction, fine_tune, freeze_early, transfer, "
        "deep_features without --pretrained / --weights.",
    ),
    # before, its pretrain trial ran, then transfer failed in the worker: "optimizer got an empty parameter list"
    "transfer on a spec whose head is outside group classifier": (
        [*MLP_RUN, "--strategy", "transfer", "--model", "head_group.json", "--source-epochs", "1"],
        "Received: its head 'logits' in group 'head' (groups ['features', 'head']), so its frozen epochs would freeze "
        "the head.",
    ),
    # before, --freeze-groups 1 froze the group's late layers too: "the first groups" had no order to go by
    "freeze_early on a spec with a group in two pieces": (
        [*MLP_RUN, "--strategy", "freeze_early", "--model", "split_group.json", "--source-epochs", "1"],
        "Received: group(s) ['features'] interrupted by others (the groups in model order: ['features', 'middle', "
        "'features', 'classifier']).",
    ),
    # before, the check counted both phases' steps: the second rate, past each phase's 20 steps, was never used
    "piecewise boundaries past each of transfer's phases": (
        [*MLP_RUN, "--strategy", "transfer", "--hidden", "16", "--epochs", "2", "--frozen-epochs", "1"]
        + ["--source-epochs", "1", "--piecewise", "30:0.1,0.01"],
        "Expected piecewise boundaries below the 20 training steps of transfer-mlp-digits's longest phase: transfer "
        "runs the schedule anew in each phase (frozen: 1 epoch, unfrozen: 1 epoch, of 20 batches).",
    ),
    "no hidden layer sizes": (
        [*MLP_RUN, "--hidden", ""],
        "Expected --hidden: comma-separated layer sizes >= 1",
    ),
    # a full stop inside the value was read as the end of it, the rest as the fix
    "hidden layer sizes with a full stop": ([*MLP_RUN, "--hidden", "300. 100"], "Received: '300. 100'. To fix, give"),
    # the suggestion named the placeholder: "did you mean COMMAND run?"
    "a mistyped command": (["rnu"], "Received: 'rnu'. To fix, did you mean 'run'? Otherwise pick one of those."),
    "compare at a significance level above 1": (
        ["compare", "finished-run", "finished-run", "--alpha", "2"],
        "Expected --alpha: a probability between 0 and 1 such as 0.01. Received: 2.0.",
    ),
    "compare with an unknown run": (["compare", "no-such-run", "finished-run"], "Expected a run directory, a run id"),
    # it sent the user to `xfbench history` in the same missing folder
    "compare in a results folder that does not exist": (
        ["compare", "no-such-run", "finished-run", "--results-dir", "no-such-folder"],
        "no-such-folder, which does not exist. To fix, give --results-dir the folder the runs were written to",
    ),
    "compare with a damaged table": (["compare", "damaged-run", "finished-run"], "a table that cannot be read"),
    "history over a damaged run.json": (
        ["history", "--results-dir", "damaged-results"],
        "run.json to hold a JSON object as xfbench writes it. Received: JSONDecodeError",
    ),
    "baseline list over a damaged baseline.json": (
        ["baseline", "list", "--results-dir", "damaged-results"],
        "baseline.json to hold a JSON object as xfbench writes it. Received: a JSON list",
    ),
    "baseline list over a baseline.json with fields of the wrong type": (
        ["baseline", "list", "--results-dir", "mistyped-results"],
        "Received: name=5, framework_versions='x'",
    ),
    "baseline list over a missing folder": (
        ["baseline", "list", "--results-dir", "no-such-results"],
        "Received: no-such-results, which does not exist",
    ),
    "baseline of a run with no ok trial": (
        ["baseline", "save", "nightly", "--run", "failed-run"],
        "Expected a run with at least one trial that ended ok to save as a baseline",
    ),
    "baseline saved into a file": (
        ["baseline", "save", "nightly", "--run", "results/rows-run", "--results-dir", "not_a_spec.json"],
        "Expected --results-dir to be a folder xfbench can write",
    ),
    "model with its cache in a file": (
        ["model", "python:eight_by_eight:make", "--results-dir", "not_a_spec.json"],  # a zoo model needs no cache
        "Expected --results-dir to be a folder xfbench can write",
    ),
    "export into a SQLite store that is a folder": (
        ["export", "rows-run", "--mlflow", "sqlite:///results"],
        "to name a SQLite file. Received:",
    ),
    "export into a file that is not a database": (
        ["export", "rows-run", "--mlflow", "sqlite:///not_a_spec.json"],
        "a file that is not one",
    ),
    "export into a folder that is not there": (
        ["export", "rows-run", "--mlflow", "sqlite:///no-folder/mlflow.db"],
        "no-folder is not a folder that exists",
    ),
    "report into a file that is not HTML": (
        ["report", "rows-run", "-o", "report.txt"],
        "Expected --output to name an HTML file (.html). Received: report.txt. To fix, name it e.g. report.html",
    ),
    "report of a table with text in a numeric column": (
        ["report", "mistyped-run", "-o", "mistyped.html"],
        "Received: column epoch_time_s holds values that are not numbers, the first 'x' in row 1 of 1",
    ),
    # before, numbers written as text were said to be values that are not numbers
    "report of a table with numbers written as text": (
        ["report", "text-number-run", "-o", "text.html"],
        "Received: column epoch_time_s holds numbers written as text (such as '0.1949'), not float64 values",
    ),
    # before, a status outside the schema's counted as a failed trial: a trials regression, exit 1
    "compare with a status outside the schema": (
        ["compare", "odd-status-run", "odd-status-run"],
        "Received: status 'OK', not one of ok, failed, diverged, skipped",
    ),
    # before, compared as if each epoch had been measured twice (p-values more significant than the data)
    "compare of a table whose rows are doubled": (
        ["compare", "doubled-run", "rows-run"],
        "Received: 1 row(s) that repeat another row whole (two copies of a table put together?)",
    ),
    "export of a table with a damaged config_json": (
        ["export", "bad-config-run", "--mlflow", "sqlite:///never.db"],
        "Received: a config_json that is not a JSON object ('{bad')",
    ),
    "compare into a missing folder": (
        ["compare", "damaged-run", "damaged-run", "--markdown", "no-folder/cmp.md"],
        "Expected --markdown in an existing folder",
    ),
    "report into a folder that takes no new files": (  # /proc: os.access says writable to root, creating fails
        ["report", "damaged-run", "-o", "/proc/report.html"],
        "Expected --output in a folder xfbench can write. Received: /proc/report.html (/proc takes no new files:",
    ),
    "a spec exported into a folder that takes no new files": (
        ["model", "mlp", "--export-spec", "/proc/mlp.json"],
        "Expected --export-spec in a folder xfbench can write. Received: /proc/mlp.json (/proc takes no new files:",
    ),
    "results into a folder that takes no new files": (
        ["run", "--suite", "smoke", "--results-dir", "/proc/xfbench-results"],
        "Expected --results-dir to be a folder xfbench can write. Received: /proc/xfbench-results (/proc takes no",
    ),
    "report into a missing folder": (
        ["report", "damaged-run", "-o", "no-folder/report.html"],
        "Expected --output in an existing folder",
    ),
    "a spec file whose kernel does not fit": (["model", "big_kernel.json"], "Expected a kernel that fits"),
    "a torchvision name it does not have": (  # the conversion process's own account, not a hint about input sizes
        ["model", "torchvision:resnet1"],
        "Expected a torchvision classification model name. Received: 'resnet1'. To fix, give a name it knows, such "
        "as the closest: resnet18,",
    ),
    "a layer of the user's model the spec does not have": (  # the default fix, in the standard form
        ["model", "python:gelu_net:make", "--input-size", "8", "--input-channels", "1", "--classes", "10"],
        "Received: GELU at '1'. Supported: ",
    ),
    "a published architecture with a layer the spec does not have": (  # told what to use, not to edit torchvision
        ["model", "torchvision:squeezenet1_0", "--input-size", "64", "--classes", "10"],
        "Received: MaxPool2d with ceil_mode or dilation at 'features.2'. Supported: ",
    ),
    "a user's model written for another input size": (  # said in the user's terms, not the converter's
        ["model", "python:eight_by_eight:make", "--input-size", "9", "--input-channels", "1", "--classes", "10"],
        "Expected model eight_by_eight:make to take inputs of 9x9x1. Received: its layer '_1' holds weights of "
        "shape (64, 10) (_1/kernel), where an input of 9x9x1 needs (81, 10).",
    ),
    "a spec file with a misspelt layer field": (  # named as such, not as the constructor's TypeError
        ["model", "misspelt.json"],
        "Expected layer 'fc1' (Dense) with a Dense's fields: type, name, group, inputs, units, use_bias. Received: "
        "unitz (not a field of Dense); no units.",
    ),
    "a spec file without its layers": (
        ["model", "no_layers.json"],
        "Expected a stored spec with the fields name, input_shape, num_classes, layers. Received: one without layers.",
    ),
    "a spec file whose classes disagree with its output": (
        ["model", "seven_classes.json"],
        "to give one logit per class, (7,) for its num_classes 7. Received: an output of shape (10,)",
    ),
    "a zoo model too big for its input": (["model", "alexnet", "--input-size", "16"], "Expected a pool window"),
    "resume with an empty id": (["run", "--resume", ""], "Expected --resume as letters"),
    "an infinite learning rate": (["run", "--suite", "smoke", "--lr", "inf"], "Expected --lr: a finite number"),
    "a searched initializer that does not exist": (  # was found by the workers, after Ray started: exit 1
        ["tune", "--suite", "tune_smoke", "--space", "init=choice:he_normal,bogus"],
        "Expected every value of init to be valid. Received: 'bogus', which fails: Expected an initializer name, "
        "one of",
    ),
    "a float range for a whole-number field": (
        ["tune", "--suite", "tune_smoke", "--space", "batch_size=uniform:16,64"],
        "batch_size is int: use int:LO,HI",
    ),
    "export to a tracking URI MLflow cannot use": (
        ["export", "rows-run", "--mlflow", "bogus://x"],
        "Expected an MLflow tracking URI it can use. Received: --mlflow 'bogus://x'",
    ),
    "export to an in-memory database gone at exit": (
        ["export", "rows-run", "--mlflow", "sqlite://"],
        "Received: 'sqlite://', an in-memory database gone when xfbench exits",
    ),
    "export to a database whose driver is not installed": (
        ["export", "rows-run", "--mlflow", "mysql://nobody@127.0.0.1:1/x"],
        "(No module named 'MySQLdb'). To fix, install that database's Python driver",
    ),
    "resume outside the results directory": (["run", "--resume", "../elsewhere"], "Expected --resume as letters"),
    "export with an empty tracking URI": (["export", "damaged-run", "--mlflow", ""], "Expected a tracking URI"),
    "compare with a table that is not xfbench's": (
        ["compare", "foreign-run", "foreign-run"],
        "Received: rows without trial_id, backend, model",
    ),
    "compare a run that finished no trial": (
        ["compare", "empty-run", "empty-run"],
        "Expected a run with results rows. Received: ",
    ),
    "report on a run that finished no trial": (
        ["report", "empty-run"],
        "whose table has none (no trial of it finished). To fix, pick another run, or finish this one: xfbench run "
        "--resume",
    ),
    "save a baseline from a run that finished no trial": (
        ["baseline", "save", "nightly", "--run", "empty-run"],  # interrupted before any trial finished
        "Expected a finished run to save as baseline 'nightly'.",
    ),
    "search a config instead of a value": (
        ["tune", "--suite", "tune_smoke", "--space", "transfer.source_task=choice:1"],
        "Expected a field of transfer that holds a value. Received: 'transfer.source_task'",
    ),
    "a cluster address nothing answers at": (
        ["run", "--suite", "smoke", "--address", "127.0.0.1:1"],
        "Expected a Ray cluster answering at --address 127.0.0.1:1. Received: no connection",
    ),
    "a cluster address that is not HOST:PORT": (
        ["run", "--suite", "smoke", "--address", "head-node"],
        "Expected --address HOST:PORT of the cluster's head node",
    ),
    # MLflow hung for minutes on a hostless URI
    "export to an http URI without a host": (
        ["export", "rows-run", "--mlflow", "http://"],
        "Expected --mlflow http://HOST[:PORT]. Received: 'http://', no host. To fix, give one, e.g. "
        "http://localhost:5000",
    ),
    # SQLAlchemy's OperationalError after about 100 s of retries: the driver's name hid the folder from the check
    "export to a SQLite URI with a driver, naming a folder": (
        ["export", "rows-run", "--mlflow", "sqlite+pysqlite:///results"],
        "to name a SQLite file. Received:",
    ),
    "export to a tracking server nothing answers at": (
        ["export", "rows-run", "--mlflow", "http://127.0.0.1:1"],
        "Expected an MLflow tracking server answering at --mlflow http://127.0.0.1:1. Received: no connection",
    ),
    "an input size that cannot fit in memory": (
        ["run", "--strategy", "scratch", "--model", "cnn_small", "--dataset", "digits", "--input-size", "20000"],
        "Expected a trial that fits in this machine's memory",
    ),
    "Ray's own local address is a local run, held to this machine's memory": (
        ["run", "--strategy", "scratch", "--model", "cnn_small", "--dataset", "digits", "--input-size", "20000"]
        + ["--address", "local"],
        "Expected a trial that fits in this machine's memory",
    ),
    "Ray's own local address is a local run, held to this machine's CPUs": (
        ["run", "--suite", "smoke", "--address", "local", "--cpus-per-trial", "4096"],
        "Expected --cpus-per-trial <= the ",
    ),
    "bad bn variance": (
        ["run", "--suite", "smoke", "--bn-variance", "sample"],
        "Received: 'sample'. To fix, pick one of those",
    ),
    # before, argparse's prefix stayed ("argument --augment: Expected --augment ..."), with no remedy
    "an augmentation of an unknown kind": (
        [*MLP_RUN, "--augment", "bogus"],
        "xfbench run: error: Expected --augment as comma-separated crop, crop:PADDING (a padding >= 1), flip or none "
        "(e.g. crop,flip). Received: 'bogus'. To fix, give those words only, such as --augment crop:4,flip, or "
        "--augment none for no augmentation. See `xfbench run --help`",
    ),
    "an augmentation given twice": ([*MLP_RUN, "--augment", "crop,crop"], "To fix, give each once (crop:4,flip)"),
    "a rung setting without --asha": (
        ["tune", "--suite", "tune_smoke", "--grace-period", "2"],
        "Received: no --asha. To fix, add --asha, or drop them.",
    ),
    "a reduction factor below 2": (
        ["tune", "--suite", "tune_smoke", "--asha", "--reduction-factor", "1"],
        "Received: --reduction-factor 1. To fix, give a value of 2 or more.",
    ),
    "a run id a run already has": (
        ["run", "--suite", "smoke", "--run-id", "finished-run"],
        "To fix, pick another name (or leave --run-id out for a time-stamped one).",
    ),
    "a run id of the baselines folder": (["run", "--suite", "smoke", "--run-id", "baselines"], "To fix, pick another"),
    "a baseline of no run": (
        ["baseline", "save", "nightly", "--results-dir", "no-runs-here"],
        "Received: no runs in",
    ),
    "a spec export to a file that is not json": (
        ["model", "mlp", "--export-spec", "mlp.txt"],
        "Received: mlp.txt. To fix, name it e.g. mlp.json.",
    ),
    "an export without its required option": (
        ["export", "finished-run"],
        "xfbench export: error: Expected --mlflow (required). Received: none. To fix, give --mlflow.",
    ),
    "no command": ([], "xfbench: error: Expected COMMAND (required). Received: none. To fix, give COMMAND."),
    "a weight set of no hub": (
        ["weights", "fetch", "bogus:thing"],
        "Received: 'bogus:thing'. To fix, name the hub, then the network, such as torchvision:resnet18 or "
        "keras:MobileNetV2.",
    ),
    "a pretrained weight set of no hub": (
        [*MLP_RUN, "--strategy", "fine_tune", "--pretrained", "bogus"],
        "keras:MobileNetV2; for a file of your own, pass --weights FILE.",
    ),
}

# The refusals of cli, cli_options, runner, scheduler, pretrained, compare, report, export and preflight among
# BAD_INPUTS, each read in the standard form.
STANDARD_FORM_CASES = (
    "export with an empty tracking URI",
    # compare, report and export's own (review 167, finding 6; tests/test_refusal_form.py sweeps their modules)
    "export to an in-memory database gone at exit",
    "export to an http URI without a host",
    "export to a SQLite URI with a driver, naming a folder",
    "export to a tracking server nothing answers at",
    "report on a run that finished no trial",
    "compare with a table that is not xfbench's",
    "compare a run that finished no trial",
    "a second suite",
    "--normalize weights without weights",
    "--normalize weights on a suite without weights",
    "a reference backend the run does not train",
    "resume an unknown run",
    "resume with a suite",
    "resume a finished run",
    "resume a finished search",
    "resume a tune as a run",
    "resume onto a gpu",
    "run id outside the results directory",
    "run id of the results directory's own",
    "unknown option",
    "an abbreviated option",
    "a word a sub-command does not take",
    "a kind the catalogue does not have",
    "baseline without what to do",
    "a value read as a flag",
    "a value given to a switch",
    "a value given to a switch with a --no- form",
    "report into a file that is not HTML",
    "an augmentation of an unknown kind",
    "an augmentation given twice",
    "a rung setting without --asha",
    "a reduction factor below 2",
    "a run id a run already has",
    "a run id of the baselines folder",
    "a baseline of no run",
    "a spec export to a file that is not json",
    "an export without its required option",
    "no command",
    "a weight set of no hub",
    "a pretrained weight set of no hub",
    "a torchvision name it does not have",
    "a layer of the user's model the spec does not have",
    "a published architecture with a layer the spec does not have",
    # preflight's (review 169: "Pick one of its layers", "Drop --feature-pool", "Give --freeze-groups 1" without it)
    "a suite sized for GPUs without --gpus-per-trial",
    "freeze every group",
    "freeze no group",
    "unknown feature layer",
    "pooling a flat feature layer",
    "class out of range",
    "a resize mode without a size to resize to",
    "too many cpus",
    "mc dropout on a binary task",
    "a piecewise boundary past the last step",
    "transfer on a spec whose head is outside group classifier",
    "freeze_early on a spec with a group in two pieces",
)

_SCRIPT = """
import contextlib, io, json, sys
from harness.cli import main
out = {}
for name, argv in json.loads(sys.argv[1]).items():
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    out[name] = [code, err.getvalue()]
out["_imported"] = sorted(m for m in ("ray", "torch", "tensorflow") if m in sys.modules)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def bad_input_results(tmp_path_factory):
    empty = tmp_path_factory.mktemp("empty")
    cases = {name: argv for name, (argv, _) in BAD_INPUTS.items()}
    cases["missing data"] = [
        "run",
        "--strategy",
        "scratch",
        "--model",
        "convnet3",
        "--dataset",
        "mnist",
        "--data-dir",
        str(empty),
        "--no-download",
    ]
    cwd = tmp_path_factory.mktemp("cwd")
    for run_id, kind, status in (
        ("finished-run", "run", "finished"),
        ("a-tune", "tune", "interrupted"),
        ("finished-tune", "tune", "finished"),
        ("interrupted-run", "run", "interrupted"),
        ("empty-run", "run", "interrupted"),  # stopped before any trial finished: parts/ holds nothing
    ):
        _write_run_file(cwd / "results" / run_id, kind, status)
    (cwd / "results" / "empty-run" / "parts").mkdir()
    (cwd / "not_a_spec.json").write_text("{layers")
    from harness.checkpoints import save_checkpoint
    from harness.models import ModelOptions, build_spec
    from harness.spec import spec_to_dict
    from harness.weights import initial_weights

    big_kernel = spec_to_dict(build_spec("cnn_small", (28, 28, 1), 10))
    next(layer for layer in big_kernel["layers"] if "kernel_size" in layer)["kernel_size"] = [99, 99]
    (cwd / "big_kernel.json").write_text(json.dumps(big_kernel))
    seven = spec_to_dict(build_spec("cnn_small", (28, 28, 1), 10)) | {"num_classes": 7}  # its last Dense gives 10
    (cwd / "seven_classes.json").write_text(json.dumps(seven))
    misspelt = spec_to_dict(build_spec("mlp", (8, 8, 1), 10))
    misspelt["layers"][1]["unitz"] = misspelt["layers"][1].pop("units")  # a hand edit's typo
    (cwd / "misspelt.json").write_text(json.dumps(misspelt))
    (cwd / "mlp8.json").write_text(json.dumps(spec_to_dict(build_spec("mlp", (8, 8, 1), 10))))
    head_apart = spec_to_dict(build_spec("mlp", (8, 8, 1), 10))  # its head in a group of its own
    head_apart["layers"] = [
        {**layer, "group": layer["group"].replace("classifier", "head")} for layer in head_apart["layers"]
    ]
    (cwd / "head_group.json").write_text(json.dumps(head_apart))
    split = spec_to_dict(build_spec("cnn_small", (8, 8, 1), 10))  # group features, then middle, then features again
    split["layers"][2]["group"] = "middle"
    (cwd / "split_group.json").write_text(json.dumps(split))
    mlp16 = build_spec("mlp", (8, 8, 1), 10, ModelOptions(hidden=(16,)))
    save_checkpoint(cwd / "mlp16.npz", mlp16, initial_weights(mlp16, "he_normal", 0), {})
    (cwd / "no_layers.json").write_text(json.dumps({k: v for k, v in misspelt.items() if k != "layers"}))
    (cwd / "gelu_net.py").write_text(
        "import torch.nn as nn\n\n\ndef make(num_classes=10):\n"
        "    return nn.Sequential(nn.Flatten(), nn.GELU(), nn.Linear(64, num_classes))\n"
    )
    (cwd / "eight_by_eight.py").write_text(
        "import torch.nn as nn\n\n\ndef make(num_classes=10):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes))\n"
    )
    damaged = cwd / "damaged-results"
    (damaged / "a-run" / "parts").mkdir(parents=True)
    (damaged / "a-run" / "run.json").write_text('{"started": ')
    (damaged / "baselines" / "machine" / "nightly").mkdir(parents=True)
    (damaged / "baselines" / "machine" / "nightly" / "baseline.json").write_text("[]")
    mistyped = cwd / "mistyped-results" / "baselines" / "machine" / "nightly"
    mistyped.mkdir(parents=True)
    (mistyped / "baseline.json").write_text('{"name": 5, "framework_versions": "x"}')
    (cwd / "results" / "damaged-run").mkdir()
    (cwd / "results" / "damaged-run" / "results.parquet").write_bytes(b"PAR1 cut short")
    (cwd / "results" / "foreign-run").mkdir()
    import pandas as pd

    pd.DataFrame({"loss": [0.5], "model_name": ["x"]}).to_parquet(cwd / "results" / "foreign-run" / "results.parquet")
    (cwd / "results" / "rows-run").mkdir()  # a table xfbench can read: the checks after reading it are reached
    from harness.results import to_frame  # every column, as xfbench writes them (most empty here)

    to_frame([{"trial_id": "t", "backend": "torch", "model": "mlp", "status": "ok"}]).to_parquet(
        cwd / "results" / "rows-run" / "results.parquet"
    )
    edited = (
        ("mistyped-run", "epoch_time_s", "x"),
        ("bad-config-run", "config_json", "{bad"),
        ("text-number-run", "epoch_time_s", "0.1949"),
        ("odd-status-run", "status", "OK"),
    )
    for run_id, column, value in edited:
        (cwd / "results" / run_id).mkdir()  # a table edited by hand: the readers would fail on these values
        table = {"trial_id": ["t"], "backend": ["torch"], "model": ["mlp"], "status": ["ok"], column: [value]}
        pd.DataFrame(table).to_parquet(cwd / "results" / run_id / "results.parquet")
    (cwd / "results" / "doubled-run").mkdir()  # two copies of one table put together
    doubled = to_frame([{"trial_id": "t", "backend": "torch", "model": "mlp", "status": "ok", "epoch": 1}] * 2)
    doubled.to_parquet(cwd / "results" / "doubled-run" / "results.parquet")
    (cwd / "results" / "failed-run").mkdir()
    to_frame([{"trial_id": "t", "backend": "torch", "model": "mlp", "status": "failed"}]).to_parquet(
        cwd / "results" / "failed-run" / "results.parquet"
    )
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, json.dumps(cases)], capture_output=True, text=True, cwd=cwd, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_model_options_flag_is_the_one_the_command_line_defines():
    """harness.models names model options by flag in its errors (it cannot import the CLI's table)."""
    from harness.cli_options import MODEL_OPTIONS_PATH, OVERRIDE_OPTIONS
    from harness.models import OPTION_FLAGS

    defined = {o.path: o.flag for _, group in OVERRIDE_OPTIONS for o in group if o.path.startswith(MODEL_OPTIONS_PATH)}
    assert {MODEL_OPTIONS_PATH + field: flag for field, flag in OPTION_FLAGS.items()} == defined


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_exits_2_with_expected_and_received(bad_input_results, case):
    code, stderr = bad_input_results[case]
    assert code == 2
    assert BAD_INPUTS[case][1] in stderr
    assert len(stderr.splitlines()) == 1 and stderr.startswith("xfbench"), stderr  # one line, no usage block


@pytest.mark.parametrize(
    "case",
    [
        "a batch beyond the samples in every point a search samples",
        "mc dropout without dropout in every point a search samples",
    ],
)
def test_an_option_that_fails_every_point_of_a_search_is_refused_as_itself(bad_input_results, case):
    """Every point fails alike, so no point is at fault and narrowing the space fixes nothing."""
    stderr = bad_input_results[case][1]
    assert stderr.startswith(BAD_INPUTS[case][1]), stderr
    assert "optimizer.lr=" not in stderr and "narrow" not in stderr, stderr


def test_a_built_in_models_layer_refusal_is_in_the_standard_form(bad_input_results):
    """It read "Model 'alexnet', layer 'pool2' (MaxPool2D): expected a pool window ..."."""
    said = bad_input_results["a zoo model too big for its input"][1]
    assert said.startswith("xfbench: error: Expected a pool window that fits the input in layer "), said


def test_activation_lists_its_choices_in_help(capsys):
    from harness.cli_options import build_parser
    from harness.spec import ACTIVATIONS

    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--help"])
    assert f"--activation {{{','.join(ACTIVATIONS)}}}" in capsys.readouterr().out


def test_refusals_of_the_command_line_runner_scheduler_and_weights_name_the_fix_in_the_standard_form(
    bad_input_results,
):
    """Refusals read "Expected ... Received: ... To fix, ...": these gave their remedy without the marker ("Pick
    another name.", "Add --asha, or drop them.", "Run: pip install ..."), none at all (`weights fetch bogus:thing`),
    or argparse's own words ("unrecognized arguments: --foo 3", "the following arguments are required: --mlflow")."""
    form = re.compile(r"xfbench[a-z ]*: error: Expected .+\. Received: .+\. To fix, [a-z].+\.", re.S)
    said = {case: bad_input_results[case][1].strip() for case in STANDARD_FORM_CASES}
    assert not {case: text for case, text in said.items() if not form.fullmatch(text)}


def test_an_unsupported_layer_is_told_to_be_replaced_only_where_the_user_can_change_the_model(bad_input_results):
    """Every refusal without a hint of its own ended "Replace that layer, or express it with the supported ones.",
    outside the standard form, and said so of torchvision's and Keras' published architectures too, which no one
    can edit."""
    own = bad_input_results["a layer of the user's model the spec does not have"][1]
    assert own.strip().endswith(
        "To fix, replace that layer with a supported one, or express it with the supported ones."
    )
    published = bad_input_results["a published architecture with a layer the spec does not have"][1]
    assert (
        "To fix, choose another model: torchvision:squeezenet1_0 cannot be imported, and as a published " in published
    )
    assert "use a zoo model (xfbench list models) or a published one that converts (torchvision:resnet18," in published
    assert "replace that layer" not in published.lower()


def test_missing_data_exits_2_naming_where_it_looked(bad_input_results):
    code, stderr = bad_input_results["missing data"]
    assert code == 2
    assert "train-images-idx3-ubyte" in stderr and "--data-dir" in stderr
    assert os.environ["XFBENCH_SYSTEM_DATA"] in stderr  # the system root, isolated by tests/conftest.py


def test_no_bad_input_reached_ray_or_a_framework(bad_input_results):
    assert bad_input_results["_imported"] == []


def test_a_fault_in_a_command_keeps_its_traceback_instead_of_reading_as_bad_input(monkeypatch, capsys):
    from harness import cli

    def faulty(args):
        raise ValueError("an internal fault, not the user's input")

    monkeypatch.setitem(cli.COMMANDS, "list", faulty)
    with pytest.raises(ValueError, match="an internal fault"):
        cli.main(["list"])
    assert capsys.readouterr().err == ""  # not reported as "xfbench: error: ..." with exit 2


def test_a_reader_that_closes_the_pipe_early_ends_xfbench_quietly():
    """`xfbench model densenet121 | head -1`: a BrokenPipeError traceback and exit 1 before; now exit 141, as a shell
    reports a process a closed pipe ended, and nothing on stderr."""
    xfbench = str(Path(sys.executable).with_name("xfbench"))
    proc = subprocess.Popen([xfbench, "model", "densenet121"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before xfbench writes its table (longer than a pipe's buffer)
    assert proc.wait(timeout=120) == 141 and proc.stderr.read() == b""


def test_a_broken_pipe_that_is_not_stdout_keeps_its_traceback(monkeypatch):
    from harness import cli

    def faulty(args):
        raise BrokenPipeError("a tracking server's connection, not the reader of stdout")

    monkeypatch.setitem(cli.COMMANDS, "list", faulty)
    with pytest.raises(BrokenPipeError, match="tracking server"):
        cli.main(["list"])


def test_list_shows_the_kinds_it_is_given(capsys):
    """`xfbench list models` (or `model`) shows models only; several kinds show each."""
    from harness.cli import main
    from harness.cli_options import CATALOGUE_KINDS
    from harness.reporting import catalogue_rows

    assert set(CATALOGUE_KINDS.values()) == {row[0] for row in catalogue_rows()}  # the words list takes, each shown
    for words, kinds in ((["models"], {"model"}), (["Model", "datasets"], {"model", "dataset"})):
        assert main(["list", *words]) == 0
        lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("│ ")]
        shown = {line.split("│")[1].strip() for line in lines} - {"kind", ""}
        assert shown == kinds, shown
        assert any("resnet20" in line for line in lines) and not any("│ adam " in line for line in lines)


def test_list_names_every_choice():
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "list"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    for name in (
        "quick",
        "smoke",
        "scratch",
        "convnet3",
        "cnn_small",
        "mlp",
        "digits",
        "fashion_mnist",
        "cifar10",
        "torch",
        "tensorflow",
        "nesterov",
        "adamw",
        "he_normal",
        "torch_default",
        "keras_default",
    ):
        assert name in proc.stdout


def test_technique_options_reach_every_trial_config():
    from harness.cli import build_parser, plan_from_args

    args = build_parser().parse_args(
        [
            "run",
            "--strategy",
            "scratch",
            "--model",
            "mlp",
            "--dataset",
            "digits",
            "--seeds",
            "2",
            "--optimizer",
            "adam",
            "--lr",
            "0.002",
            "--schedule",
            "onecycle",
            "--clip-norm",
            "1.5",
            "--l1",
            "1e-5",
            "--l2",
            "1e-4",
            "--max-norm",
            "3",
            "--activation",
            "selu",
            "--dropout",
            "0.1",
            "--alpha-dropout",
            "--batchnorm",
            "after",
            "--mc-dropout",
            "7",
        ]
    )
    trials = list(plan_from_args(args).trials)
    assert len(trials) == 4  # two backends x two seeds
    t = trials[0]
    assert (t.optimizer.name, t.optimizer.lr, t.optimizer.clip_norm, t.optimizer.eps) == ("adam", 0.002, 1.5, 1e-8)
    # RMSprop's rho and an adaptive optimizer's eps (S5: "RMSprop (ρ), Adam (β1, β2, ε)"), Keras' values here
    keras = build_parser().parse_args([*MLP_RUN, "--optimizer", "rmsprop", "--rho", "0.9", "--eps", "1e-7"])
    assert {(t.optimizer.rho, t.optimizer.eps) for t in plan_from_args(keras).trials} == {(0.9, 1e-7)}
    assert t.schedule.name == "onecycle" and (t.regularization.l1, t.regularization.l2, t.regularization.max_norm) == (
        1e-5,
        1e-4,
        3,
    )
    assert (
        t.model_options.activation,
        t.model_options.dropout,
        t.model_options.dropout_kind,
        t.model_options.batchnorm,
    ) == ("selu", 0.1, "alpha", "after")
    assert t.mc_dropout_passes == 7
    piecewise = plan_from_args(
        build_parser().parse_args(["run", "--suite", "smoke", "--piecewise", "10,20:0.1,0.01,0.001"])
    ).trials
    assert piecewise[0].schedule.boundaries == (10, 20) and piecewise[0].schedule.values == (0.1, 0.01, 0.001)
    plateau = ["--schedule", "plateau", "--plateau-patience", "0", "--plateau-threshold", "0.25"]
    (s,) = {t.schedule for t in plan_from_args(build_parser().parse_args([*MLP_RUN, *plateau])).trials}
    assert (s.name, s.patience, s.threshold) == ("plateau", 0, 0.25)  # patience 0: reduce after each bad epoch


def test_transfer_options_reach_the_trial_config():
    from harness.cli import build_parser, plan_from_args

    trials = plan_from_args(
        build_parser().parse_args(
            [
                "run",
                "--strategy",
                "fine_tune",
                "--model",
                "cnn_small",
                "--dataset",
                "digits",
                "--classes",
                "0,1,2,3,4",
                "--source-classes",
                "5,6,7,8,9",
                "--source-epochs",
                "3",
                "--source-backend",
                "tensorflow",
                "--backbone-lr-multiplier",
                "0.2",
            ]
        )
    ).trials
    t = trials[0]
    assert t.task.classes == (0, 1, 2, 3, 4) and t.transfer.source_task.classes == (5, 6, 7, 8, 9)
    assert (t.transfer.source_epochs, t.transfer.source_backend, t.transfer.backbone_lr_multiplier) == (
        3,
        "tensorflow",
        0.2,
    )


def _trials(*argv: str):
    from harness.cli import build_parser, plan_from_args

    plan = plan_from_args(build_parser().parse_args(list(argv)))
    return list(plan.planned_trials), plan.label


def test_speed_options_are_recorded_only_on_the_backends_that_apply_them():
    trials, _ = _trials(
        "run", "--strategy", "scratch", "--model", "mlp", "--dataset", "digits", "--jit-compile", "--torch-compile"
    )
    applied = {t.backend: json.loads(t.to_json())["runtime"] for t in trials}
    assert (applied["torch"]["jit_compile"], applied["torch"]["torch_compile"]) == (False, True)
    assert (applied["tensorflow"]["jit_compile"], applied["tensorflow"]["torch_compile"]) == (True, False)


def test_dropout_rng_and_bn_variance_reach_every_trial_config():
    trials, _ = _trials("run", "--suite", "smoke", "--dropout-rng", "framework", "--bn-variance", "biased")
    assert {t.runtime.dropout_rng for t in trials} == {"framework"}
    assert {t.model_options.bn_running_variance for t in trials} == {"biased"}
    defaults, _ = _trials("run", "--suite", "smoke")
    assert {(t.runtime.dropout_rng, t.model_options.bn_running_variance) for t in defaults} == {("shared", "unbiased")}


def test_run_without_a_selection_runs_the_quick_suite():
    from harness.suites import case_trials, suite

    trials, label = _trials("run")
    quick = suite("quick")
    assert label == "quick"
    assert [t.trial_id for t in trials] == [
        t.trial_id for case in quick.cases for t in case_trials(case, "quick", ("torch", "tensorflow"), quick.seeds)
    ]


def test_tune_without_a_selection_is_still_an_error():
    with pytest.raises(ValueError, match="Expected --strategy, --model and --dataset together"):
        _trials("tune")


def _write_run_file(run_dir, kind: str, status: str, execution=None) -> None:
    """A real run.json: a small plan of ``kind``, recorded as ``status``."""
    from harness.plan import ExecutionOptions, RunFile, RunRecord, write_run_file
    from harness.planner import SearchRequest, Selection, plan_run, plan_tune

    if kind == "run":
        plan = plan_run(Selection(strategy="scratch", model="mlp", dataset="digits"), {})
    else:
        plan = plan_tune(Selection(suite="tune_smoke"), {}, SearchRequest())
    record = RunRecord(
        run_id=run_dir.name,
        started="2026-11-23T00:00:00Z",
        command=("xfbench",),
        git_commit="",
        driver_host="",
        driver_cpu="",
        python_version="",
        status=status,
        finished="2026-11-23T00:00:00Z" if status == "finished" else None,
    )
    run_dir.mkdir(parents=True)
    write_run_file(run_dir, RunFile(plan, execution or ExecutionOptions(), record))


def _resume_settings(tmp_path, monkeypatch, *options: str):
    """The scheduler settings `xfbench run --resume` hands to the runner (which is replaced: no Ray)."""
    import harness.runner
    from harness.cli import main
    from harness.plan import ExecutionOptions

    recorded = ExecutionOptions(
        cpus_per_trial=1, gpus_per_trial=0.0, address=None, max_concurrent=3, max_failures=2, ship_data="always"
    )
    _write_run_file(tmp_path / "results" / "r1", "run", "interrupted", recorded)
    seen = {}

    class Stop(Exception):
        """Stop here: the test is about the settings only (a KeyboardInterrupt, main now says in one line)."""

    def resume(results_dir, run_id, settings, **_):
        seen["settings"] = settings
        raise Stop

    monkeypatch.setattr(harness.runner, "resume", resume)
    with pytest.raises(Stop):
        main(["run", "--resume", "r1", "--results-dir", str(tmp_path / "results"), *options])
    return seen["settings"]


def test_resume_honours_given_execution_options_and_keeps_recorded_ones_otherwise(tmp_path, monkeypatch):
    given = _resume_settings(
        tmp_path, monkeypatch, "--cpus-per-trial", "2", "--max-failures", "0", "--max-concurrent", "1"
    )
    assert (given.cpus_per_trial, given.max_failures, given.max_concurrent, given.gpus_per_trial) == (2, 0, 1, 0.0)
    kept = _resume_settings(tmp_path / "again", monkeypatch)
    assert (kept.cpus_per_trial, kept.max_failures, kept.max_concurrent, kept.gpus_per_trial) == (1, 2, 3, 0.0)
    # --ship-data was neither recorded nor kept: a cluster whose nodes lack the files got no data on resume
    assert kept.ship_data == "always"
    assert _resume_settings(tmp_path / "third", monkeypatch, "--ship-data", "never").ship_data == "never"


def test_a_resume_can_return_to_as_many_trials_as_the_cores_allow_and_to_warm_workers(tmp_path, monkeypatch):
    """A run recorded with --max-concurrent 3 (or --fresh-workers) kept it on every resume: no value of
    --max-concurrent meant "as the cores allow", and --fresh-workers could only be turned on."""
    from harness.cli import build_parser
    from harness.cli_options import given_execution
    from harness.plan import ExecutionOptions

    auto = _resume_settings(tmp_path, monkeypatch, "--max-concurrent", "auto")
    assert auto.max_concurrent is None and auto.max_failures == 2  # the rest as recorded
    assert ExecutionOptions(max_concurrent=3).updated({"max_concurrent": None}).max_concurrent == 3  # not given
    assert _resume_settings(tmp_path / "b", monkeypatch, "--fresh-workers").fresh_workers is True
    recorded_fresh = ExecutionOptions(fresh_workers=True)
    parser = build_parser()
    for flags, fresh in (([], True), (["--no-fresh-workers"], False), (["--fresh-workers"], True)):
        given = given_execution(parser.parse_args(["run", "--resume", "r1", *flags]))
        assert recorded_fresh.updated(given).fresh_workers is fresh
    for bad in ("0", "-1", "two"):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args(["run", "--max-concurrent", bad])
        assert exit_info.value.code == 2


def test_execution_options_default_to_none_so_resume_can_tell_given_from_default():
    from harness.cli import build_parser

    args = build_parser().parse_args(["run"])
    assert (args.cpus_per_trial, args.gpus_per_trial, args.max_failures, args.ship_data) == (None, None, None, None)


def test_a_backbone_trains_with_the_speed_options_its_own_backend_honours(tmp_path):
    from dataclasses import replace

    from harness.backbone import pretrain_trials

    trials, _ = _trials(
        "run",
        "--strategy",
        "fine_tune",
        "--model",
        "cnn_small",
        "--dataset",
        "digits",
        "--jit-compile",
        "--torch-compile",
        "--source-backend",
        "tensorflow",
    )
    (pretrain,) = pretrain_trials([replace(t, cache_dir=str(tmp_path)) for t in trials])
    assert pretrain.backend == "tensorflow"
    assert (pretrain.runtime.jit_compile, pretrain.runtime.torch_compile) == (True, False)


def test_execution_options_take_what_is_given_zero_included_else_what_was_recorded(tmp_path):
    from harness.plan import ExecutionOptions
    from harness.runner import scheduler_settings

    recorded = ExecutionOptions(
        cpus_per_trial=2, gpus_per_trial=0.5, address="10.0.0.5:6379", max_concurrent=4, max_failures=3
    )
    given = {"cpus_per_trial": None, "gpus_per_trial": 0.25, "address": None, "max_concurrent": None, "max_failures": 0}
    s = scheduler_settings(tmp_path, recorded.updated(given))
    assert (s.cpus_per_trial, s.gpus_per_trial, s.address, s.max_concurrent, s.max_failures) == (
        2,
        0.25,
        "10.0.0.5:6379",
        4,
        0,
    )
    assert s.storage_dir == (tmp_path / "_ray").resolve()


def test_default_run_ids_started_in_the_same_second_are_numbered_and_claimed(tmp_path, monkeypatch):
    """Two runs (two CI jobs) that start in one second get -2, -3...: each name is claimed by creating its directory,
    so two processes never share one."""
    import datetime as real

    import harness.runner as runner

    class FrozenClock(real.datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[override]
            return real.datetime(2026, 12, 2, 3, 4, 5, tzinfo=tz)

    monkeypatch.setattr(runner, "datetime", FrozenClock)
    ids = [runner.new_run_id("quick", tmp_path / "results") for _ in range(3)]
    assert ids == ["20261202-030405-quick", "20261202-030405-quick-2", "20261202-030405-quick-3"]
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == sorted(ids)


def test_every_commands_help_opens_with_what_it_does(capsys):
    """`xfbench report --help` showed usage and flags only: a command's line was in `xfbench --help`'s list alone."""
    from harness.cli_options import build_parser

    for argv in (["report"], ["export"], ["model"], ["history"], ["baseline", "save"], ["weights", "fetch"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args([*argv, "--help"])
        usage, _, rest = capsys.readouterr().out.partition("\n\n")
        assert rest.strip() and not rest.lstrip().startswith(("positional", "options")), (argv, rest[:200])


def test_the_model_commands_options_are_model_options_not_a_suites_overrides(capsys):
    """`xfbench model --help` filed --hidden under "hyperparameters (override the suite's)" and --activation under
    "techniques (S5)": the command has no suite, and both only shape the network it draws."""
    from harness.cli_options import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["model", "--help"])
    text = capsys.readouterr().out
    group = text.split("model options (as xfbench run takes them):")[1]
    assert "--hidden" in group and "--activation" in group and "--bn-variance" in group
    assert "override the suite's" not in text and "techniques (S5)" not in text


def test_a_suite_sized_for_gpus_runs_on_cpus_when_asked_to_with_gpus_per_trial_0():
    """--gpus-per-trial 0 given is a choice (a big CPU box, overnight), not the default's silence."""
    from harness.errors import InputError
    from harness.preflight import check_gpu_suites
    from harness.suites import SUITES

    for gpus in (0.0, 0.5, 1.0):
        check_gpu_suites([SUITES["imagenet_transfer"], SUITES["quick"]], gpus)
    check_gpu_suites([SUITES["quick"]], None)
    with pytest.raises(InputError, match="imagenet_transfer, s1_alexnet, sized for GPUs.*imagenet_transfer_quick / s1"):
        check_gpu_suites([SUITES["s1_alexnet"], SUITES["imagenet_transfer"]], None)


def _small_task_data(val_labels: list[int], test_labels: list[int]) -> object:
    """A made-up 8x8 dataset: 4 training samples of each class 0..5, and the given validation and test labels (an
    empty list: no such split, as the validation split of a few hundred CIFAR-10 images can be)."""
    import numpy as np

    from harness.data.registry import Dataset

    def split(labels: list[int]) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((len(labels), 8, 8, 1), dtype=np.float32), np.array(labels, dtype=np.int64)

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = map(split, ([*range(6)] * 4, val_labels, test_labels))
    return Dataset("digits", x_train, y_train, x_val, y_val, x_test, y_test, 10, "pixels / 255")


ALL6 = [*range(6)]


@pytest.mark.parametrize(
    ("target", "source", "val_labels", "test_labels", "expected"),
    [
        (
            (0, 1, 2), (3, 4, 5), [3, 4], ALL6,
            "Expected validation samples in the target task (--classes 0,1,2) of digits. Received: none in its "
            "validation split (class 0: 0, class 1: 0, class 2: 0; the split holds 2 samples",
        ),
        (
            (0, 1, 2), (3, 4, 5), [0, 1], ALL6,
            "Expected validation samples in the source task (--source-classes 3,4,5) of digits. Received: none in "
            "its validation split (class 3: 0, class 4: 0, class 5: 0;",
        ),
        (
            (0, 1, 2), (3, 4, 5), [], ALL6,  # the dataset's split itself is empty: no classes fill it
            "Expected validation samples in digits. Received: its validation split is empty, read from its files (24 "
            "training samples). To fix, point --data-dir at complete files of digits, or at a cut-down copy",
        ),
        (
            (0, 1, 2), (3, 4, 5), ALL6, [3, 4, 5],
            "Expected test samples in the target task (--classes 0,1,2) of digits. Received: none in its test split "
            "(class 0: 0, class 1: 0, class 2: 0; the split holds 3",
        ),
        ((0, 1, 2), (3, 4, 5), ALL6, [0, 1], "Expected test samples in the source task"),
        (
            (7, 8), (3, 4, 5), ALL6, ALL6,  # classes of the dataset that its files lack (--classes 20,21 came here)
            "Expected training samples in task classes 7,8 of digits. Received: none. To fix, pick --classes / "
            "--source-classes that digits's training split holds (class 0: 4,",
        ),
        (
            (0, 1, 7), (3, 4, 5), [0, 3], ALL6,
            "Expected training samples of every class of the target task (--classes 0,1,7) in the training split of "
            "digits. Received: none of class 7 (class 0: 4, class 1: 4, class 7: 0).",
        ),
        (
            (0, 1, 2), (3, 4, 9), [0, 3], ALL6,
            "Expected training samples of every class of the source task (--source-classes 3,4,9) in the training "
            "split of digits. Received: none of class 9",
        ),
    ],
)  # fmt: skip
def test_a_task_with_an_empty_split_or_class_is_refused_before_ray_naming_task_split_and_counts(
    target, source, val_labels, test_labels, expected
):
    """Each trial divided by zero in its evaluation (ZeroDivisionError), after Ray started."""
    from dataclasses import replace

    from harness.config import TransferOptions, TrialConfig
    from harness.data.tasks import TaskSpec
    from harness.errors import InputError
    from harness.preflight import preflight

    transfer = TransferOptions(source_task=TaskSpec(classes=source), source_epochs=1)
    trial = TrialConfig("feature_extraction", "mlp", "digits", "torch", 0, 1, task=TaskSpec(classes=target))
    trial = replace(trial, transfer=transfer)
    with pytest.raises(InputError) as caught:
        preflight([trial], None, download=False, loaded={"digits": _small_task_data(val_labels, test_labels)})
    assert expected in str(caught.value) and ("To fix, pick" in str(caught.value)) != ("is empty" in expected)


def test_the_execution_modes_have_a_help_group_of_their_own(capsys):
    """--jit-compile, --precision, --tf32 ... were listed under "tasks and transfer (S2-S4)"."""
    from harness.cli_options import build_parser

    for command in ("run", "tune"):
        with pytest.raises(SystemExit):
            build_parser().parse_args([command, "--help"])
        text = capsys.readouterr().out
        transfer = text.split("tasks and transfer (S2-S4):")[1].split("\n\n")[0]
        modes = text.split("execution modes and precision (the speed_matrix suite's modes):")[1].split("\n\n")[0]
        flags = ("--jit-compile", "--torch-compile", "--tf-mode", "--epoch-loop", "--channels-last", "--precision")
        assert all(f in modes and f not in transfer for f in (*flags, "--tf32 {on,off}", "--cudnn-autotune {on,off}"))


def test_cpus_per_trial_is_held_to_the_cpus_the_process_may_use_not_the_machines():
    """Under taskset, a Slurm job or a container's cpuset, os.cpu_count() counts cores the run may not use: a trial
    given all of them, and local Ray told of them all, shared the cores it had without a word."""
    cores = sorted(os.sched_getaffinity(0))
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", *MLP_RUN[1:], "--cpus-per-trial", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        preexec_fn=lambda: os.sched_setaffinity(0, cores[:1]),
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Expected --cpus-per-trial <= the 1 CPUs this process may use (its CPU affinity" in done.stderr


def test_an_address_ray_cannot_join_is_bad_input_in_one_line_leaving_no_run_directory(tmp_path):
    """`--address auto` with no cluster (or one whose GCS never answers) raised Ray's ConnectionError: a traceback,
    exit 1, and the run's claimed directory left empty. Ray looks for `auto` under RAY_TMPDIR: an empty one here."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"RAY_TMPDIR": str(tmp_path / "ray")}
    (tmp_path / "ray").mkdir()
    results = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", *MLP_RUN, "--epochs", "1", "--address", "auto"]
        + ["--results-dir", str(results)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        env=env,
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.startswith("xfbench: error: Expected a Ray cluster at --address auto. Received: Ray could not")
    assert "Traceback" not in done.stderr and not (results.exists() and any(results.iterdir()))


def test_each_commands_suite_help_lists_what_it_takes(capsys):
    """`run --help` listed the search suites, which run refuses; `tune --help` did not say which suites search."""
    from harness.cli_options import build_parser

    for command in ("run", "tune"):
        with pytest.raises(SystemExit):
            build_parser().parse_args([command, "--help"])
        help_text = " ".join(capsys.readouterr().out.split())
        listed = help_text.split("--suite SUITE one of ")[1].split("--strategy")[0]
        if command == "run":
            assert "'tune_quick'" not in listed and "tune_quick, tune_smoke: xfbench tune" in listed
        else:
            assert "'tune_quick'" in listed and "tune_quick, tune_smoke hold a search space" in listed


def test_a_relative_data_folder_in_the_environment_exits_2_naming_the_absolute_one(tmp_path, monkeypatch, capsys):
    """$XFBENCH_DATA and $XFBENCH_SYSTEM_DATA must be absolute: a trial runs in its own folder, where a relative one
    named other files than preflight checked (a cache's copy trained, the run recording the other). A relative
    $XDG_CACHE_HOME is ignored, as the XDG spec says."""
    from harness.cli import main
    from harness.data.locate import user_cache_dir

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    args = ["run", "--strategy", "scratch", "--model", "mlp", "--dataset", "mnist", "--backend", "torch"]
    for name in ("XFBENCH_DATA", "XFBENCH_SYSTEM_DATA"):
        with monkeypatch.context() as env:
            env.setenv(name, "data")
            assert main([*args, "--no-download", "--results-dir", str(tmp_path / "results")]) == 2
        err = capsys.readouterr().err
        assert f"Expected ${name} to be an absolute path" in err, err
        assert f"To fix, set it to {tmp_path / 'data'}." in err, err
    assert not (tmp_path / "results").exists()
    assert user_cache_dir({"XDG_CACHE_HOME": "cache"}) == Path.home() / ".cache" / "xfbench"
    assert user_cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "xfbench"
    from harness.pretrained import weights_home  # the weights' home follows the same rule

    monkeypatch.delenv("XFBENCH_WEIGHTS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "cache")
    assert weights_home() == Path.home() / ".cache" / "xfbench" / "weights"


def test_the_resume_commands_printed_at_a_run_end_quote_a_results_dir_with_a_space(tmp_path, monkeypatch, capsys):
    """An interrupted run and a run with failed trials each print how to resume: a --results-dir with a space
    printed a command that, pasted, split the path in two."""
    import argparse
    import shlex
    from types import SimpleNamespace

    import harness.reporting
    import harness.runner
    from harness.cli import _finish

    monkeypatch.setattr(harness.reporting, "print_run_summary", lambda *_, **__: None)
    monkeypatch.setattr(harness.runner, "resumable_failures", lambda *_: ["t1"])
    run_dir = tmp_path / "my results" / "r1"
    expected = ["xfbench", "run", "--resume", "r1", "--results-dir", str(run_dir.parent)]
    args = argparse.Namespace(command="run", format="table")
    for status in ("interrupted", "finished"):
        outcome = SimpleNamespace(status=status, run_id="r1", run_dir=run_dir, search=None, frame=None, all_ok=False)
        _finish(outcome, args)
        printed = capsys.readouterr().err
        assert shlex.split(printed.split("`")[1]) == expected, printed


def test_normalize_weights_on_a_suite_is_kept_for_its_pretrained_cases_and_refused_without_any():
    """A suite's cases each take their weights' normalisation under --normalize weights (as by default); a suite
    without a pretrained case dropped the option without a word, where a single case without weights exits 2."""
    from harness.cli import build_parser, plan_from_args

    plan = plan_from_args(build_parser().parse_args(["run", "--suite", "imagenet_transfer", "--normalize", "weights"]))
    weighted = [t for t in plan.planned_trials if t.transfer.pretrained]
    assert weighted and {t.input.normalize for t in weighted} == {"imagenet"}  # torchvision's weights' own
    with pytest.raises(InputError, match="Received: --suite smoke, none of whose selected cases does"):
        plan_from_args(build_parser().parse_args(["run", "--suite", "smoke", "--normalize", "weights"]))
