"""The error a user's input raises, kept apart from the harness's own failures.

The command line prints an :class:`InputError` on one line and exits 2; the pytest plugin reports it at collection
or as "bad input, nothing was run". Any other exception is a fault of the harness or a framework and keeps its
traceback, so a bug never reads as a user's mistake. Both classes stay a ``ValueError`` / ``FileNotFoundError``
so callers that catch those keep working.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Self


class InputError(ValueError):
    """Input the harness cannot use: its message says what was expected, what was received, and how to fix it."""


class MissingInputFile(InputError, FileNotFoundError):
    """A file the input names, or the run needs from the user (data, weights), that is not there."""


class FileProblemError(InputError):
    """A refusal of one file whose ``problem`` (what was found) is a field, so a caller whose advice differs (an
    export cannot start a run) composes its own refusal from it instead of cutting this one's text apart."""

    # Set by of(); plain attributes beside the message its args hold, so it pickles as any exception does
    path: Path | None = None
    problem = ""

    @classmethod
    def of(cls, path: Path, expected: str, problem: str, fix: str) -> Self:
        error = cls(f"Expected {expected}. Received: {problem}. {fix}")
        error.path, error.problem = path, problem
        return error


def unknown_name(kind: str, value: object, valid: Sequence[str]) -> InputError:
    """The refusal of a name that is not one of ``valid`` where no command-line flag gave it (a suite module's
    SuiteCase, Python callers): the field's name and the closest valid one, as the CLI's refusals say them."""
    article = "an" if kind[:1] in "aeiou" else "a"  # an epoch_loop
    return InputError(
        f"Expected {article} {kind} name, one of {sorted(valid)}. Received: {kind}={value!r}. To fix, "
        f"{closest_text(value, valid, '')}give one of those."
    )


def closest_text(value: object, valid: Sequence[str], flag: str) -> str:
    """The start of a fix for a mistyped name: "did you mean --model cnn_small? Otherwise " for the closest of
    ``valid`` (two where they tie closely: --init glorot is glorot_normal or glorot_uniform), "" for none close;
    ``flag`` "" for a positional argument."""
    close = difflib.get_close_matches(str(value), [str(v) for v in valid], n=2, cutoff=0.6)
    named = [f"{flag} {name}" if flag else repr(name) for name in close]  # a positional's value by itself
    return f"did you mean {' or '.join(named)}? Otherwise " if close else ""
