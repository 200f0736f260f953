"""Learning-rate (and momentum) schedules, evaluated per optimizer step by the harness.

The harness computes the value for every step from a closed form and hands the epoch's values to the
backend, which only applies them: both frameworks therefore use the same learning rate at the same step
by construction. ``t`` is the 0-based index of the step about to be taken.

- ``constant``: η0
- ``power``: η0 / (1 + t/s)^c
- ``exponential``: η0 · 0.1^(t/s)
- ``piecewise``: values[i] for boundaries[i-1] <= t < boundaries[i]
- ``plateau``: η0 · factor^k, k = number of reductions so far (reduce on plateau of the validation loss,
  checked once per epoch; see :class:`PlateauTracker`)
- ``onecycle``: linear from η_max/10 up to η_max at the step nearest 45 % of the steps, back down to η_max/10 by
  90 %, then down to η_max/10/1000 at the last step; momentum mirrors it 0.95 → 0.85 → 0.95 (held in the tail)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np

from harness.errors import InputError, unknown_name

SCHEDULES = ("constant", "power", "exponential", "piecewise", "plateau", "onecycle")
# The settings each schedule reads; a setting another schedule reads, given to this one, would be recorded unused.
_SETTINGS_OF: dict[str, frozenset[str]] = {
    "constant": frozenset(),
    "power": frozenset({"steps", "power"}),
    "exponential": frozenset({"steps"}),
    "piecewise": frozenset({"boundaries", "values"}),
    "plateau": frozenset({"factor", "patience", "threshold"}),
    "onecycle": frozenset({"max_momentum", "min_momentum"}),
}
_SETTINGS = frozenset().union(*_SETTINGS_OF.values())
# How a user gives each setting (harness.cli_options; the onecycle momenta have no flag), so that the refusal of an
# unused one names what was typed; the pytest plugin words flags back as config paths.
_FLAG_OF = {
    "steps": "--schedule-steps",
    "power": "--schedule-power",
    "boundaries": "--piecewise",
    "values": "--piecewise",
    "factor": "--plateau-factor",
    "patience": "--plateau-patience",
    "threshold": "--plateau-threshold",
    "max_momentum": "schedule.max_momentum",
    "min_momentum": "schedule.min_momentum",
}


def settings_read_by(name: str) -> frozenset[str]:
    """The ScheduleConfig fields schedule ``name`` reads (power: steps and power); none for an unknown name."""
    return _SETTINGS_OF.get(name, frozenset())


def plateau_min_epochs(patience: int) -> int:
    """The fewest epochs of a phase in which reduce-on-plateau can lower the rate of a step: the first epoch always
    improves on no loss at all, a reduction follows ``patience`` + 1 epochs without improvement after it, and takes
    effect from the next epoch on."""
    return patience + 3


@dataclass(frozen=True)
class ScheduleConfig:
    name: str = "constant"
    steps: float = 100.0  # s, for power and exponential
    power: float = 1.0  # c, for power
    boundaries: tuple[int, ...] = ()  # piecewise: step indices where the value changes
    values: tuple[float, ...] = ()  # piecewise: len(boundaries) + 1 learning rates
    factor: float = 0.5  # plateau
    patience: int = 2  # plateau: epochs without improvement before a reduction
    threshold: float = 1e-4  # plateau: relative improvement that counts (PyTorch's default, mode 'rel')
    max_momentum: float = 0.95  # onecycle
    min_momentum: float = 0.85  # onecycle

    def __post_init__(self) -> None:
        if self.name not in SCHEDULES:
            raise unknown_name("schedule", self.name, list(SCHEDULES))
        if self.steps <= 0:
            raise InputError(
                f"Expected schedule steps > 0 (--schedule-steps). Received: {self.steps}. To fix, give a positive "
                "number of steps."
            )
        if self.name == "piecewise":
            self._check_piecewise()
        self._check_curve_settings()
        if self.name == "plateau" and not 0 < self.factor < 1:
            raise InputError(
                f"Expected 0 < factor < 1 for reduce-on-plateau (--plateau-factor, the rate's multiplier). Received: "
                f"{self.factor}. To fix, give a factor in (0, 1), such as 0.5."
            )
        if self.name == "plateau" and not (self.patience >= 0 and float(self.patience).is_integer()):
            raise InputError(
                "Expected a whole number >= 0 of epochs for reduce-on-plateau's patience (--plateau-patience, the "
                f"epochs without improvement before a reduction). Received: {self.patience}. To fix, give 0 to reduce "
                "after every epoch that does not improve, or more to wait."
            )
        if self.name == "plateau" and not 0 <= self.threshold < 1:
            raise InputError(
                "Expected 0 <= threshold < 1 for reduce-on-plateau (--plateau-threshold, the relative improvement of "
                f"the validation loss that counts as one). Received: {self.threshold}. To fix, give a fraction such "
                "as 1e-4 (PyTorch's default) or 0.1."
            )
        unused = [
            f.name
            for f in fields(self)  # in the dataclass's order, so the message reads the same every time
            if f.name in _SETTINGS and f.name not in _SETTINGS_OF[self.name] and getattr(self, f.name) != f.default
        ]
        if unused:
            self._refuse_unused(unused)

    def _refuse_unused(self, unused: list[str]) -> None:
        """Settings another schedule reads, given to this one: named as typed, with the schedules that read them."""
        given = {_FLAG_OF[name]: self._given(name) for name in unused}  # --piecewise once for its two fields
        readers = {flag: [s for s in SCHEDULES if any(_FLAG_OF[n] == flag for n in _SETTINGS_OF[s])] for flag in given}
        its = "it" if len(given) == 1 else "them"
        by_reader: dict[str, list[str]] = {}  # the flags one schedule (or one choice of them) reads, together
        for flag, names in readers.items():
            by_reader.setdefault(" or ".join(names), []).append(flag)
        choices = "; ".join(f"{', '.join(flags)}: --schedule {names}" for names, flags in by_reader.items())
        raise InputError(
            f"Expected only the settings the {self.name} schedule reads "
            f"({', '.join(sorted({_FLAG_OF[n] for n in _SETTINGS_OF[self.name]})) or 'none'}). "
            f"Received: {', '.join(f'{flag} {value}' for flag, value in given.items())}, which it would ignore. "
            f"To fix, drop {its}, or choose the schedule that reads "
            f"{its}: {choices}."
        )

    def _given(self, name: str) -> str:
        """Setting ``name``'s value as its flag takes it (--piecewise B1,B2:V1,V2,V3)."""
        if name in ("boundaries", "values"):
            return f"{','.join(map(str, self.boundaries))}:{','.join(map(str, self.values))}"
        return str(getattr(self, name))  # all its digits: 6 significant ones read 0.1234567 as 0.123457

    def _check_piecewise(self) -> None:
        """--piecewise B1,B2:V1,V2,V3: given, one rate more than boundaries, the rates positive, the steps in order."""
        if not self.values:  # --schedule piecewise alone: "0 values, 0 boundaries"
            raise InputError(
                "Expected --piecewise BOUNDARIES:RATES with --schedule piecewise (its steps and the rate from each). "
                "Received: no --piecewise. To fix, give one, e.g. --piecewise 100,200:0.1,0.01,0.001."
            )
        if len(self.values) != len(self.boundaries) + 1:
            raise InputError(
                "Expected len(values) == len(boundaries) + 1 for a piecewise schedule (--piecewise B1,B2:V1,V2,V3: "
                "a rate before the first boundary step, then one from each). Received: "
                f"{len(self.values)} values, {len(self.boundaries)} boundaries. To fix, give one value more than "
                "boundaries, e.g. --piecewise 100,200:0.1,0.01,0.001."
            )
        if not all(0 < v < math.inf for v in self.values):  # NaN fails too
            raise InputError(
                f"Expected piecewise learning rates > 0 and finite. Received: values={self.values}. A rate <= 0 "
                "trains by gradient ascent, or not at all. To fix, give positive rates."
            )
        if any(b <= a for a, b in zip((-1, *self.boundaries[:-1]), self.boundaries, strict=True)):
            raise InputError(
                "Expected piecewise boundaries as increasing step indices >= 0 (each starts the next value). "
                f"Received: boundaries={self.boundaries}. To fix, list them in order, each once."
            )

    def _check_curve_settings(self) -> None:
        """1cycle's momenta and the power schedule's power, each in the range its formula takes."""
        if self.name == "onecycle" and not 0 <= self.min_momentum <= self.max_momentum < 1:
            # the momenta replace the optimizer's momentum or Adam's beta1, which OptimizerConfig holds to [0, 1); an
            # RMSprop momentum of 0 on the first step and above later failed in torch (no momentum buffer) alone
            raise InputError(
                "Expected 0 <= min_momentum <= max_momentum < 1 for 1cycle (the momentum, or Adam's beta1, cycles "
                f"between them). Received: min_momentum={self.min_momentum}, max_momentum={self.max_momentum}. To fix, "
                "give momenta such as 0.85 and 0.95 (torch's OneCycleLR defaults)."
            )
        if self.name == "power" and not 0 < self.power < math.inf:
            raise InputError(
                f"Expected a power > 0 for the power schedule (--schedule-power). Received: {self.power}; a power "
                "<= 0 would keep the rate, or raise it as training goes on. To fix, give a power such as 1 or 2."
            )

    @property
    def cycles_momentum(self) -> bool:
        return self.name == "onecycle"


