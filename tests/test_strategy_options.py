"""Options a strategy never reads are refused before any work, not recorded in config_json as if they had acted."""

from __future__ import annotations

import functools
import re
from dataclasses import replace

import pytest
from weight_file_probes import import_call, probe_runner

from harness.augment import AugmentConfig
from harness.config import OptimizerConfig, RuntimeOptions, TransferOptions, TrialConfig
from harness.data.tasks import TaskSpec
from harness.errors import InputError
from harness.input_pipeline import InputConfig
from harness.planner import Selection, plan_run, selected_trials
from harness.schedules import ScheduleConfig
from harness.search import parse_space, validate_space
from harness.strategy_options import check_strategy_options
from harness.suites import SUITES

SCRATCH = TrialConfig(strategy="scratch", model="cnn_small", dataset="digits", backend="torch", seed=0, epochs=2)


def _with(strategy: str, **transfer) -> TrialConfig:
    epochs = 1 if strategy == "deep_features" else SCRATCH.epochs  # it fits its head once
    return replace(SCRATCH, strategy=strategy, epochs=epochs, transfer=TransferOptions(**transfer))


@pytest.mark.parametrize(
    ("trial", "fragment"),
    [
        (_with("scratch", sklearn_head="rbf_svc"), "--sklearn-head 'rbf_svc', read by deep_features"),
        (_with("scratch", source_task=TaskSpec(classes=(0, 1))), "--source-classes 0,1, read by"),
        (_with("fine_tune", freeze_groups=2), "--freeze-groups 2, read by freeze_early"),
        (
            _with("transfer", backbone_lr_multiplier=0.5),
            "--backbone-lr-multiplier 0.5, read by fine_tune, freeze_early",
        ),
        (_with("fine_tune", frozen_epochs=1), "--frozen-epochs 1, read by transfer"),
        (_with("transfer", feature_pool="avg"), "--feature-pool 'avg', read by deep_features"),
        (replace(_with("deep_features"), mc_dropout_passes=5), "--mc-dropout 5, read by scratch, feature_extraction"),
        (replace(_with("deep_features"), augment=AugmentConfig(flip=True)), "--augment flip, read by scratch"),
        # it trains no network: the epochs, Keras fit and a compiled epoch loop were recorded and never ran
        (replace(_with("deep_features"), epochs=9), "--epochs 9, read by scratch"),
        (replace(_with("deep_features"), runtime=RuntimeOptions(tf_mode="fit")), "--tf-mode 'fit', read by scratch"),
        (
            replace(_with("deep_features"), runtime=RuntimeOptions(epoch_loop="compiled")),
            "--epoch-loop 'compiled', read by scratch",
        ),
        # pretrained weights replace the backbone xfbench would train, and its source recipe with it
        (
            _with("fine_tune", pretrained="torchvision:resnet18", source_epochs=3),
            "--source-epochs 3, read by feature_extraction, fine_tune, freeze_early, deep_features, transfer "
            "without --pretrained / --weights",
        ),
    ],
)
def test_an_option_the_strategy_does_not_read_is_refused_naming_who_reads_it(trial, fragment):
    with pytest.raises(InputError, match=f"Expected only options that strategy {trial.strategy} reads") as caught:
        check_strategy_options(trial)
    assert fragment in str(caught.value)


def test_the_options_each_strategy_reads_are_accepted():
    for trial in (
        SCRATCH,
        replace(SCRATCH, mc_dropout_passes=5, augment=AugmentConfig(flip=True)),
        _with("fine_tune", backbone_lr_multiplier=0.5, source_task=TaskSpec(classes=(0, 1)), source_epochs=3),
        _with("freeze_early", freeze_groups=2, source_optimizer=OptimizerConfig("adam", lr=1e-3)),
        _with("freeze_early", freeze_groups=2, backbone_lr_multiplier=0.5),
        _with("transfer", frozen_epochs=1, source_backend="tensorflow"),
        _with("deep_features", sklearn_head="rbf_svc", feature_layer="pool", feature_pool="avg"),
        _with("feature_extraction", pretrained="torchvision:resnet18"),
    ):
        check_strategy_options(trial)


