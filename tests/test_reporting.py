"""The backend registry, the summary's comparison of every backend with the reference, and the table renderers.

Pure pandas and rich: fake result rows stand in for trials, so a third backend needs no framework.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import math
import re
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from harness import reporting
from harness.backend import BACKENDS, REFERENCE_BACKEND, REGISTRY, backend_entry, backend_of_package, importer_backends
from harness.baselines import History, HistoryRun, SettingsChange
from harness.compare import CaseComparison, Thresholds
from harness.config import TransferOptions, TrialConfig
from harness.errors import InputError
from harness.results import to_frame
from harness.summary import steady_rows, summarize, timing_rows

ROOT = Path(__file__).resolve().parents[1]
THIRD = "jax"  # a backend the registry does not know: the summary must compare it like any other


def _rows(backend: str, case_model: str, acc: float, epoch_time_s: float, seeds: int = 2) -> list[dict]:
    """One fake trial per seed: three epochs (the first warm-up) and a final test accuracy ``acc``."""
    rows = []
    for seed in range(seeds):
        for epoch in (1, 2, 3):
            rows.append(
                {
                    "run_id": "r",
                    "trial_id": f"{case_model}-{backend}-{seed}",
                    "suite": "s",
                    "strategy": "scratch",
                    "model": case_model,
                    "dataset": "digits",
                    "backend": backend,
                    "seed": seed,
                    "phase": "train",
                    "epoch": epoch,
                    "test_acc": acc if epoch == 3 else math.nan,
                    "epoch_time_s": 10.0 if epoch == 1 else epoch_time_s,
                    "samples_per_s": 1000.0 / epoch_time_s,
                    "warmup": epoch == 1,
                    "status": "ok",
                    "config_json": "{}",
                }
            )
    return rows


# (backend, accuracy, steady epoch time) of one case on three backends
THREE = ((REFERENCE_BACKEND, 0.90, 2.0), ("tensorflow", 0.95, 1.0), (THIRD, 0.80, 4.0))


def _three_backend_frame() -> pd.DataFrame:
    rows = [r for backend, acc, time_s in THREE for r in _rows(backend, "mlp", acc, time_s)]
    rows += _rows("tensorflow", "cnn", 0.5, 1.0)  # a case the reference never ran: nothing to compare
    return to_frame(rows)


def test_registry_names_every_backend_once_and_the_reference_is_one_of_them():
    assert BACKENDS == tuple(REGISTRY) and REFERENCE_BACKEND in BACKENDS
    assert TransferOptions().source_backend == REFERENCE_BACKEND
    for name in BACKENDS:
        entry = backend_entry(name)
        assert entry.adapter_module == f"backends.{name}.adapter"
        assert entry.capabilities_module == f"backends.{name}.capabilities"
        for package in entry.model_packages:
            assert backend_of_package(package) == name
    assert set(importer_backends().values()) <= set(BACKENDS)
    assert backend_of_package("sklearn") is None
    with pytest.raises(InputError, match=r"Expected a backend name, one of \['tensorflow', 'torch'\]\. .* To fix, "):
        backend_entry(THIRD)


def test_no_harness_module_but_the_registry_spells_a_backend_name():
    """Issue 16, item 5: a string constant equal to a backend's name appears only in harness/backend.py."""
    offenders = []
    for path in sorted((ROOT / "harness").rglob("*.py")):
        if path.name == "backend.py" and path.parent.name == "harness":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in BACKENDS:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert not offenders, offenders


def test_three_backends_each_non_reference_backend_is_compared_with_the_reference():
    summary = summarize(_three_backend_frame())
    assert summary.reference == REFERENCE_BACKEND
    assert len(summary.per_backend) == 4  # mlp on three backends, cnn on one
    cmp = summary.comparison.set_index("backend")
    assert sorted(cmp.index) == sorted(["tensorflow", THIRD])  # the reference is not compared with itself
    assert set(cmp["model"]) == {"mlp"} and set(cmp["reference"]) == {REFERENCE_BACKEND}
    ref_acc, ref_time = THREE[0][1], THREE[0][2]
    for backend, acc, time_s in THREE[1:]:
        assert cmp.loc[backend, "acc_diff_pp"] == pytest.approx(100 * (ref_acc - acc))
        assert cmp.loc[backend, "epoch_time_ratio"] == pytest.approx(ref_time / time_s)
        assert cmp.loc[backend, "samples_per_s_ratio"] == pytest.approx(time_s / ref_time)
    # registry order first, then backends it does not know
    assert summary.comparison["backend"].tolist() == ["tensorflow", THIRD]


def test_two_suites_that_name_the_same_case_are_never_pooled_and_tables_name_the_suite():
    """s1_alexnet_quick and zoo_quick both train scratch-alexnet-fashion_mnist, with other settings: one run's
    summary keeps them apart, with the suite before the case wherever the run holds several suites."""
    rows = []
    for suite, acc, time_s in (("s1", 0.9, 2.0), ("zoo", 0.5, 4.0)):
        for backend in (REFERENCE_BACKEND, "tensorflow"):
            rows += [
                r | {"suite": suite, "trial_id": f"{suite}-{r['trial_id']}"} for r in _rows(backend, "mlp", acc, time_s)
            ]
    summary = summarize(to_frame(rows))
    per_backend = summary.per_backend.set_index(["suite", "backend"])
    assert len(per_backend) == 4
    for suite, acc, time_s in (("s1", 0.9, 2.0), ("zoo", 0.5, 4.0)):
        assert per_backend.loc[(suite, "tensorflow"), "test_acc_mean"] == pytest.approx(acc)
        assert per_backend.loc[(suite, "tensorflow"), "epoch_time_s_median"] == pytest.approx(time_s)
    assert sorted(summary.statistics["suite"]) == ["s1", "zoo"]
    text = reporting.run_markdown(summary, "t")
    assert "| s1: scratch | mlp |" in text and "| zoo: scratch | mlp |" in text
    assert {reporting.case_name(r) for _, r in summary.comparison.iterrows()} == {
        "s1:scratch-mlp-digits",
        "zoo:scratch-mlp-digits",
    }
    single = summarize(to_frame([r for r in rows if r["suite"] == "s1"]))
    assert reporting.case_name(single.per_backend.iloc[0]) == "scratch-mlp-digits"  # one suite: no prefix
    assert "| scratch | mlp |" in reporting.run_markdown(single, "t")


def test_another_reference_backend_is_compared_with_every_other():
    summary = summarize(_three_backend_frame(), reference="tensorflow")
    cmp = summary.comparison.set_index(["model", "backend"])
    assert sorted(cmp.index) == sorted([("mlp", REFERENCE_BACKEND), ("mlp", THIRD)])
    assert cmp.loc[("mlp", THIRD), "epoch_time_ratio"] == pytest.approx(1.0 / 4.0)


def test_run_markdown_has_one_table_per_backend_against_the_reference():
    text = reporting.run_markdown(summarize(_three_backend_frame()), "three")
    ref = REFERENCE_BACKEND
    assert text.startswith("# three\n\n## Per backend")
    for backend in ("tensorflow", THIRD):
        section = text.split(f"## {ref} vs {backend}\n")[1].split("\n## ")[0]
        assert f"epoch time {ref} / {backend}" in section and "| scratch | mlp | digits |" in section
        assert "| cnn |" not in section
    assert f"| scratch | mlp | digits | {100 * (0.90 - 0.80):+.2f} | 0.500 | 2.000 |" in text
    assert f"reference backend, {ref}" in text


def test_a_ratio_timed_by_a_warm_up_epoch_is_marked_as_its_epoch_time_is():
    """One epoch per trial: the only epoch time is the warm-up's (tracing, compiling), and so is the ratio."""
    rows = [r for b, t in ((REFERENCE_BACKEND, 2.0), ("tensorflow", 1.0)) for r in _rows(b, "mlp", 0.9, t)]
    frame = to_frame([r for r in rows if r["epoch"] == 1 or r["backend"] == REFERENCE_BACKEND])
    frame.loc[frame["epoch"] == 1, "test_acc"] = 0.9  # the tensorflow trials end after their warm-up epoch
    text = reporting.run_markdown(summarize(frame), "one epoch")
    assert "| scratch | mlp | digits | +0.00 | 0.200 (warm-up) | 0.500 (warm-up) |" in text
    assert "10.000 (warm-up)" in text  # the per-backend cell, as before
    assert "| 1,000 (warm-up) |" in text  # and the samples/s it timed
    steady = reporting.run_markdown(summarize(_three_backend_frame()), "three")
    assert "(warm-up)" not in steady.split("epoch time")[-1]


