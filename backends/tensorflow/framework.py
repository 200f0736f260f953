"""How the TensorFlow backend imports TensorFlow and Keras: every module of the backend takes ``tf`` and ``keras``
from here, so the first import in a worker is this one.

Keras imports scikit-learn (for its estimator wrappers) and matplotlib.pyplot (for its plotting utilities) eagerly
whenever they are installed, and xfbench installs both. A worker never draws and uses scikit-learn only in the
deep-features strategy, yet paid for both at start (about 2-3 s of a TensorFlow worker's 8-11 s of imports here;
docs/measurements.md, "Worker start-up"). While TensorFlow and Keras are imported, the two are made unimportable,
so Keras takes its own "not installed" path; afterwards they import normally for whoever needs them. A package
already imported before this module is left alone.
"""

from __future__ import annotations

import sys

# Keras' optional imports that a worker does not need at start (module names as Keras imports them).
_DEFERRED = ("matplotlib", "sklearn")


def _hide(names: tuple[str, ...]) -> list[str]:
    hidden = [name for name in names if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # None in sys.modules: `import name` raises ImportError
    return hidden


def _unhide(hidden: list[str]) -> None:
    for name in hidden:
        if name in sys.modules and sys.modules[name] is None:
            del sys.modules[name]


_hidden = _hide(_DEFERRED)
try:
    import keras  # noqa: E402
    import tensorflow as tf  # noqa: E402
finally:
    _unhide(_hidden)

__all__ = ["keras", "tf"]
