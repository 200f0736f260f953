"""How the TensorFlow backend imports TensorFlow and Keras: every module of the backend takes ``tf`` and ``keras``
from here, so the first import in a worker is this one.

Keras imports scikit-learn (for its estimator wrappers) and matplotlib.pyplot (for its plotting utilities) eagerly
whenever they are installed, and xfbench installs both. A worker never draws and uses scikit-learn only in the
deep-features strategy, yet paid for both at start (about 2-3 s of a TensorFlow worker's 8-11 s of imports here;
docs/measurements.md, "Worker start-up"). While TensorFlow and Keras are imported, the two are made unimportable,
so Keras takes its own "not installed" path; afterwards they import normally for whoever needs them. A package
already imported before this module is left alone.

Keras also reads ``$KERAS_HOME/keras.json`` (by default ``~/.keras/keras.json``) when imported: its backend, float
type, fuzz epsilon and image data format. xfbench's layers are built for Keras' defaults (TensorFlow, float32,
1e-7, channels last; the precision policy is set per model by ``modes.build_model``), so a user's file naming JAX,
float64 or channels first would change what the TensorFlow backend computes. The backend is named for the import
(``KERAS_BACKEND``, restored afterwards) and the other three are set to the defaults right after it.
"""

from __future__ import annotations

import os
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
_user_backend = os.environ.get("KERAS_BACKEND")
os.environ["KERAS_BACKEND"] = "tensorflow"  # read once, as Keras is imported: over keras.json's "backend"
try:
    import keras  # noqa: E402
    import tensorflow as tf  # noqa: E402
finally:
    _unhide(_hidden)
    if _user_backend is None:
        del os.environ["KERAS_BACKEND"]
    else:
        os.environ["KERAS_BACKEND"] = _user_backend

keras.config.set_floatx("float32")
keras.config.set_epsilon(1e-7)
keras.config.set_image_data_format("channels_last")

__all__ = ["keras", "tf"]