def test_the_warm_up_epochs_seconds_stand_beside_the_steady_epoch_time_in_both_per_backend_tables():
    """What a first epoch pays (tracing, torch.compile, XLA) is shown for every case, not only the speed matrix's:
    here each backend's warm-up epochs take 10 s (the median over its trials) against 2.0 / 1.0 s steady epochs."""
    rows = [r for b, acc, t in THREE[:2] for r in _rows(b, "mlp", acc, t)]
    for row in rows:
        if row["backend"] == "tensorflow" and row["warmup"]:
            row["epoch_time_s"] = 30.0 + row["seed"]  # seeds 0 and 1: the median is 30.5
    summary = summarize(to_frame(rows))
    text = reporting.run_markdown(summary, "warm")
    assert "| epoch time s (median) | warm-up epoch s (median) |" in text
    assert "| 2.000 | 10.000 |" in text and "| 1.000 | 30.500 |" in text
    (table,) = [t for t in reporting.run_tables(summary) if t.name == "per_backend"]
    cells = {row[1]: row[table.header.index("warm-up s")] for row in table.rows}
    assert cells == {REFERENCE_BACKEND: "10.00", "tensorflow": "30.50"}


def test_deep_features_extractor_warm_up_and_scikit_learn_version_are_reported():
    """deep_features has no warm-up epoch: its extractor's one-off tracing or compiling (extraction_warmup_s in the
    row's details) was recorded nowhere and its warm-up cell read n/a; the scikit-learn that fits its heads stands in
    run.json's framework versions beside the backends' (compare warns when it differs)."""
    from harness.summary import framework_versions

    rows = []
    for backend, warmups in (("torch", (0.2, 0.4)), ("tensorflow", (1.0, 3.0))):
        for seed, warmup in enumerate(warmups):
            row = _rows(backend, "cnn_small", 0.9, 0.01, seeds=1)[-1]
            details = {"extraction_warmup_s": warmup, "scikit_learn_version": "1.9.1", "features_cached": False}
            row.update(strategy="deep_features", trial_id=f"df-{backend}-{seed}", seed=seed, phase="sklearn", epoch=1)
            row.update(warmup=False, details_json=json.dumps(details), framework_version=f"{backend}-v")
            rows.append(row)
    frame = to_frame(rows)
    (table,) = [t for t in reporting.run_tables(summarize(frame)) if t.name == "per_backend"]
    cells = {row[1]: row[table.header.index("warm-up s")] for row in table.rows}
    assert cells == {"torch": "0.30", "tensorflow": "2.00"}  # the medians over each backend's trials
    assert framework_versions(frame) == {"torch": "torch-v", "tensorflow": "tensorflow-v", "scikit-learn": "1.9.1"}


def test_a_warm_up_only_case_is_timed_by_each_trials_last_attempt():
    """One epoch per trial and a retried trial: its first attempt's ok warm-up epoch (90 s, then the trial failed)
    is no more part of the timing than a retried trial's steady epochs are."""
    rows = [
        r | {"attempt": 1}
        for b in (REFERENCE_BACKEND, "tensorflow")
        for r in _rows(b, "mlp", 0.9, 1.0, seeds=1)
        if r["epoch"] == 1
    ]
    retried = rows[0] | {"attempt": 0, "epoch_time_s": 90.0, "samples_per_s": 1.0}
    failed = retried | {"epoch": None, "status": "failed", "epoch_time_s": math.nan, "samples_per_s": math.nan}
    for row in rows:
        row["test_acc"] = 0.9
    summary = summarize(to_frame([retried, failed, *rows]))
    per_backend = summary.per_backend.set_index("backend")
    assert per_backend.loc[REFERENCE_BACKEND, "epoch_time_s_median"] == pytest.approx(10.0)
    assert per_backend.loc[REFERENCE_BACKEND, "samples_per_s_median"] == pytest.approx(1000.0)
    assert summary.comparison.iloc[0]["epoch_time_ratio"] == pytest.approx(1.0)


def test_mc_dropout_cases_get_their_own_table_with_the_passes_figures_averaged_over_seeds():
    rows = (
        _rows(REFERENCE_BACKEND, "cnn", 0.9, 1.0) + _rows("tensorflow", "cnn", 0.9, 1.0) + _rows("jax", "mlp", 0.8, 1.0)
    )
    for row in rows:
        if row["epoch"] == 3 and row["model"] == "cnn":  # the final row of each cnn trial: seed 0 and seed 1
            row.update(mc_test_acc=0.90 + 0.02 * row["seed"], mc_mean_prob=0.80, mc_pred_std=0.05 + 0.01 * row["seed"])
    summary = summarize(to_frame(rows))
    text = reporting.run_markdown(summary, "mc")
    section = text.split("## MC dropout\n")[1].split("\n## ")[0]
    for backend in (REFERENCE_BACKEND, "tensorflow"):
        assert f"| scratch-cnn-digits | {backend} | 0.9000 | 0.9100 | 0.8000 | 0.0550 |" in section
    assert "mlp" not in section  # a case without passes has no MC figures
    assert [t.name for t in reporting.run_tables(summary)].count("mc_dropout") == 1
    plain = reporting.run_markdown(summarize(to_frame(_rows(REFERENCE_BACKEND, "mlp", 0.9, 1.0))), "plain")
    assert "MC dropout" not in plain


def test_cases_whose_backends_compute_differently_are_listed_with_why():
    rows = _rows(REFERENCE_BACKEND, "cnn", 0.9, 1.0) + _rows("tensorflow", "cnn", 0.9, 1.0)
    rows += _rows(REFERENCE_BACKEND, "mlp", 0.9, 1.0) + _rows("tensorflow", "mlp", 0.9, 1.0)
    for row in rows:
        row["inexact"] = "mixed_bfloat16: each framework chooses which ops run in reduced precision" * (
            row["model"] == "cnn"
        )
    text = reporting.run_markdown(summarize(to_frame(rows)), "inexact")
    section = text.split("## Not computed exactly alike\n")[1].split("\n## ")[0]
    assert (
        "| scratch-cnn-digits | mixed_bfloat16: each framework chooses which ops run in reduced precision |" in section
    )
    assert "mlp" not in section
    plain = reporting.run_markdown(summarize(to_frame(_rows(REFERENCE_BACKEND, "mlp", 0.9, 1.0))), "plain")
    assert "Not computed exactly alike" not in plain