def test_every_suite_case_sets_only_options_its_strategy_reads():
    for name in SUITES:
        for trial in selected_trials(Selection(suite=name), {})[0]:  # a search suite's base too
            check_strategy_options(trial)


def test_a_search_over_an_option_the_strategy_does_not_read_is_refused():
    for values in ("linear_svc,rbf_svc", "linear_svc"):  # the default alone too: every sample would train alike
        with pytest.raises(InputError, match="Received: transfer.sklearn_head in the search space"):
            validate_space(SCRATCH, parse_space([f"sklearn_head=choice:{values}"]))
    validate_space(_with("deep_features"), parse_space(["sklearn_head=choice:linear_svc,rbf_svc"]))


def test_an_option_given_for_a_suite_goes_to_the_cases_that_read_it_and_is_refused_when_none_does():
    """docs/strategies.md times S4's source phase in TensorFlow with `--suite transfer --source-backend tensorflow`:
    the suite's scratch baseline does not read it, its backbone cases do."""
    given = {"transfer.source_backend": "tensorflow", "mc_dropout_passes": 3}
    trials = plan_run(Selection(suite="transfer"), given).trials
    by_strategy = {(t.strategy, t.transfer.source_backend, t.mc_dropout_passes) for t in trials}
    assert {("scratch", "torch", 3), ("transfer", "tensorflow", 3), ("deep_features", "tensorflow", 0)} <= by_strategy
    for trial in trials:
        check_strategy_options(trial)
    quick = plan_run(Selection(suite="quick"), {"transfer.sklearn_head": "rbf_svc"}).trials  # scratch cases only
    with pytest.raises(InputError, match="Received: --sklearn-head 'rbf_svc', read by deep_features"):
        check_strategy_options(quick[0])


def test_a_resumed_run_is_not_refused_for_options_an_older_version_recorded():
    from harness.preflight import preflight

    recorded = replace(SCRATCH, model="mlp", transfer=TransferOptions(sklearn_head="rbf_svc"))
    with pytest.raises(InputError, match="Expected only options that strategy scratch reads"):
        preflight([recorded], None, download=False)
    preflight([recorded], None, download=False, resumed=True)


def test_a_model_option_that_changes_no_network_of_the_run_is_refused_and_one_that_changes_some_is_not():
    """BatchNorm's settings and the dropout kind are set for a whole run (a suite's models, some with BatchNorm,
    some without): refused only where no network the run trains has the layers they set, and not for a recorded
    run resumed (it ran as it stands)."""
    from harness.models import ModelOptions
    from harness.preflight import preflight

    biased = ModelOptions(bn_running_variance="biased")
    convnet3 = replace(SCRATCH, model="convnet3", model_options=biased)
    with pytest.raises(InputError) as refused:
        preflight([convnet3], None, download=False)
    assert "Received: bn_running_variance='biased' on convnet3, which has no BatchNorm layer" in str(refused.value)
    assert "Expected each layer setting the run gives or searches to meet such a layer" in str(refused.value)
    preflight([convnet3], None, download=False, resumed=True)
    with_bn = replace(convnet3, model_options=replace(biased, batchnorm="before"))
    preflight([convnet3, replace(with_bn, model="cnn_small")], None, download=False)  # cnn_small's BatchNorm reads it
    alpha = replace(SCRATCH, model="mlp", model_options=ModelOptions(dropout_kind="alpha", hidden=(32,)))
    with pytest.raises(InputError, match="dropout_kind='alpha' on mlp, which has no dropout layer"):
        preflight([alpha], None, download=False)
    preflight([replace(alpha, model_options=replace(alpha.model_options, dropout=0.2))], None, download=False)


