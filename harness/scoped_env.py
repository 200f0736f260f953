"""Environment variables set for a block of code, then each put back as it was."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping


@contextlib.contextmanager
def scoped_environment(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` set in this process's environment for the block, then each variable as it was (unset again where
    it was unset)."""
    with restored_environment(values):
        os.environ.update(values)
        yield


@contextlib.contextmanager
def restored_environment(names: Iterable[str]) -> Iterator[None]:
    """Each variable of ``names`` put back after the block as it was before it (unset again where it was unset),
    whatever the block set it to: for code that sets variables of its own (Ray's local start sets RAY_AUTH_MODE)."""
    saved = {name: os.environ.get(name) for name in names}
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