def test_cases_that_train_in_two_phases_get_each_phases_epoch_time():
    """S4: B-on-A trains frozen, then unfrozen; the per-backend table pools the phases, this one keeps them apart."""
    rows = []
    for backend, frozen_s, unfrozen_s in ((REFERENCE_BACKEND, 0.5, 2.0), ("tensorflow", 0.4, 1.5)):
        for seed in (0, 1):
            for phase, seconds, epochs in (("frozen", frozen_s, (1, 2, 3)), ("unfrozen", unfrozen_s, (4, 5, 6, 7))):
                for epoch in epochs:
                    first = epoch == epochs[0]
                    row = _rows(backend, "mlp", 0.9, seconds, seeds=1)[0]
                    row.update(trial_id=f"ab-{backend}-{seed}", variant="B_on_A", seed=seed, phase=phase, epoch=epoch)
                    row.update(warmup=first, epoch_time_s=10.0 if first else seconds, samples_per_s=100 / seconds)
                    # the frozen phase's step skips the frozen layers' weight gradients: fewer MACs per sample
                    row.update(forward_macs=1e6, step_macs=2e6 if phase == "frozen" else 3e6)
                    rows.append(row)
    rows += _rows(REFERENCE_BACKEND, "cnn", 0.9, 1.0)  # one phase: not in the table
    summary = summarize(to_frame(rows))
    table = summary.phases.set_index(["backend", "phase"])
    assert table.loc[(REFERENCE_BACKEND, "frozen"), "epoch_time_s_median"] == 0.5
    assert table.loc[("tensorflow", "unfrozen"), "epoch_time_s_median"] == 1.5
    assert table.loc[(REFERENCE_BACKEND, "unfrozen"), "epochs"] == 6  # 3 steady epochs x 2 seeds
    # each phase at its own step's cost: 2 FLOPs x 2e6 MACs x 200 samples/s frozen, 2 x 3e6 x 50 unfrozen
    assert table.loc[(REFERENCE_BACKEND, "frozen"), "train_gflops"] == pytest.approx(0.8)
    assert table.loc[(REFERENCE_BACKEND, "unfrozen"), "train_gflops"] == pytest.approx(0.3)
    text = reporting.run_markdown(summary, "phases")
    section = text.split("## Epoch time per phase\n")[1].split("\n## ")[0]
    assert f"| scratch-mlp+B_on_A-digits | {REFERENCE_BACKEND} | frozen | 4 | 0.500 | 200 | 0.80 |" in section
    assert "| scratch-mlp+B_on_A-digits | tensorflow | unfrozen | 6 | 1.500 | 67 | 0.40 |" in section
    assert section.index("| frozen |") < section.index("| unfrozen |") and "cnn" not in section
    # a one-epoch frozen phase (its epoch warm-up) stays in the table, marked, instead of dropping out unsaid
    short = [dict(r, trial_id=r["trial_id"] + "-short", variant="short") for r in rows if r["epoch"] in (1, 4, 5, 6)]
    for row in short:
        row["warmup"] = row["epoch"] in (1, 4)
    table = summarize(to_frame(short)).phases.set_index(["backend", "phase"])
    assert (
        table.loc[(REFERENCE_BACKEND, "frozen"), "warmup_only"]
        and table.loc[(REFERENCE_BACKEND, "frozen"), "epochs"] == 2
    )
    assert table.loc[(REFERENCE_BACKEND, "frozen"), "epoch_time_s_median"] == 10.0  # the warm-up epochs' time
    assert "| frozen | 2 (warm-up) | 10.000 |" in reporting.run_markdown(summarize(to_frame(short)), "short")
    # every phase one epoch long (--epochs 2 --frozen-epochs 1): no steady epoch in the run at all, and the table
    # was missing, not marked
    tiny = [dict(r, warmup=True) for r in rows if r["epoch"] in (1, 4) and r["model"] == "mlp"]
    table = summarize(to_frame(tiny)).phases
    assert len(table) == 4 and table["warmup_only"].all(), table


def test_an_s4_case_lists_the_source_phase_that_trained_its_backbone_in_this_run():
    """S4a: the backbone trains on 5-9 in the pretrain stage (torch), each backend's case then trains frozen on 0-4:
    both backends' rows show that source phase, named with who trained it; a cached backbone shows none, and its
    case's own phases still show."""

    def trial(trial_id, strategy, variant, backend, phase, seconds, details=""):
        rows = _rows(backend, "cnn_small", 0.9, seconds, seeds=1)
        for row in rows:
            row.update(trial_id=trial_id, strategy=strategy, variant=variant, phase=phase, details_json="")
        rows[-1]["details_json"] = details
        return rows

    rows = trial("pre-s0", "pretrain", "backbone-0123456789", REFERENCE_BACKEND, "source", 0.8)
    for backend, seconds in ((REFERENCE_BACKEND, 0.2), ("tensorflow", 0.3)):
        rows += trial(
            f"s4-{backend}", "transfer", "5-9to0-4", backend, "frozen", seconds, '{"backbone": "0123456789ab"}'
        )
        rows += trial(
            f"old-{backend}", "transfer", "0-4to5-9", backend, "frozen", seconds, '{"backbone": "feedbeef00"}'
        )
    table = summarize(to_frame(rows)).phases
    for backend, seconds in ((REFERENCE_BACKEND, 0.2), ("tensorflow", 0.3)):
        own = table[(table["backend"] == backend) & (table["variant"] == "5-9to0-4")]
        assert list(own["phase"]) == [f"source (trained by {REFERENCE_BACKEND})", "frozen"]
        assert list(own["epoch_time_s_median"]) == [0.8, seconds] and list(own["epochs"]) == [2, 2]
        # the case whose backbone came from the cache keeps its own phase (it dropped out of the table: every run
        # after the first lost S4's per-phase times)
        cached = table[(table["backend"] == backend) & (table["variant"] == "0-4to5-9")]
        assert list(cached["phase"]) == ["frozen"] and list(cached["epoch_time_s_median"]) == [seconds]


def test_a_tunes_comparison_and_statistics_say_where_the_backends_picks_differ():
    """Both backends' re-runs of their picks share the case `+tuned`, so they were paired: where the picks differed
    (batch size 32 against 64, another lr), the time ratio and its mark compared different workloads, and only the
    Settings section showed it (review 154)."""
    base = TrialConfig(strategy="scratch", model="mlp", dataset="digits", backend="torch", seed=1, epochs=3)

    def tuned(picks: dict[str, TrialConfig]) -> pd.DataFrame:
        rows = []
        for backend, config in picks.items():
            for row in _rows(backend, "mlp", 0.9, 0.2, seeds=2):
                row.update(variant="tuned", stage="final", config_json=config.to_json())
                rows.append(row)
        return to_frame(rows)

    tf_base = dataclasses.replace(base, backend="tensorflow")
    differ = {
        REFERENCE_BACKEND: dataclasses.replace(base, tuned=True, batch_size=32),
        "tensorflow": dataclasses.replace(
            tf_base, tuned=True, batch_size=64, optimizer=dataclasses.replace(base.optimizer, lr=0.1)
        ),
    }
    summary = summarize(tuned(differ))
    said = "each backend's pick differs in batch_size, optimizer.lr: the time and samples/s ratios compare different"
    assert summary.comparison["note"].str.startswith(said).all() and len(summary.comparison) == 1
    assert said in summary.statistics["note"].iloc[0]
    text = reporting.run_markdown(summary, "tune")
    assert f"| {said}" in text.split("## Statistics")[0] and said in text.split("## Statistics")[1]
    [pair] = [t for t in reporting.run_tables(summary) if t.name.endswith("_vs_tensorflow")]
    assert pair.header[-1] == "note" and pair.rows[0][-1].startswith(said)
    # the same pick, or trials that are no tune's re-runs: no note, and no note column
    alike = {
        REFERENCE_BACKEND: dataclasses.replace(base, tuned=True),
        "tensorflow": dataclasses.replace(tf_base, tuned=True),
    }
    untuned = {REFERENCE_BACKEND: base, "tensorflow": dataclasses.replace(tf_base, batch_size=64)}
    for picks in (alike, untuned):
        summary = summarize(tuned(picks))
        assert summary.comparison["note"].eq("").all() and summary.statistics["note"].eq("").all()
        assert "note" not in reporting.run_markdown(summary, "tune").split("## Statistics")[0]


def test_a_tune_runs_summary_and_report_keep_the_source_phase_of_the_backbone_it_trained():
    """A tune's tables came from its final stage alone, so a transfer case lost the source phase of the backbone the
    run had trained (its pretrain stage); its search samples still stay out of them."""
    from harness.plan import RunPlan
    from harness.report_html import _head_to_head_rows
    from harness.runner import _summary
    from harness.search import parse_space
    from harness.tuning import TunePlan

    def trial(trial_id, strategy, variant, backend, phase, stage, details=""):
        rows = _rows(backend, "cnn_small", 0.9, 0.2, seeds=1)
        for row in rows:
            row.update(trial_id=trial_id, strategy=strategy, variant=variant, phase=phase, stage=stage, details_json="")
            row.update(config_json=base.to_json(), status="ok")
        rows[-1]["details_json"] = details
        return rows

    base = TrialConfig(strategy="scratch", model="mlp", dataset="digits", backend="torch", seed=0, epochs=3)
    rows = trial("pre-s0", "pretrain", "backbone-0123456789", REFERENCE_BACKEND, "source", "pretrain")
    for backend in (REFERENCE_BACKEND, "tensorflow"):
        backbone = '{"backbone": "0123456789ab"}'
        rows += trial(f"sample-{backend}", "transfer", "search000", backend, "frozen", "search", backbone)
        rows += trial(f"tuned-{backend}", "transfer", "tuned", backend, "frozen", "final", backbone)
    frame = to_frame(rows)
    plan = RunPlan("tune", "tune", "tune", search=TunePlan(bases=(base,), space=parse_space(["lr=choice:0.1,1.0"])))
    context = SimpleNamespace(
        run_file=SimpleNamespace(plan=plan),
        reference=REFERENCE_BACKEND,
        run=SimpleNamespace(status="finished", run_id="t"),
    )
    summary, _ = _summary(context, frame)
    assert set(summary.phases["variant"]) == {"tuned"}  # no search sample in the tables
    for backend in (REFERENCE_BACKEND, "tensorflow"):
        own = summary.phases[summary.phases["backend"] == backend]
        assert list(own["phase"]) == [f"source (trained by {REFERENCE_BACKEND})", "frozen"]
    shown = _head_to_head_rows(SimpleNamespace(frame=frame, info={"tune": True}))
    assert set(shown["stage"]) == {"pretrain", "final"}


