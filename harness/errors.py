"""The error a user's input raises, kept apart from the harness's own failures.

The command line prints an :class:`InputError` on one line and exits 2; the pytest plugin reports it at collection
or as "bad input, nothing was run". Any other exception is a fault of the harness or a framework and keeps its
traceback, so a bug never reads as a user's mistake. Both classes stay a ``ValueError`` / ``FileNotFoundError``
so callers that catch those keep working.
"""

from __future__ import annotations


class InputError(ValueError):
    """Input the harness cannot use: its message says what was expected, what was received, and how to fix it."""


class MissingInputFile(InputError, FileNotFoundError):
    """A file the input names, or the run needs from the user (data, weights), that is not there."""