@pytest.mark.parametrize(
    "setting, layer",
    [({"bn_statistics": "float64"}, "BatchNorm layer"), ({"dropout_rng": "framework"}, "dropout layer")],
)
def test_a_runtime_setting_of_a_kind_of_layer_is_refused_where_no_network_has_one(
    setting, layer, tmp_path, monkeypatch, workers
):
    """--bn-statistics float64 and --dropout-rng framework act on BatchNorm and dropout layers only: on an mlp without
    them they were recorded in config_json and summary.md's Settings (and in the backbone's key), changing nothing.
    An imported network's layers count (torchvision's resnet18 has BatchNorm and no options of its own)."""
    import harness.model_import
    from harness.models import ModelOptions
    from harness.preflight import preflight

    plain = replace(SCRATCH, model="mlp", model_options=ModelOptions(hidden=(32,)), runtime=RuntimeOptions(**setting))
    (name, value), *_ = setting.items()
    with pytest.raises(InputError, match=f"Received: {name}='{value}' on mlp, which has no {layer}") as refused:
        preflight([plain], None, download=False)
    if name == "bn_statistics":  # a network without BatchNorm is told how to add some
        assert "(--batchnorm before|after adds them to mlp, convnet3 and cnn_small)" in str(refused.value)
    preflight([plain], None, download=False, resumed=True)
    with_layer = ModelOptions(hidden=(32,), batchnorm="after", dropout=0.2)
    preflight([replace(plain, model_options=with_layer)], None, download=False)
    if name == "bn_statistics":
        # converted in the session's torch probe worker: what is checked is the preflight's answer, not the process
        monkeypatch.setattr(harness.model_import, "_fresh_process", import_call(workers))
        imported = replace(plain, model="torchvision:resnet18", model_options=ModelOptions())
        preflight([replace(imported, input=InputConfig(size=32, channels=3))], None, False, cache_dir=tmp_path)


@pytest.mark.parametrize(
    "strategy, transfer, trains",
    [
        ("feature_extraction", {}, False),
        ("deep_features", {}, False),
        ("transfer", {}, False),  # frozen throughout: only the head (no BatchNorm) trains
        ("transfer", {"frozen_epochs": 1}, True),  # unfrozen for the second epoch
        ("fine_tune", {}, True),
    ],
)
def test_float64_batchnorm_statistics_are_refused_where_every_batchnorm_layer_is_frozen(
    strategy, transfer, trains, tmp_path, monkeypatch, workers
):
    """A frozen BatchNorm layer runs in inference mode on its running statistics, which --bn-statistics leaves
    alone: from a weight file, feature extraction and a transfer frozen throughout recorded float64 statistics that
    changed nothing (their rows also said the backends' float32 BatchNorm kernels differed). A backbone the run
    trains itself trains every BatchNorm layer in its pretrain trial, where the setting acts."""
    import harness.preflight
    from harness.checkpoints import save_checkpoint
    from harness.exactness import inexact_reasons
    from harness.models import ModelOptions, build_spec
    from harness.preflight import preflight
    from harness.pretrained import prepare_weights
    from harness.weights import initial_weights

    # each weight file verified in the session's torch probe worker, not a fresh torch process per preflight (about
    # 7 s each): what is checked is the preflight's refusal or acceptance, as tests/test_pretrained.py checks files
    runner = probe_runner(workers)
    monkeypatch.setattr(harness.preflight, "prepare_weights", functools.partial(prepare_weights, runner=runner))
    options = ModelOptions(batchnorm="after")
    epochs = 1 if strategy == "deep_features" else 2
    trial = replace(SCRATCH, strategy=strategy, model="convnet3", model_options=options, epochs=epochs)
    # what a frozen layer never does: train-mode statistics, and update its running ones (decay, variance kind)
    settings = [
        replace(trial, runtime=RuntimeOptions(bn_statistics="float64")),
        replace(trial, model_options=replace(options, bn_running_variance="biased")),
        replace(trial, model_options=replace(options, bn_decay=0.5)),
    ]
    for number, setting in enumerate(settings):
        spec = build_spec("convnet3", (8, 8, 1), 10, setting.model_options)  # a file of the very network
        path = tmp_path / f"convnet3-{number}.npz"
        save_checkpoint(path, spec, initial_weights(spec, "he_normal", 0), {})
        given = replace(setting, transfer=TransferOptions(weights_file=str(path), **transfer))
        assert bool(inexact_reasons(replace(given, runtime=RuntimeOptions()), spec)) == trains  # the inexact column
        if trains:
            preflight([given], None, download=False, cache_dir=tmp_path / "cache")
        else:
            frozen = "which has no BatchNorm layer that trains (its BatchNorm layers are all frozen"
            with pytest.raises(InputError, match=re.escape(frozen)):
                preflight([given], None, download=False, cache_dir=tmp_path / "cache")
        # from a backbone this run pretrains: the pretrain trial trains every BatchNorm layer
        own = replace(given, transfer=TransferOptions(**transfer))
        preflight([own], None, download=False, cache_dir=tmp_path / "cache")