def test_a_one_epoch_backbone_keeps_its_source_phase_marked_warm_up():
    """--source-epochs 1 --epochs 2 --frozen-epochs 1: every phase, the source one too, is one warm-up epoch. The
    frozen and unfrozen phases fell back to that epoch, marked; the source phase dropped out of the table."""

    def epoch(trial_id, strategy, backend, phase, number, details=""):
        row = _rows(backend, "cnn_small", 0.9, 1.0, seeds=1)[0]
        row.update(trial_id=trial_id, strategy=strategy, variant=strategy, phase=phase, epoch=number)
        row.update(details_json=details, test_acc=0.9, epoch_time_s=10.0 * number, warmup=True)
        return row

    rows = [epoch("pre-s0", "pretrain", REFERENCE_BACKEND, "source", 1)]
    rows[0]["variant"] = "backbone-0123456789"
    for backend in (REFERENCE_BACKEND, "tensorflow"):
        details = '{"backbone": "0123456789ab"}'
        rows += [
            epoch(f"s4-{backend}", "transfer", backend, phase, n, details)
            for phase, n in (("frozen", 2), ("unfrozen", 3))
        ]
    summary = summarize(to_frame(rows))
    for backend in (REFERENCE_BACKEND, "tensorflow"):
        own = summary.phases[summary.phases["backend"] == backend]
        assert list(own["phase"]) == [f"source (trained by {REFERENCE_BACKEND})", "frozen", "unfrozen"]
        assert list(own["epoch_time_s_median"]) == [10.0, 20.0, 30.0] and own["warmup_only"].all()
    section = reporting.run_markdown(summary, "one").split("## Epoch time per phase\n")[1].split("\n## ")[0]
    assert f"| source (trained by {REFERENCE_BACKEND}) | 1 (warm-up) | 10.000 |" in section


def test_the_per_backend_table_shows_the_last_epochs_validation_accuracy():
    """The notebooks' bars are on validation accuracy (S1: "val accuracy > 40 %"), which the suites assert
    (min_val_acc), yet no table showed it: the per-backend table has its mean over the seeds' last epochs."""
    rows = _rows(REFERENCE_BACKEND, "mlp", 0.9, 1.0)
    for row in rows:
        row["val_acc"] = {1: 0.2, 2: 0.3, 3: 0.41 if row["seed"] == 0 else 0.45}[row["epoch"]]
    summary = summarize(to_frame(rows))
    assert summary.per_backend["val_acc_mean"].tolist() == [pytest.approx(0.43)]
    text = reporting.run_markdown(summary, "val")
    assert "| val acc (mean, last epoch) |" in text and "| 0.9000 ± 0.0000 | 0.4300 |" in text
    # the CLI's table (terminal, --format md, report.html) too, as docs/results-schema.md says: only summary.md had it
    (table,) = [t for t in reporting.run_tables(summary) if t.name == "per_backend"]
    assert [row[table.header.index("val acc")] for row in table.rows] == ["0.4300"]
    assert "val acc" in reporting.render_text(table, 200) and "| val acc |" in reporting.markdown_tables([table])


def test_a_backend_none_of_whose_trials_ended_ok_is_not_told_to_run_more_epochs():
    """Three-epoch trials that all diverged at their last epoch were noted "no steady epoch (a phase's first is
    warm-up) …; run 2 epochs or more": they had run three. The advice stays for ok trials of one epoch."""
    other = THREE[1][0]
    rows = _rows(REFERENCE_BACKEND, "mlp", 0.9, 1.0) + _rows(other, "mlp", 0.9, 1.0)
    for row in rows:
        if row["backend"] == other and row["epoch"] == 3:
            row.update(status="diverged", train_loss=math.inf, test_acc=math.nan)
    (note,) = summarize(to_frame(rows)).statistics["note"]
    assert f"no {other} trial ended ok: no time ratio" in note
    assert "run 2 epochs" not in note and "warm-up" not in note
    swapped = summarize(to_frame(rows), other).statistics  # the reference's side, named as such
    assert f"no {other} trial ended ok: no time ratio" in swapped["note"].iloc[0]
    one_epoch = [r for r in _rows(REFERENCE_BACKEND, "mlp", 0.9, 1.0) if r["epoch"] == 1]
    one_epoch += [r for r in rows if r["backend"] == other]
    (note,) = summarize(to_frame(one_epoch)).statistics["note"]
    assert f"no {other} trial ended ok: no time ratio" in note and "run 2 epochs or more" in note
    assert f"no {REFERENCE_BACKEND} trial" not in note


def test_the_schema_says_a_non_finite_validation_loss_diverges_a_trial_too():
    """harness/training.py stops a trial whose validation loss is NaN beside a finite training loss (BatchNorm's
    moving statistics broke); the schema's conventions named the training loss only."""
    text = " ".join((ROOT / "docs" / "results-schema.md").read_text().split())
    assert "A trial whose training loss or validation loss became NaN or infinite stops" in text


def test_a_run_on_the_reference_alone_says_no_other_backend_ran():
    text = reporting.run_markdown(summarize(to_frame(_rows(REFERENCE_BACKEND, "mlp", 0.9, 1.0))), "alone")
    assert f"## Against the reference backend ({REFERENCE_BACKEND})\n\n(no other backend ran)" in text


def test_a_backend_without_a_shared_case_gets_an_empty_section():
    frame = to_frame(_rows(REFERENCE_BACKEND, "mlp", 0.9, 1.0) + _rows(THIRD, "cnn", 0.9, 1.0))
    text = reporting.run_markdown(summarize(frame), "apart")
    assert f"## {REFERENCE_BACKEND} vs {THIRD}\n\n(no case ran on both backends)" in text


def _comparison_tables(summary) -> list[reporting.TableData]:
    return [t for t in reporting.run_tables(summary) if t.name.startswith(f"{summary.reference}_vs_")]


def test_the_terminal_and_report_tables_say_that_no_other_backend_ran():
    """summary.md said "(no other backend ran)"; the terminal, ``--format md`` and report.html (all drawn from
    run_tables) dropped the comparison without a word, and their note told how its ratios read."""
    summary = summarize(to_frame(_rows(REFERENCE_BACKEND, "mlp", 0.9, 1.0)))
    (table,) = _comparison_tables(summary)
    assert table.title == f"Against the reference backend ({REFERENCE_BACKEND}): no other backend ran"
    assert table.rows == () and table.title in reporting.render_text(table, 200)
    assert f"## {table.title}" in reporting.markdown_tables(reporting.run_tables(summary))
    (per_backend,) = [t for t in reporting.run_tables(summary) if t.name == "per_backend"]
    assert "Nothing is compared (no other backend ran)." in per_backend.note
    assert "Each comparison sets" not in per_backend.note
    assert "Nothing is compared (no other backend ran)." in reporting.run_markdown(summary, "alone")


