"""Derived tasks: class subsets with relabelling, binary tasks, sample limits (SUITES.md S4)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from harness.data.registry import Dataset
from harness.errors import InputError


@dataclass(frozen=True)
class TaskSpec:
    """A task carved out of a dataset.

    ``classes`` keeps those classes and relabels them 0..k-1 in ascending order (so Fashion-MNIST without 5 and 6
    maps 7, 8, 9 to 5, 6, 7), and is held in that order: 9,3 and 3,9 are one task. ``binary_positive`` turns a
    two-class task into a binary one with a single sigmoid output, that class being label 1. ``train_limit`` keeps
    the first N training samples after filtering.
    """

    classes: tuple[int, ...] | None = None
    binary_positive: int | None = None
    train_limit: int | None = None

    def __post_init__(self) -> None:
        if self.classes is not None:  # one task, one record and one cache key however its classes were listed
            object.__setattr__(self, "classes", tuple(sorted(self.classes)))
        if self.classes is not None and len(set(self.classes)) < 2:
            raise InputError(
                f"Expected at least two distinct classes in a task. Received: classes={self.classes}. To fix, "
                "list two or more, or leave the task's classes out for all of the dataset's."
            )
        if self.classes is not None and len(set(self.classes)) != len(self.classes):
            raise InputError(
                f"Expected each class once in a task (the head has one output per listed class). Received: "
                f"classes={self.classes}. To fix, list each class once."
            )
        if self.binary_positive is not None and (
            self.classes is None or len(self.classes) != 2 or self.binary_positive not in self.classes
        ):
            fix = _binary_positive_fix(self.classes, self.binary_positive)
            raise InputError(
                f"Expected --binary-positive to be one of exactly two --classes. Received: classes={self.classes}, "
                f"binary_positive={self.binary_positive}. To fix, {fix}."
            )
        if self.train_limit is not None and self.train_limit < 1:
            raise InputError(
                f"Expected train_limit >= 1. Received: {self.train_limit}. To fix, give 1 or more (--train-limit N), "
                "or none to train on every sample of the task."
            )

    @property
    def label(self) -> str:
        parts = []
        if self.classes is not None:
            parts.append("classes " + ",".join(map(str, self.classes)))
        if self.binary_positive is not None:
            parts.append(f"binary, positive {self.binary_positive}")
        if self.train_limit is not None:
            parts.append(f"first {self.train_limit} train")
        return "; ".join(parts) or "all"


def derive(dataset: Dataset, task: TaskSpec | None) -> Dataset:
    """The dataset restricted to ``task``; ``num_classes`` is 1 for a binary (sigmoid) task."""
    if task is None or task == TaskSpec():
        return dataset
    splits = {}
    for split in ("train", "val", "test"):
        x, y = dataset.split(split)
        if task.classes is not None:
            keep = np.isin(y, task.classes)
            x, y = x[keep], y[keep]
            if task.binary_positive is not None:
                y = (y == task.binary_positive).astype(np.int64)
            else:
                y = np.searchsorted(np.array(sorted(task.classes)), y).astype(np.int64)
        if split == "train" and task.train_limit is not None:
            x, y = x[: task.train_limit], y[: task.train_limit]
        splits[split] = (x, y)
    num_classes = (
        1 if task.binary_positive is not None else (len(task.classes) if task.classes else dataset.num_classes)
    )
    return replace(
        dataset,
        x_train=splits["train"][0],
        y_train=splits["train"][1],
        x_val=splits["val"][0],
        y_val=splits["val"][1],
        x_test=splits["test"][0],
        y_test=splits["test"][1],
        num_classes=num_classes,
        provenance={**dataset.provenance, "task": task.label},
    )


def _binary_positive_fix(classes: tuple[int, ...] | None, positive: int) -> str:
    """The fix for a --binary-positive that is not one of exactly two --classes, in the user's own numbers."""
    if classes is not None and len(classes) == 2:
        return (
            f"give one of --classes {classes[0]},{classes[1]} as the positive class (e.g. --binary-positive "
            f"{classes[1]}), or drop --binary-positive"
        )
    other = next((c for c in classes or () if c != positive), None)
    pair = (5, 6) if other is None else tuple(sorted((other, positive)))
    example = f"--classes {pair[0]},{pair[1]} --binary-positive {positive if other is not None else 6}"
    return f"give exactly two --classes, one of them the positive class (e.g. {example}), or drop --binary-positive"