def test_cudnn_autotuning_on_networks_without_a_convolution_is_refused():
    """--cudnn-autotune on picks convolution algorithms: on a GPU run of mlp alone it was recorded, changing nothing.
    A run with a convolutional network among its models keeps it."""
    from harness.preflight import preflight

    mlp = replace(SCRATCH, model="mlp", runtime=RuntimeOptions(cudnn_autotune=True, device="gpu"))
    with pytest.raises(InputError, match=r"Received: cudnn_autotune=True on mlp, which has no convolution \(pick a"):
        preflight([mlp], None, download=False)
    preflight([mlp], None, download=False, resumed=True)
    preflight([mlp, replace(mlp, model="convnet3")], None, download=False)
    # channels_last lays out convolutions: on mlp (1-channel digits) even the batches' strides were the same, and the
    # speed matrix timed the default's program twice as two modes
    flat = replace(SCRATCH, model="mlp", runtime=RuntimeOptions(channels_last=True))
    preflight([flat], None, download=False, resumed=True)  # a recorded run resumes as it ran
    with pytest.raises(InputError, match=r"Received: channels_last=True on mlp, which has no convolution \(pick a"):
        preflight([flat], None, download=False)
    preflight([flat, replace(flat, model="convnet3")], None, download=False)


@pytest.mark.parametrize(
    "setting, flags",
    [({"tf32": True}, "--tf32 on"), ({"tf32": True, "cudnn_autotune": True}, "--tf32 on and --cudnn-autotune on")],
)
def test_gpu_settings_on_a_run_without_gpus_are_refused(setting, flags):
    """They set what an NVIDIA GPU computes: on the CPU they were recorded as applied, and changed nothing."""
    from harness.preflight import preflight

    on_cpu = replace(SCRATCH, runtime=RuntimeOptions(**setting))
    with pytest.raises(InputError, match=f"Expected {flags} only on GPUs"):
        preflight([on_cpu], None, download=False)
    preflight([on_cpu], None, download=False, resumed=True)  # a recorded run ran as it stands


def test_decoupled_weight_decay_without_a_decay_to_decouple_is_refused():
    from harness.config import check_decay_to_decouple
    from harness.preflight import preflight

    decoupled = replace(SCRATCH, model="mlp", optimizer=OptimizerConfig("momentum", decoupled=True))
    with pytest.raises(InputError, match="Received: momentum with a weight decay of 0 "):
        preflight([decoupled], None, download=False)
    preflight([decoupled], None, download=False, resumed=True)  # a recorded run ran as it stands
    check_decay_to_decouple(OptimizerConfig("momentum", weight_decay=1e-4, decoupled=True).resolved())
    check_decay_to_decouple(OptimizerConfig("adamw", weight_decay=0.0).resolved())  # adamw's decay is decoupled anyway


def test_a_backbones_settings_leave_out_its_targets_strategy_options():
    """A pretrain trial carries its target's options: its Settings row listed `transfer.frozen_epochs 4`, which
    changed nothing in the backbone, and a compare would have noted a change of it as a config change."""
    import json

    import pandas as pd

    from harness.backbone import pretrain_trial
    from harness.compare import case_settings

    target = _with("transfer", frozen_epochs=4, source_epochs=3)
    rows = {
        t.strategy: pd.DataFrame({"strategy": [t.strategy], "config_json": [json.dumps(t.to_dict())]})
        for t in (target, pretrain_trial(target))
    }
    assert "transfer.frozen_epochs 4" in case_settings(rows["transfer"])
    assert "frozen_epochs" not in case_settings(rows["pretrain"]) and "epochs 3" in case_settings(rows["pretrain"])


