"""The training-loop policy, written once for every backend: epochs, batch order, schedules, timing, metrics."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from harness.augment import AugmentConfig, EpochAugment, epoch_draws
from harness.backend import Backend, StepStats
from harness.data.batching import epoch_batches
from harness.data.batching import steps_per_epoch as epoch_steps
from harness.data.registry import Dataset
from harness.dropout_rng import KeyedDropout
from harness.host_load import cpu_clock, other_cpus
from harness.schedules import PlateauTracker, ScheduleConfig, lr_at, momentum_at


@dataclass(frozen=True)
class EpochRecord:
    phase: str
    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    epoch_time_s: float  # training steps only; evaluation is timed separately
    samples_per_s: float
    eval_time_s: float
    warmup: bool
    lr: float  # learning rate of the epoch's last step
    train_reg_loss: float = 0.0
    status: str = "ok"
    test_acc: float = math.nan
    other_cpus: float = math.nan  # CPUs other processes kept busy during the training steps (harness.host_load)
    # final metrics (e.g. MC dropout) on the last row; strategies add their facts (counts, a details JSON string)
    extra: Mapping[str, float | str] = field(default_factory=dict)


EpochSink = Callable[[EpochRecord], None]
FinalMetrics = Callable[[Backend], dict[str, float]]


@dataclass(frozen=True)
class PhasePlan:
    """How one training phase runs: its name, length, batches and learning-rate schedule."""

    phase: str
    epochs: int
    batch_size: int
    eval_batch_size: int
    seed: int
    base_lr: float
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    epoch_offset: int = 0  # epochs this model trained in earlier phases, on the same data: steps count on from them
    inject_step_delay_s: float = 0.0  # test-only slowdown (RuntimeOptions.inject_step_delay_s)
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # training batches only
    pad_fill: tuple[float, ...] = ()  # what a random crop pads with per channel: the data's black pixel; (): zeros
    # False for a phase another follows (transfer's frozen one): its last epoch is not the trial's, so the final
    # metrics wait for the next phase, unless this one diverges and the trial ends here
    last_phase: bool = True

    def ends_trial(self, local_epoch: int) -> bool:
        """Whether ``local_epoch`` of this phase is the trial's last epoch, diverged or not."""
        return self.last_phase and local_epoch == self.epochs


def prepare_data(backend: Backend, dataset: Dataset) -> None:
    for split in ("train", "val", "test"):
        backend.set_data(split, *dataset.split(split))


def accuracy_on_test_split(backend: Backend, eval_batch_size: int) -> dict[str, float]:
    return {"test_acc": backend.evaluate("test", eval_batch_size).accuracy}


def _timed_epoch(
    backend: Backend,
    batches: list[np.ndarray],
    lrs: np.ndarray,
    momenta: np.ndarray | None,
    augment: EpochAugment | None,
    first_step: int,
    delay_s: float,
) -> tuple[StepStats, float, float]:
    """One train_epoch, timed: its stats, its seconds and the CPUs other processes kept busy meanwhile. The shared
    dropout masks' keys are hashed before the timer starts, like the batch order: hashed step by step inside the
    adapters they took 9 ms of an 860-step epoch (harness.dropout_rng.epoch_step_keys)."""
    keyed = backend.training_dropout_keys() if isinstance(backend, KeyedDropout) else None
    keys = keyed.epoch(first_step, len(batches)) if keyed is not None else None
    clock = cpu_clock()  # read before the timer starts and after it stops: no step time pays for it
    start = time.perf_counter()
    if keys is None:  # a backend that keys no masks (framework dropout, none in the model) is asked as before
        train = backend.train_epoch("train", batches, lrs, momenta, augment=augment, first_step=first_step)
    else:
        train = backend.train_epoch(
            "train", batches, lrs, momenta, augment=augment, first_step=first_step, dropout_keys=keys
        )
    if delay_s:
        time.sleep(delay_s * len(batches))
    elapsed = time.perf_counter() - start
    return train, elapsed, other_cpus(clock, cpu_clock())


def train_phase(
    backend: Backend, num_train: int, plan: PhasePlan, sink: EpochSink, final_metrics: FinalMetrics | None = None
) -> str:
    """Train ``plan.epochs`` epochs; send one record per epoch to ``sink``; return the final status.

    The first epoch of a phase carries tracing/compilation and cache warm-up, so it is marked ``warmup`` and kept
    out of steady-state figures. A non-finite training or validation loss stops the phase with status ``diverged``.
    ``final_metrics`` runs after the trial's last epoch (``plan.last_phase``) or a diverged one, on its record.
    """
    steps_per_epoch = epoch_steps(num_train, plan.batch_size)
    total_steps = steps_per_epoch * plan.epochs
    s = plan.schedule
    plateau = PlateauTracker(s.factor, s.patience, s.threshold) if s.name == "plateau" else None
    for local_epoch in range(1, plan.epochs + 1):
        epoch = plan.epoch_offset + local_epoch
        batches = epoch_batches(num_train, plan.batch_size, plan.seed, epoch)
        steps = np.arange((local_epoch - 1) * steps_per_epoch, (local_epoch - 1) * steps_per_epoch + len(batches))
        lrs = lr_at(s, plan.base_lr, steps, total_steps, plateau.scale if plateau else 1.0).astype(np.float32)
        momenta32 = None if (m := momentum_at(s, steps, total_steps)) is None else m.astype(np.float32)
        # Drawn before the timer starts, like the batch order: the host's share of augmentation is not step time.
        augment = epoch_draws(plan.augment, plan.seed, epoch, num_train, plan.pad_fill)
        first_step = (plan.epoch_offset + local_epoch - 1) * steps_per_epoch  # since the build: earlier phases too
        train, elapsed, others = _timed_epoch(
            backend, batches, lrs, momenta32, augment, first_step, plan.inject_step_delay_s
        )
        eval_start = time.perf_counter()
        val = backend.evaluate("val", plan.eval_batch_size)
        # A finite training loss with a NaN validation loss diverged too: BatchNorm's moving statistics broke
        diverged = not (math.isfinite(train.loss) and math.isfinite(val.loss))
        final = final_metrics(backend) if final_metrics and (diverged or plan.ends_trial(local_epoch)) else {}
        eval_elapsed = time.perf_counter() - eval_start
        if plateau:
            plateau.step(val.loss)
        sink(
            EpochRecord(
                phase=plan.phase,
                epoch=epoch,
                train_loss=train.loss,
                train_acc=train.accuracy,
                val_loss=val.loss,
                val_acc=val.accuracy,
                epoch_time_s=elapsed,
                samples_per_s=train.count / elapsed if elapsed > 0 else math.nan,
                eval_time_s=eval_elapsed,
                warmup=local_epoch == 1,
                lr=float(str(lrs[-1])),  # the float32 rate as its shortest decimal (1e-06, not 9.99999997e-07)
                train_reg_loss=train.reg_loss,
                status="diverged" if diverged else "ok",
                test_acc=final.pop("test_acc", math.nan),
                other_cpus=others,
                extra=final,
            )
        )
        if diverged:
            return "diverged"
    return "ok"