def lr_at(
    schedule: ScheduleConfig, base_lr: float, step: np.ndarray, total_steps: int, plateau_scale: float = 1.0
) -> np.ndarray:
    """Learning rate for each 0-based step index in ``step``."""
    t = np.asarray(step, dtype=np.float64)
    s = schedule
    if s.name == "constant":
        out = np.full_like(t, base_lr)
    elif s.name == "power":
        out = base_lr / (1.0 + t / s.steps) ** s.power
    elif s.name == "exponential":
        out = base_lr * 0.1 ** (t / s.steps)
    elif s.name == "piecewise":
        out = np.asarray(s.values, dtype=np.float64)[np.searchsorted(np.asarray(s.boundaries), t, side="right")]
    elif s.name == "plateau":
        out = np.full_like(t, base_lr * plateau_scale)
    else:
        out = _onecycle(t, base_lr, total_steps)
    return out


def momentum_at(schedule: ScheduleConfig, step: np.ndarray, total_steps: int) -> np.ndarray | None:
    """Momentum per step for 1cycle (None for schedules that leave momentum alone)."""
    if not schedule.cycles_momentum:
        return None
    t = np.asarray(step, dtype=np.float64)
    hi, lo = schedule.max_momentum, schedule.min_momentum
    up_end, down_end = _cycle_turns(total_steps)
    return np.where(
        t < up_end,
        hi - (hi - lo) * t / up_end,
        np.where(_in_tail(t, total_steps), hi, lo + (hi - lo) * (t - up_end) / (down_end - up_end)),
    )


