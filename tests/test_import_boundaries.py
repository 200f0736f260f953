"""DESIGN.md's boundaries: the harness imports no framework; Ray lives in one module."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FRAMEWORKS = ("torch", "tensorflow", "keras", "ray", "jax")


def test_import_harness_loads_no_framework():
    code = (
        "import sys, harness, harness.cli, harness.runner, harness.summary, harness.results, harness.suites\n"
        f"print(sorted(m for m in {FRAMEWORKS!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_only_the_scheduler_imports_ray_and_no_harness_module_imports_a_framework():
    offenders = {}
    for path in sorted((ROOT / "harness").rglob("*.py")):
        roots = _imported_roots(path)
        allowed = {"ray"} if path.name == "scheduler.py" else set()
        bad = (roots & set(FRAMEWORKS)) - allowed
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}
    assert "ray" in _imported_roots(ROOT / "harness" / "scheduler.py")


def test_each_backend_imports_only_its_own_framework():
    own = {"torch": {"torch"}, "tensorflow": {"tensorflow", "keras"}}
    for backend, allowed in own.items():
        for path in (ROOT / "backends" / backend).rglob("*.py"):
            foreign = (_imported_roots(path) & set(FRAMEWORKS)) - allowed
            assert not foreign, f"{path} imports {foreign}"


def test_backend_capabilities_are_read_without_importing_a_framework():
    code = (
        "import json, sys\n"
        "from harness.backend import BACKENDS, backend_capabilities\n"
        "caps = {b: sorted(backend_capabilities(b)) for b in BACKENDS}\n"
        f"print(json.dumps([caps, sorted(m for m in {FRAMEWORKS!r} if m in sys.modules)]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    caps, imported = json.loads(out.stdout)
    assert imported == []
    assert "torch_compile" in caps["torch"] and "jit_compile" not in caps["torch"]
    assert "jit_compile" in caps["tensorflow"] and "torch_compile" not in caps["tensorflow"]
    for name in ("per_group_lr", "freeze", "shared_dropout", "gpu"):
        assert name in caps["torch"] and name in caps["tensorflow"]


def test_each_capabilities_module_is_read_into_one_typed_view_and_optional_names_default_to_none(monkeypatch):
    """Four readers spelt a name of backends/<name>/capabilities.py and its default with getattr (PROGRAMS,
    FRAMEWORK_ENV, FRAMEWORK_ENV_CONFLICTS, RELEASES_GPU_MEMORY), each its own way: harness.backend.declarations is
    now the one typed view of the module, and a backend that leaves an optional name out declares none."""
    import types
    from dataclasses import replace

    from harness import backend as registry

    torch, tensorflow = registry.declarations("torch"), registry.declarations("tensorflow")
    compiler = torch.programs["torch_compile"][0]
    assert isinstance(compiler, registry.ProgramNeed) and (compiler.variable, compiler.programs) == ("CXX", ("g++",))
    assert torch.releases_gpu_memory and not tensorflow.releases_gpu_memory
    assert tensorflow.companion_distributions == ("keras",) and "TF_XLA_FLAGS" in tensorflow.framework_env
    conflicts = tensorflow.framework_env_conflicts
    assert conflicts and all(isinstance(c, registry.EnvConflict) for c in conflicts)
    assert conflicts[0].contradicts(False, {"TF_XLA_FLAGS": "--tf_xla_auto_jit=2"})
    minimal = types.ModuleType("minimal_capabilities")
    minimal.DISTRIBUTION, minimal.CAPABILITIES, minimal.OWN_DEFAULTS = "minimal", frozenset({"freeze"}), {}
    monkeypatch.setitem(sys.modules, "minimal_capabilities", minimal)
    entry = replace(registry.backend_entry("torch"), name="minimal", capabilities_module="minimal_capabilities")
    monkeypatch.setattr(registry, "backend_entry", lambda name: entry)
    try:
        declared = registry.declarations("minimal")
    finally:
        registry.declarations.cache_clear()  # nothing of the stand-in stays for the tests after this one
    assert declared == registry.BackendDeclarations("minimal", frozenset({"freeze"}), {})
    assert (declared.programs, declared.framework_env, declared.framework_env_conflicts) == ({}, {}, ())


def test_backend_packages_and_capability_declarations_import_no_framework():
    for backend in ("torch", "tensorflow"):
        for module in ("__init__.py", "capabilities.py"):
            path = ROOT / "backends" / backend / module
            assert not _imported_roots(path) & set(FRAMEWORKS), f"{path} imports a framework"
            assert not _imported_roots(path) & {"backends"}, f"{path} imports the adapter (and so the framework)"


def test_the_tensorflow_backend_ignores_a_users_keras_json(tmp_path):
    """Keras reads $KERAS_HOME/keras.json when imported; the TensorFlow backend's layers are built for Keras'
    defaults, so a file naming JAX, float64, another epsilon and channels first changes nothing it builds, and the
    caller's KERAS_BACKEND is left as it was."""
    home = tmp_path / "keras-home"
    home.mkdir()
    hostile = {"backend": "jax", "floatx": "float64", "epsilon": 0.1, "image_data_format": "channels_first"}
    (home / "keras.json").write_text(json.dumps(hostile))
    code = (
        "import json, os\n"
        "from backends.tensorflow.framework import keras\n"
        "from backends.tensorflow.modes import build_model\n"
        "from harness.config import RuntimeOptions\n"
        "from harness.models import ModelOptions, build_spec\n"
        "model = build_model(build_spec('cnn_small', (8, 8, 1), 10, ModelOptions()), 0, RuntimeOptions())\n"
        "print(json.dumps([keras.backend.backend(), keras.config.floatx(), keras.config.epsilon(),\n"
        "    keras.config.image_data_format(), sorted({w.dtype for w in model.weights}), list(model.output_shape),\n"
        "    os.environ.get('KERAS_BACKEND')]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"} | {"KERAS_HOME": str(home)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen == ["tensorflow", "float32", 1e-7, "channels_last", ["float32"], [None, 10], None]
    assert json.loads((home / "keras.json").read_text()) == hostile  # read, never rewritten


def test_a_local_workers_data_load_imports_no_scikit_learn():
    """A local run's workers read digits themselves: from scikit-learn's file, without its 2.4 s import."""
    code = "import sys\nfrom harness.data import load_dataset\nload_dataset('digits')\nprint('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False", out.stdout + out.stderr


PLUGIN_SESSION_CONFTEST = """
import json
import sys


def pytest_unconfigure(config):
    heavy = ("numpy", "pandas", "scipy", "pyarrow", "harness.cli_options", "harness.config", "harness.suites")
    with open("imported.json", "w") as out:
        json.dump(sorted(m for m in (*heavy, *FRAMEWORKS) if m in sys.modules), out)
"""


def test_the_pytest_plugin_and_a_session_that_runs_no_suite_import_nothing_heavy(tmp_path):
    """pytest loads the plugin in every run of the environment (entry point pytest11), a project's that never uses
    xfbench too: its import took 0.5 s (pandas at the top, the CLI's options with the baselines), and a one-test
    session 1.06 s against 0.37 s without it (docs/measurements.md, 2026-12-07). The plugin's import, and what its
    option, configure and session hooks import in a session without a suite, bring no numpy, pandas or framework."""
    code = (
        "import sys, harness.pytest_plugin\n"
        f"print(sorted(m for m in ('numpy', 'pandas', 'harness.cli_options', *{FRAMEWORKS!r}) if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
    (tmp_path / "conftest.py").write_text(PLUGIN_SESSION_CONFTEST.replace("FRAMEWORKS", repr(FRAMEWORKS)))
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    pass\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's harness, whichever one is installed
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_plain.py"]
    session = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env)
    assert session.returncode == 0, session.stdout + session.stderr
    assert (
        "xfbench"
        in subprocess.run([*command[:3], "--help"], capture_output=True, text=True, cwd=tmp_path, env=env).stdout
    )  # the plugin was loaded, its options registered
    assert json.loads((tmp_path / "imported.json").read_text()) == []