def test_a_case_started_from_a_weights_file_names_the_file_and_its_hash_in_its_settings():
    """summary.md's Settings said `defaults` for a case fine-tuned from --weights bb.npz: the path is left out of
    settings (it is where the file lies), but which weights a case started from is a setting."""
    import json

    import pandas as pd

    from harness.compare import case_settings

    trial = _with("fine_tune")
    from_file = replace(trial, transfer=replace(trial.transfer, weights_file="/data/nets/bb.npz"))
    sha = "ab12cd34ef56" + "0" * 52
    rows = pd.DataFrame(
        {"strategy": ["fine_tune"], "config_json": [json.dumps(from_file.to_dict())], "weights_sha256": [sha]}
    )
    assert case_settings(rows).endswith("weights file bb.npz (sha256 ab12cd34ef56)")
    assert "/data/nets" not in case_settings(rows) and "weights file" not in case_settings(
        rows.assign(config_json=[json.dumps(trial.to_dict())], weights_sha256=[""])
    )


def test_a_recorded_run_is_not_refused_for_options_that_only_would_have_changed_nothing():
    """--freeze-groups 0, --feature-pool on a flat layer and a class without training samples are refused for a new
    run; a run recorded with them trained, and `--resume` (execution options only) could never drop them: a resume
    refused them with a fix it refuses too. What would fail in a worker (an empty validation split) still stops it."""
    from harness.preflight import preflight

    new_only = [
        (_with("freeze_early", freeze_groups=0), "Expected --freeze-groups of at least 1"),
        (_with("deep_features", feature_layer="fc1", feature_pool="avg"), "Expected --feature-pool 'avg' on a"),
        (replace(SCRATCH, task=TaskSpec(classes=(0, 1), train_limit=1)), "Expected training samples of every class"),
    ]
    for trial, refusal in new_only:
        with pytest.raises(InputError, match=refusal):
            preflight([trial], None, download=False)
        preflight([trial], None, download=False, resumed=True)
    too_many = _with("freeze_early", freeze_groups=9)  # nothing left to train: it would fail in the worker
    with pytest.raises(InputError, match="Expected --freeze-groups < "):
        preflight([too_many], None, download=False, resumed=True)


def test_a_trial_without_a_source_task_has_its_model_built_for_its_own_task_only(monkeypatch):
    """With no --source-classes a backbone trains on the target task (harness.backbone), yet preflight also built
    the model for the whole dataset's classes: a second conversion of a user's or a framework's model, for nothing."""
    import harness.preflight
    from harness.preflight import preflight

    built = []
    real = harness.preflight.model_spec
    monkeypatch.setattr(
        harness.preflight,
        "model_spec",
        lambda model, shape, classes, *rest: built.append(classes) or real(model, shape, classes, *rest),
    )
    preflight([replace(_with("fine_tune"), task=TaskSpec(classes=(0, 1, 2)))], None, download=False)
    assert built == [3]
    built.clear()
    preflight([_with("fine_tune", source_task=TaskSpec(classes=(5, 6)))], None, download=False)
    assert built == [10, 2]  # the target (every class), then the source task the backbone trains on


def test_options_that_measure_nothing_are_refused_for_a_new_run_and_kept_for_a_recorded_one():
    """--mc-dropout 1 reported a spread of 0 over its one pass (read as "dropout changes nothing"), and freeze_early on
    mlp trained its new head alone on the frozen network: feature_extraction's numbers under freeze_early's name."""
    from harness.preflight import preflight

    one_pass = replace(SCRATCH, mc_dropout_passes=1)
    head_alone = replace(_with("freeze_early", freeze_groups=1), model="mlp")
    for trial, refusal in (
        (one_pass, "Expected --mc-dropout 2 or more passes"),
        (head_alone, "which leaves only the new head 'logits' training: feature_extraction under freeze_early's name"),
    ):
        with pytest.raises(InputError, match=re.escape(refusal)):
            preflight([trial], None, download=False)
        preflight([trial], None, download=False, resumed=True)
    preflight([replace(SCRATCH, mc_dropout_passes=2), _with("freeze_early", freeze_groups=1)], None, download=False)


def test_tf32_on_a_gpu_run_in_float64_is_refused_as_changing_nothing():
    """float64 computes no TF32 (RuntimeOptions.computes_tf32): --tf32 on was recorded on such a GPU run, inert."""
    from harness.preflight import _check_gpu_settings

    gpu = RuntimeOptions(device="gpu", tf32=True)
    float64 = replace(SCRATCH, runtime=replace(gpu, precision="float64"))
    with pytest.raises(InputError, match=re.escape("Received: --tf32 on with --precision float64 on every trial")):
        _check_gpu_settings([float64])
    _check_gpu_settings([float64, replace(SCRATCH, seed=1, runtime=gpu)])  # one trial computes TF32: it applies