def test_the_terminal_and_report_tables_say_that_no_case_ran_on_both_backends():
    frame = to_frame(_rows(REFERENCE_BACKEND, "mlp", 0.9, 1.0) + _rows(THIRD, "cnn", 0.9, 1.0))
    summary = summarize(frame)
    (table,) = _comparison_tables(summary)
    assert table.title == f"{REFERENCE_BACKEND} vs {THIRD}: no case ran on both backends" and table.rows == ()
    assert "Nothing is compared (no case ran on both backends)." in reporting.run_note(summary)
    # where one pair is compared, the note says how to read the comparisons, and the other pair's table why it is empty
    rows = [r for backend, acc, time_s in THREE[:2] for r in _rows(backend, "mlp", acc, time_s)]
    summary = summarize(to_frame(rows + _rows(THIRD, "cnn", 0.9, 1.0)))
    titles = {t.name: t.title for t in _comparison_tables(summary)}
    assert titles[f"{REFERENCE_BACKEND}_vs_{THIRD}"].endswith(": no case ran on both backends")
    assert "acc difference pp" in titles[f"{REFERENCE_BACKEND}_vs_tensorflow"]
    assert "Each comparison sets a backend against the reference backend" in reporting.run_note(summary)


def test_a_run_without_the_reference_backend_says_the_reference_did_not_run():
    """A TensorFlow-only run is compared with torch, which it did not train: its note read "Each comparison sets a
    backend against the reference backend, torch", and summary.md "(no case ran on both backends)" alone."""
    summary = summarize(to_frame(_rows("tensorflow", "mlp", 0.9, 1.0)))
    assert summary.reference == REFERENCE_BACKEND
    why = f"no case ran on both backends; {REFERENCE_BACKEND}, the reference backend, did not run"
    (table,) = _comparison_tables(summary)
    assert table.title == f"{REFERENCE_BACKEND} vs tensorflow: {why}" and table.rows == ()
    markdown = reporting.run_markdown(summary, "tf")
    assert f"## {REFERENCE_BACKEND} vs tensorflow\n\n({why})" in markdown
    assert f"Nothing is compared ({why})." in markdown and "Each comparison sets" not in markdown


def test_the_terminal_and_report_per_backend_table_carries_the_parameter_count():
    """summary.md's per-backend table has a params column; the terminal's, which report.html shows, had none."""
    rows = _rows(REFERENCE_BACKEND, "mlp", 0.9, 1.0) + _rows("tensorflow", "cnn", 0.9, 1.0)
    for row in rows:
        row["params"] = 27_370 if row["model"] == "mlp" else 1_234_567
    summary = summarize(to_frame(rows))
    (table,) = [t for t in reporting.run_tables(summary) if t.name == "per_backend"]
    cells = {(row[0], row[1]): row[table.header.index("params")] for row in table.rows}
    expected = {
        (reporting.case_name(r), r["backend"]): f"{int(r['params']):,}" for _, r in summary.per_backend.iterrows()
    }
    assert cells == expected and set(cells.values()) == {"27,370", "1,234,567"}
    assert "params" in table.title