def _cycle_turns(total: int) -> tuple[float, float]:
    """1cycle's (peak step, end of the way down): the peak on the step nearest 45 % of the phase (the second at the
    earliest), so the rate reaches max_lr and momentum its minimum there; down by 90 %. At 0.45 * total itself the
    peak fell between two steps whenever that was no whole number: T=10 peaked at 0.9 max_lr (steps 4 and 5)."""
    return float(max(1, math.floor(0.45 * total + 0.5))), 0.9 * total


def _in_tail(t: np.ndarray, total: int) -> np.ndarray:
    """1cycle's last ~10 % of steps, and the final step always: a phase of 10 steps or fewer has no step after 90 %
    of its length but its last, which must still anneal (T=10 ended at max_lr/10, T=5 midway down)."""
    return (t >= 0.9 * total) | (t >= max(total - 1, 1))


def _onecycle(t: np.ndarray, max_lr: float, total: int) -> np.ndarray:
    start, end = max_lr / 10.0, max_lr / 10.0 / 1000.0
    up_end, down_end = _cycle_turns(total)
    last = max(total - 1, 1)
    tail = start + (end - start) * (t - down_end) / max(last - down_end, 1e-12)
    if last <= down_end:  # no step after 90 %: the last one anneals alone
        tail = np.where(t >= last, end, tail)
    return np.where(
        t < up_end,
        start + (max_lr - start) * t / up_end,
        np.where(_in_tail(t, total), tail, max_lr - (max_lr - start) * (t - up_end) / (down_end - up_end)),
    )


@dataclass
class PlateauTracker:
    """Reduce-on-plateau state, stepped once per epoch with the validation loss (PyTorch's ReduceLROnPlateau,
    mode 'min', threshold_mode 'rel', cooldown 0)."""

    factor: float
    patience: int
    threshold: float
    best: float = float("inf")
    bad_epochs: int = 0
    scale: float = 1.0
    history: list[float] = field(default_factory=list)

    def step(self, val_loss: float) -> float:
        if val_loss < self.best * (1.0 - self.threshold):
            self.best, self.bad_epochs = val_loss, 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs > self.patience:
                self.scale *= self.factor
                self.bad_epochs = 0
        self.history.append(self.scale)
        return self.scale