def test_a_1cycle_too_short_to_peak_is_refused_but_a_recorded_run_of_one_resumes_as_it_ran():
    """2 steps of 1cycle never climb past a tenth of --lr; a run recorded before the rule still resumes."""
    from harness.preflight import preflight

    short = replace(SCRATCH, model="mlp", batch_size=1257, schedule=ScheduleConfig("onecycle"))
    with pytest.raises(InputError, match=r"Expected at least 3 training steps in each 1cycle"):
        preflight([short], None, download=False)
    preflight([short], None, download=False, resumed=True)


def test_the_refusal_of_an_option_the_strategy_does_not_read_shows_it_as_given_and_reads_as_sentences():
    """`--source-classes 0,1` on scratch was shown as "--source-classes classes 0,1" (the task's label), and the
    reason trailed the remedy as a fragment: "... pick a strategy that reads it: set, an option is recorded ..."."""
    classes = TransferOptions(source_task=TaskSpec(classes=(0, 1)))
    with pytest.raises(InputError) as one:
        check_strategy_options(replace(SCRATCH, transfer=classes))
    assert str(one.value) == (
        "Expected only options that strategy scratch reads (scratch-cnn_small-digits). Received: --source-classes "
        "0,1, read by feature_extraction, fine_tune, freeze_early, deep_features, transfer without --pretrained / "
        "--weights. Given, it would be recorded with the results, yet change nothing. To fix, drop it, or pick a "
        "strategy that reads it."
    )
    with pytest.raises(InputError) as two:
        check_strategy_options(replace(SCRATCH, transfer=replace(classes, freeze_groups=2)))
    assert str(two.value).endswith(
        "; --freeze-groups 2, read by freeze_early. Given, they would be recorded with the results, yet change "
        "nothing. To fix, drop them, or pick a strategy that reads them."
    )


def test_the_refusal_of_a_layer_setting_no_network_has_reads_as_sentences():
    """It read "... Drop it, or train a network with the layers it sets: given, a setting is recorded with the
    results, yet it would change nothing.", and for two settings "the layers them set"."""
    from harness.preflight import preflight

    mlp = replace(SCRATCH, model="mlp")
    with pytest.raises(InputError) as one:
        preflight([replace(mlp, runtime=RuntimeOptions(channels_last=True))], None, download=False)
    assert str(one.value).endswith(
        "which has no convolution (pick a convolutional model: convnet3, cnn_small or a zoo model). Given, it would "
        "be recorded with the results, yet change nothing. To fix, drop it, or train a network with the layers it "
        "sets."
    )
    both = RuntimeOptions(channels_last=True, dropout_rng="framework")
    with pytest.raises(InputError) as two:
        preflight([replace(mlp, runtime=both)], None, download=False)
    assert str(two.value).endswith(
        "Given, they would be recorded with the results, yet change nothing. To fix, drop them, or train a network "
        "with the layers they set."
    )


def test_the_epochs_help_gives_the_epochs_a_single_case_gets_deep_features_included():
    """The help said "5 for a single case": a single deep_features case gets 1 (its head is fitted once) and
    refuses --epochs."""
    from harness.cli_options import OVERRIDE_OPTIONS
    from harness.config import DEFAULT_CASE_EPOCHS

    said = next(o.help for _, group in OVERRIDE_OPTIONS for o in group if o.flag == "--epochs")
    assert (
        f"{DEFAULT_CASE_EPOCHS} for a single case; deep_features reads none, its backbone's are --source-epochs" in said
    )
    single = Selection(strategy="scratch", model="mlp", dataset="digits")
    assert {t.epochs for t in plan_run(single, {}).trials} == {DEFAULT_CASE_EPOCHS}
    deep = Selection(strategy="deep_features", model="mlp", dataset="digits")
    assert {t.epochs for t in plan_run(deep, {}).trials if t.strategy == "deep_features"} == {1}
    with pytest.raises(InputError, match="Received: --epochs 3, read by scratch"):
        check_strategy_options(replace(plan_run(deep, {}).trials[-1], epochs=3))