def test_terminal_summary_prints_one_comparison_table_per_other_backend(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("COLUMNS", "250")
    summary = summarize(_three_backend_frame())
    reporting.print_run_summary(
        SimpleNamespace(status="finished", run_id="r3", run_dir=tmp_path, summary=summary, wall_time_s=1.5)
    )
    out = capsys.readouterr().out
    assert (
        "xfbench — run r3" in out
        and f"{REFERENCE_BACKEND} vs tensorflow" in out
        and f"{REFERENCE_BACKEND} vs {THIRD}" in out
    )
    # short headers: the units and the direction of the ratios are in the title
    assert f"ratios {REFERENCE_BACKEND} / {THIRD}" in out and "wall time 1.5s" in out


def test_the_summary_says_how_many_worker_processes_ran_each_backends_trials(capsys, monkeypatch, tmp_path):
    """Warm workers (several trials a process) or fresh ones (--fresh-workers) said nowhere but run.json."""
    monkeypatch.setenv("COLUMNS", "250")
    frame = _three_backend_frame()
    pids = {trial: 100 + (i % 2) for i, trial in enumerate(sorted(frame["trial_id"].unique()))}
    frame = frame.assign(worker_pid=frame["trial_id"].map(pids).astype("Int64"), host="h")
    trials = frame.groupby("backend")["trial_id"].nunique()
    outcome = SimpleNamespace(
        status="finished", run_id="r", run_dir=tmp_path, summary=summarize(frame), wall_time_s=1.0, frame=frame
    )
    reporting.print_run_summary(outcome)
    out = " ".join(capsys.readouterr().out.split())
    assert f"{REFERENCE_BACKEND} {trials[REFERENCE_BACKEND]} trial(s) in 2 worker process(es)" in out
    driver_only = frame.assign(worker_pid=pd.NA)  # rows the driver wrote (skipped trials): no process to count
    assert reporting.worker_processes(driver_only.astype({"worker_pid": "Int64"})) == ""


def test_the_summary_names_only_the_files_the_run_wrote(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("COLUMNS", "250")
    for name in ("results.parquet", "results.csv", "run.json", "summary.md"):  # --no-report: no report.html
        (tmp_path / name).write_text("")
    summary = summarize(_three_backend_frame())
    reporting.print_run_summary(
        SimpleNamespace(status="finished", run_id="r4", run_dir=tmp_path, summary=summary, wall_time_s=1.0)
    )
    out = capsys.readouterr().out
    assert f"({', '.join(('results.parquet', 'results.csv', 'run.json', 'summary.md'))})" in out
    assert "report.html" not in out


def _case(case: str, verdict: str) -> CaseComparison:
    diff = -5.0 if verdict == "regression" else 0.0
    interval = (1.15, 1.25)
    return CaseComparison(
        case, "tensorflow", 1.0, 1.2, 1.2, 0.001, verdict, 0.9, 0.85, diff, (-6.0, -4.0), verdict, "", interval
    )


def test_comparison_renderers_agree_on_the_regressions(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    rows = [_case("s:a", "regression"), _case("s:b", "unchanged")]
    text = reporting.comparison_markdown(rows, "base", "new", ["different machines"], Thresholds())
    assert text.startswith("# xfbench compare: base → new\n\n> **WARNING:** different machines\n")
    assert "**1 regression(s)**: s:a [tensorflow]" in text and "| s:b | tensorflow |" in text
    run = SimpleNamespace(label="base"), SimpleNamespace(label="new")
    reporting.print_comparison(run[0], run[1], rows, ["different machines"])
    out = capsys.readouterr().out
    assert "WARNING: different machines" in out and "regression: s:a [tensorflow]" in out
    assert out.rstrip().endswith("1 regression(s) in 2 case(s) run by both")


def test_compare_markdown_writes_run_text_outside_its_table_as_written_not_as_html():
    """Only the table's cells were escaped: a suite variant's ``<img ...>`` in the verdict, a label or a warning
    went raw into the file CI posts as a pull request's comment."""
    tag = "<img src=x onerror=alert(1)>"
    rows = [_case(f"s:a+{tag}", "regression")]
    text = reporting.comparison_markdown(rows, f"base{tag}", "new", [f"case s:a+{tag} changed"], Thresholds())
    assert "<img" not in text  # nowhere raw
    escaped = "&lt;img src=x onerror=alert(1)&gt;"
    assert text.startswith(f"# xfbench compare: base{escaped} → new\n\n> **WARNING:** case s:a+{escaped} changed\n")
    assert f"**1 regression(s)**: s:a+{escaped} [tensorflow]." in text


def test_compare_and_history_fit_80_columns(capsys, monkeypatch):
    """Issue 15: like `run`, `compare` and `history` print no line over the terminal's 80 columns."""
    monkeypatch.setenv("COLUMNS", "80")
    long_case = "quick:transfer_freeze-alexnet_tv+B_on_A-fashion_mnist"
    rows = [_case(long_case, "regression"), _case("s:b", "unchanged"), _case("s:c", "improvement")]
    # cases whose time moved beyond the band, undecided: the count line names each (it ran to 1,202 characters)
    rows += [dataclasses.replace(_case(f"{long_case}-{i}", "n/a"), acc_verdict="unchanged") for i in range(4)]
    run = SimpleNamespace(label="20261130T054004-quick-suite"), SimpleNamespace(label="nightly-baseline")
    reporting.print_comparison(run[0], run[1], rows, ["different machines: " + "Some CPU model name, " * 6])
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "1.200* [1.150, 1.250]" in out and f"regression: {long_case} [tensorflow]" in out.replace("\n", " ")
    runs = tuple(
        HistoryRun(f"2026113{i}T054004-quick", "2026-11-30T05:40:04", "285087c1a2b3", "finished", 12) for i in range(10)
    )
    index = pd.MultiIndex.from_tuples([(long_case, "tensorflow"), ("s:b", "torch")], names=["case", "backend"])
    table = pd.DataFrame({r.run_id: [0.0512345, 0.1] for r in runs}, index=index)
    changes = (SettingsChange(runs[3].run_id, long_case, "tensorflow", "config differs: epochs 3→5"),)
    history = History(runs, table, changes)
    reporting.print_history(history, "epoch_time_s", "/a/rather/long/results/directory/on/this/machine")
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80 and out.count("0.05123") == 10
    assert out.count("0.05123 †") == 1 and "config differs: epochs 3→5" in out


def test_history_and_catalogue_tables(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    runs = (
        HistoryRun("r1", "t", "abc", "finished", 2),
        HistoryRun("r2", "u", "abc", "interrupted", 1),
    )
    index = pd.MultiIndex.from_tuples([("s:case", "tensorflow")], names=["case", "backend"])
    table = pd.DataFrame({"r1": [0.123456], "r2": [math.nan]}, index=index)
    reporting.print_history(History(runs, table), "test_acc", "res")
    out = capsys.readouterr().out
    assert "runs in res" in out and "test_acc per case" in out and "0.1235" in out
    assert "r2 (unfinished)" in out and "r1 (unfinished)" not in out  # its figures stop where the run did
    reporting.print_catalogue()
    out = capsys.readouterr().out
    assert all(f"backends/{name}" in out for name in BACKENDS) and "xfbench catalogue" in out
    assert "[1 case × 3 seeds]" in out and "[3 cases × 2 seeds]" in out  # paired_accuracy, quick
    assert "Adam with decoupled weight decay (--weight-decay, default 0.01)" in out  # every optimizer described


def test_search_markdown_lists_every_sample_and_marks_each_backends_pick(monkeypatch):
    table = pd.DataFrame(
        {
            "case": ["c", "c", "c"],
            "backend": [REFERENCE_BACKEND, REFERENCE_BACKEND, THIRD],
            "sample": ["000", "001", "000"],
            "trial_id": ["t0", "t1", "t2"],
            "optimizer.lr": [0.01, 0.123456, 0.5],
            "hidden": [(64, 32), (64,), (8,)],
            "epochs_run": [3, 1, 3],
            "stopped_early": [False, True, False],
            "val_acc": [0.8, 0.5, math.nan],
            "status": ["ok", "ok", "failed"],
        }
    )
    monkeypatch.setattr(reporting, "search_table", lambda frame, plan: table)
    plan = SimpleNamespace(
        algorithm="random",
        sampling_seed=7,
        trials_per_experiment=2,
        metric="val_acc",
        asha=None,
        final_seeds=3,
        space=SimpleNamespace(paths=("optimizer.lr", "hidden")),
        tie_break_by_other_metric=True,
    )
    text = reporting.search_markdown(pd.DataFrame(), plan)
    assert text.startswith("## Search\n\nrandom search, sampling seed 7, 2 trials per backend and case")
    assert "no early stopping" in text and "re-run with 3 seeds after the search's (variant `tuned`" in text
    assert f"| c | {REFERENCE_BACKEND} | 000 | 0.01 | 64/32 | 3 | 0.8 | ok | **best** |" in text
    assert f"| c | {REFERENCE_BACKEND} | 001 | 0.1235 | 64 | 1 | 0.5 | ok (stopped early) |  |" in text
    assert f"| c | {THIRD} | 000 | 0.5 | 8 | 3 | n/a | failed |  |" in text
    monkeypatch.setattr(reporting, "search_table", lambda frame, plan: table.iloc[0:0])
    assert reporting.search_markdown(pd.DataFrame(), plan).endswith("No search trial finished.\n")


def test_a_stacked_row_keeps_each_run_id_whole_and_beside_its_value():
    """History's columns are run ids: stacked on a narrow terminal, neither a run id nor its value may be split
    from the other or at a hyphen (which run a value belongs to was unclear)."""
    runs = tuple(f"20261203-07124{i}-tune-scratch-mlp-digits" for i in range(4))
    table = reporting.TableData("h", "t", ("case", "backend", *runs), (("c", "torch", "0.0381", "0.0402", "", "0.05"),))
    lines = reporting.render_text(table, 60).splitlines()
    assert max(len(line) for line in lines) <= 60
    for run, value in zip(runs, ("0.0381", "0.0402", None, "0.05"), strict=True):
        assert (f"{run} {value}" in "\n".join(lines)) if value else run not in "\n".join(lines)


def test_a_case_whose_trials_ran_with_other_threads_says_so():
    """A resume under another --cpus-per-trial runs the rest of a case with other threads: its epoch times (and
    summation order) are not one setting's, and nothing in summary.md said so."""
    rows = _rows(REFERENCE_BACKEND, "mlp", 0.9, 1.0) + _rows("tensorflow", "mlp", 0.9, 1.0)
    for row in rows:
        row["threads"] = 2 if row["backend"] == REFERENCE_BACKEND and row["seed"] == 1 else 1
    summary = summarize(to_frame(rows))
    settings = dict(zip(summary.per_backend["backend"], summary.per_backend["settings"], strict=True))
    assert settings == {REFERENCE_BACKEND: "threads 1/2", "tensorflow": ""}  # 1 alone is the default


def test_a_case_whose_workers_had_framework_variables_set_says_which():
    """framework_env (TF_XLA_FLAGS, TF_ENABLE_ONEDNN_OPTS, ...) changes what a framework runs while the options stay
    as recorded: compare warned of it, but summary.md and the report's settings did not say it."""
    rows = _rows(REFERENCE_BACKEND, "mlp", 0.9, 1.0) + _rows("tensorflow", "mlp", 0.9, 1.0)
    for row in rows:
        torch_row = row["backend"] == REFERENCE_BACKEND
        row["framework_env"] = "" if torch_row else "TF_ENABLE_ONEDNN_OPTS=0" if row["seed"] == 1 else ""
    summary = summarize(to_frame(rows))
    settings = dict(zip(summary.per_backend["backend"], summary.per_backend["settings"], strict=True))
    assert settings == {REFERENCE_BACKEND: "", "tensorflow": "framework_env TF_ENABLE_ONEDNN_OPTS=0/none"}
    for row in rows:
        row["framework_env"] = None  # rows from before the column: nothing to say
    assert set(summarize(to_frame(rows)).per_backend["settings"]) == {""}


def test_each_case_says_what_it_ran_with_away_from_the_defaults():
    """The case name does not say that a trial ran Keras fit, or another optimizer: the settings table does, in
    summary.md, the report and the terminal."""
    import json

    from harness.config import OptimizerConfig, RuntimeOptions, TrialConfig

    config = TrialConfig("scratch", "mlp", "digits", "tensorflow", 0, 3, optimizer=OptimizerConfig("adam", lr=1e-3))
    fitted = dataclasses.replace(config, runtime=RuntimeOptions(tf_mode="fit", jit_compile=True))
    rows = _rows("tensorflow", "mlp", 0.9, 1.0) + _rows(REFERENCE_BACKEND, "mlp", 0.9, 1.0)
    for row in rows:
        chosen = fitted if row["backend"] == "tensorflow" else dataclasses.replace(config, backend=REFERENCE_BACKEND)
        row["config_json"] = json.dumps(chosen.to_dict())
    summary = summarize(to_frame(rows))
    settings = dict(zip(summary.per_backend["backend"], summary.per_backend["settings"], strict=True))
    assert settings[REFERENCE_BACKEND] == 'epochs 3, optimizer.lr 0.001, optimizer.name "adam"'
    # runtime values as config_json records them, as the settings' are (they read `tf_mode fit`, `... True`)
    assert settings["tensorflow"] == settings[REFERENCE_BACKEND] + ', jit_compile true, tf_mode "fit"'
    text = reporting.run_markdown(summary, "settings")
    assert (
        '| scratch-mlp-digits | tensorflow | epochs 3, optimizer.lr 0.001, optimizer.name "adam", jit_compile true, '
        'tf_mode "fit" |' in text
    )
    assert "settings" in [t.name for t in reporting.run_tables(summary)]
    # a single case's epochs default to the planner's 5: a run given none said "epochs 5" (TrialConfig's 1 the base)
    for row in rows:
        row["config_json"] = json.dumps(dataclasses.replace(config, epochs=5, optimizer=OptimizerConfig()).to_dict())
    settings = dict(zip(*(summarize(to_frame(rows)).per_backend[c] for c in ("backend", "settings")), strict=True))
    assert settings == {REFERENCE_BACKEND: "", "tensorflow": ""}, settings


def test_markdown_cells_keep_pipes_angle_brackets_and_line_breaks_inside_their_cell():
    """A failed trial's error with a ``|`` split its row into more cells, ``<class 'NoneType'>`` or ``<b>`` was read
    as HTML by markdown renderers (nothing shown, or bold), and a line break ended the table."""
    import re

    rows = _rows(REFERENCE_BACKEND, "mlp", 0.9, 1.0) + _rows("tensorflow", "mlp", 0.9, 1.0)
    failed = next(r for r in rows if r["backend"] == "tensorflow" and r["seed"] == 1 and r["epoch"] == 3)
    failed.update(status="failed", test_acc=math.nan, error="TypeError: <class 'NoneType'> | a <b>bold</b> | b")
    section = reporting.run_markdown(summarize(to_frame(rows)), "t").split("## Trials not ok")[1]
    (row,) = [line for line in section.splitlines() if line.startswith("| scratch-mlp-digits")]
    assert len(re.split(r"(?<!\\)\|", row)) == len(reporting.NOT_OK_HEADER) + 2  # five cells between six pipes
    expected = "TypeError: &lt;class 'NoneType'&gt; \\| a &lt;b&gt;bold&lt;/b&gt; \\| b"
    assert row.endswith(f"| failed | {expected} |") and "<" not in section
    table = reporting.markdown_table(("case", "why"), [("a", "first line\nsecond\r\nthird"), ("b", "x")])
    assert table.splitlines()[2:] == ["| a | first line second third |", "| b | x |"]
    # an error that quotes an entity reads as written, not as the character it names
    assert reporting.markdown_cell("expected &lt;i&gt; & <b>") == "expected &amp;lt;i&amp;gt; &amp; &lt;b&gt;"


def test_small_mac_counts_keep_two_significant_digits():
    """A small MLP's 4,700 MACs read 0.00 MMAC; the convnets' keep two decimals."""
    assert [reporting.mmac_cell(m) for m in (4_700.0, 174_848.0, 1.8e9)] == ["0.0047", "0.17", "1,800.00"]


def test_trials_not_ok_are_listed_with_why_in_every_rendering():
    """A count ("1/2, 1 failed") said how many; nothing said which trial, or why."""
    rows = _rows(REFERENCE_BACKEND, "mlp", 0.9, 1.0) + _rows("tensorflow", "mlp", 0.9, 1.0)
    failed = next(r for r in rows if r["backend"] == "tensorflow" and r["seed"] == 1 and r["epoch"] == 3)
    failed.update(status="failed", epoch=None, test_acc=math.nan, error="RuntimeError: boom\n  more lines")
    diverged = next(r for r in rows if r["backend"] == REFERENCE_BACKEND and r["seed"] == 0 and r["epoch"] == 3)
    diverged.update(status="diverged", train_loss=math.inf, test_acc=math.nan)
    summary = summarize(to_frame(rows))
    expected = {
        ("scratch-mlp-digits", "tensorflow", "1", "failed", "RuntimeError: boom"),
        ("scratch-mlp-digits", REFERENCE_BACKEND, "0", "diverged", "at epoch 3, training loss inf"),
    }
    assert set(reporting.not_ok_rows(summary.not_ok)) == expected
    section = reporting.run_markdown(summary, "t").split("## Trials not ok")[1]
    assert "| scratch-mlp-digits | tensorflow | 1 | failed | RuntimeError: boom |" in section
    (table,) = [t for t in reporting.run_tables(summary) if t.name == "not_ok"]
    assert set(table.rows) == expected
    outcome = SimpleNamespace(status="finished", run_id="r", run_dir="r", wall_time_s=1.0)
    machine = reporting.machine_summary(summary, outcome, "json")  # type: ignore[arg-type]
    listed = json.loads(machine)["tables"]["not_ok"]
    assert {(t["backend"], t["seed"], t["status"]) for t in listed} == {
        ("tensorflow", 1, "failed"),
        ("torch", 0, "diverged"),
    }
    clean = summarize(to_frame(_rows(REFERENCE_BACKEND, "mlp", 0.9, 1.0)))
    assert "not_ok" not in [t.name for t in reporting.run_tables(clean)] and "not ok" not in reporting.run_markdown(
        clean, "t"
    )


def test_a_trial_that_failed_later_times_nothing():
    """A trial killed after two ok epochs kept their rows: the case's samples/s was the median over both trials
    beside "ok 1/2, 1 failed", and compare drew the failed trial as one of the case's."""
    rows = _rows(REFERENCE_BACKEND, "mlp", 0.9, 2.0, seeds=1)
    failing = [dict(r, trial_id="mlp-failing", seed=1, epoch_time_s=20.0, samples_per_s=50.0) for r in rows]
    failing[-1].update(status="failed", test_acc=math.nan)
    frame = to_frame(rows + failing)
    assert set(steady_rows(frame)["trial_id"]) == {rows[0]["trial_id"]}
    (row,) = summarize(frame).per_backend.to_dict("records")
    assert row["samples_per_s_median"] == 500.0 and row["epoch_time_s_median"] == 2.0
    # nor in the phase table: frozen for epochs 1-2, unfrozen for epoch 3
    for r in rows + failing:
        r.update(phase="frozen" if r["epoch"] < 3 else "unfrozen", warmup=r["epoch"] in (1, 3))
    phases = summarize(to_frame(rows + failing)).phases.set_index("phase")
    assert phases.loc["frozen", "epochs"] == 1 and phases.loc["frozen", "epoch_time_s_median"] == 2.0
    # every trial failed late: nothing to time, rather than its ok epochs labelled warm-up only
    assert timing_rows(to_frame(failing))[0].empty


def test_a_run_on_a_gpu_says_which_and_its_trials_peak_memory_and_a_cpu_run_has_no_gpu_table():
    """gpu_peak_mib grows over a trial's epochs and differs between seeds: the table shows the largest of the case."""
    rows = _rows(REFERENCE_BACKEND, "mlp", 0.9, 2.0) + _rows("tensorflow", "mlp", 0.9, 2.0)
    for i, row in enumerate(rows):
        if row["backend"] == REFERENCE_BACKEND:
            row.update(gpu="NVIDIA H200", gpu_peak_mib=1000.0 + i, step_macs=2e9)
    summary = summarize(to_frame(rows))
    # a GPU's GFLOP/s run into thousands: grouped as samples/s are (2 x 2e9 MACs x 500 samples/s)
    assert "| 2,000.00 |" in reporting.run_markdown(summary, "t").split("## Settings")[0]
    section = reporting.run_markdown(summary, "t").split("## GPU")[1].split("\n## ")[0]
    assert "| mlp | torch | NVIDIA H200 | 1,005 |" in section.replace("scratch-mlp-digits", "mlp")
    assert "tensorflow" not in section  # its trials ran on the CPU
    assert "gpu" in [t.name for t in reporting.run_tables(summary)]
    cpu_only = summarize(to_frame(_rows(REFERENCE_BACKEND, "mlp", 0.9, 2.0)))
    assert "## GPU" not in reporting.run_markdown(cpu_only, "t")
    assert "gpu" not in [t.name for t in reporting.run_tables(cpu_only)]


def test_a_diverged_trial_names_the_loss_that_stopped_being_finite():
    from harness.summary import why_not_ok

    assert why_not_ok({"status": "diverged", "epoch": 3, "train_loss": math.inf, "val_loss": math.nan}) == (
        "at epoch 3, training loss inf"
    )
    assert why_not_ok({"status": "diverged", "epoch": 2, "train_loss": 0.25, "val_loss": math.nan}) == (
        "at epoch 2, validation loss nan (training loss 0.25)"
    )


def test_the_live_progress_says_which_attempt_failed_and_whether_tune_retries_it():
    """Under --max-failures, a failed attempt that Tune then retried (and that ended ok) was printed as a trial that
    "failed", with no attempt and no word of the retry."""
    import io

    from rich.console import Console

    from harness.reporting import RichProgress

    progress = RichProgress(max_failures=1)
    progress.console = Console(file=io.StringIO(), width=200)
    for attempt in (0, 1):
        progress.row({"trial_id": "t-s0", "status": "failed", "error": "boom", "attempt": attempt})
    said = progress.console.file.getvalue().splitlines()
    assert said == [
        "trial t-s0 failed (attempt 1 of 2, retried): boom",
        "trial t-s0 failed (attempt 2 of 2, no retry left): boom",
    ]
    plain = RichProgress()
    plain.console = Console(file=io.StringIO(), width=200)
    plain.row({"trial_id": "t-s0", "status": "failed", "error": "boom", "attempt": 0})
    assert plain.console.file.getvalue().strip() == "trial t-s0 failed: boom"


def test_the_live_progress_prints_errors_and_trial_ids_as_written_not_as_rich_markup():
    """A failed trial's error went through rich's markup: "[batch, channels]" vanished from it and "[/home/u/w.pth]"
    raised MarkupError inside Tune's callback, which ended the run; a suite variant in a trial id went the same way."""
    import io

    from rich.console import Console

    from harness.reporting import RichProgress, _rich_table

    progress = RichProgress(console=Console(file=io.StringIO(), width=200))
    progress.start(2)
    errors = ("ValueError: expected input [batch, channels], got 3 dims", "OSError: cannot read [/home/u/w.pth]")
    for error in errors:
        progress.row({"trial_id": "t+[bold]v-s0", "status": "failed", "error": error, "attempt": 0})
    progress.row({"trial_id": "t+[/x]-s1", "status": "ok", "epoch": 1, "val_acc": 0.5, "epoch_time_s": 0.25})
    progress.stop()  # draws the bar a last time: its text column reads the id as written, or raises here
    said = progress.console.file.getvalue()
    for error in errors:
        assert f"trial t+[bold]v-s0 failed: {error}" in said
    assert "t+[/x]-s1 epoch 1" in said
    table = io.StringIO()
    Console(file=table, width=200).print(_rich_table("a [b] title", ["kind [k]"], [["shape [batch, channels]"]]))
    assert all(text in table.getvalue() for text in ("a [b] title", "kind [k]", "shape [batch, channels]"))


def test_a_long_trial_without_a_terminal_writes_an_epoch_line_after_a_quiet_minute():
    """Lines came only as trials ended: a CI job that stops a step printing nothing for a while stopped a run whose
    trials' epochs take minutes (a GPU trial's). After QUIET_S seconds without a line the next epoch says itself."""
    from harness.trial_lines import QUIET_S, TrialLines

    now = [0.0]
    lines: list[str] = []
    progress = TrialLines(lines.append, clock=lambda: now[0])
    progress.start(2)
    for epoch, seconds in ((1, 20.0), (2, 20.0 + QUIET_S), (3, 30.0 + QUIET_S)):
        now[0] = seconds
        progress.row({"trial_id": "t-s0", "status": "ok", "epoch": epoch, "val_acc": 0.5 + epoch / 10})
    now[0] = 40.0 + QUIET_S
    progress.row({"trial_id": "t-s0", "status": "ok", "epoch": 4, "val_acc": 0.95, "test_acc": 0.94})
    progress.trial_done("t-s0")
    assert lines == [
        "xfbench [0/2, 80 s] t-s0: epoch 2, validation accuracy 0.7000",  # the first row after a quiet minute
        "xfbench [1/2, 100 s] t-s0: ok, test accuracy 0.9400",  # epochs 3 and 4 came within it
    ]


def test_progress_lines_to_a_closed_pipe_go_quiet_instead_of_raising():
    """`xfbench run ... 2>&1 | head`: the progress line as a trial ended raised BrokenPipeError into Tune's
    callbacks, which failed the trial for it (review 157, finding 1). The first write error silences the lines."""
    from harness.trial_lines import TrialLines

    tries: list[str] = []

    def closed_pipe(line: str) -> None:
        tries.append(line)
        raise BrokenPipeError(32, "Broken pipe")

    progress = TrialLines(closed_pipe, clock=lambda: 0.0)
    progress.start(2)
    progress.row({"trial_id": "a", "status": "ok", "epoch": 1, "test_acc": 0.9})
    progress.trial_done("a")
    progress.trial_done("b")
    progress.warn("later")
    assert tries == ["xfbench [1/2, 0 s] a: ok, test accuracy 0.9000"]


def test_a_run_without_a_terminal_prints_a_line_per_ended_trial_and_per_retried_attempt(monkeypatch):
    """Where stderr is no terminal (a CI log, a file), rich's live bar drew once, at the end, cut to 80 columns
    ("tr… tune_quick-scratch-convnet3+tuned-digits-torch-s3 epoch 5: val_acc 0.967, 0…"), and nothing while the run
    trained: the CLI now prints the pytest plugin's lines there."""
    import io

    from harness.reporting import RichProgress, run_progress
    from harness.trial_lines import TrialLines

    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    progress = run_progress(max_failures=1)
    assert isinstance(progress, TrialLines)
    progress.start(2)
    trial = "quick-scratch-cnn_small-digits-torch-s0"
    progress.row({"trial_id": trial, "status": "failed", "error": "boom", "attempt": 0})
    progress.row({"trial_id": trial, "status": "ok", "epoch": 5, "test_acc": 0.9222, "attempt": 1})
    progress.trial_done(trial)
    progress.row({"trial_id": "t-s1", "status": "failed", "error": "boom again", "attempt": 1})
    progress.trial_done("t-s1")
    lines = err.getvalue().splitlines()
    assert lines[0] == f"xfbench {trial} failed (attempt 1 of 2, retried): boom"
    assert re.fullmatch(rf"xfbench \[1/2, \d+ s\] {trial}: ok, test accuracy 0.9222", lines[1]), lines
    assert re.fullmatch(r"xfbench \[2/2, \d+ s\] t-s1: failed \(attempt 2 of 2, no retry left\): boom again", lines[2])
    assert len(lines) == 3 and max(len(line) for line in lines) > 80  # whole lines, nothing cut
    monkeypatch.setattr(err, "isatty", lambda: True, raising=False)
    assert isinstance(run_progress(max_failures=0), RichProgress)  # a terminal keeps the live bar


def test_a_rate_under_ten_samples_a_second_is_shown_to_three_significant_digits_not_as_0():
    """Review 167, finding 8: a full-size VGG-16 on a CPU trains about 0.2 samples/s, and its cell read 0 beside a
    GFLOP/s figure that was not zero."""
    from harness.reporting import fmt_rate

    assert fmt_rate(0.2) == "0.2" and fmt_rate(0.3333) == "0.333" and fmt_rate(9.876) == "9.88"
    assert fmt_rate(12.4) == "12" and fmt_rate(27370.0) == "27,370" and fmt_rate(math.nan) == "n/a"
    row = pd.Series(
        {"samples_per_s_median": 0.4, "timing_basis": "", "train_gflops": 37.13},
    )
    from harness.reporting import _timed_cell

    assert _timed_cell(row, "samples_per_s_median", ",.0f") == "0.4"


def test_a_time_too_short_for_the_tables_decimals_is_shown_not_rounded_to_zero():
    """torch's warm-up of 0.0041 s read 0.00 beside TensorFlow's 0.10, as if it had none (a transfer run's report);
    an epoch under half a millisecond read 0.000 while its samples/s carried the value."""
    from harness.reporting import fmt_seconds

    assert fmt_seconds(0.0041, ".2f") == "0.0041" and fmt_seconds(0.00042, ".3f") == "0.00042"
    assert fmt_seconds(0.1, ".2f") == "0.10" and fmt_seconds(1.23456, ".3f") == "1.235"  # as before
    assert (
        fmt_seconds(0.0, ".2f") == "0.00"
        and fmt_seconds(math.nan, ".2f") == "n/a"
        and fmt_seconds(None, ".3f") == "n/a"
    )
