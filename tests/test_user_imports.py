"""A python: model's own code: its module and the user's modules it imports, found without importing any of them,
in the cache keys and in what a run ships (harness.user_imports)."""

from __future__ import annotations

import shutil
import sys

from harness.model_import import model_content_key, python_model_sources, python_source_digest
from harness.user_imports import user_source_digest, user_units

# Every user file raises when imported: finding the code must only read it (the driver imports no framework, and a
# user's module may do anything when imported).
RAISES = 'raise RuntimeError("imported")\n'


def _write_project(root):
    (root / "my_nets.py").write_text(
        "import json\nimport numpy as np\nimport blocks\nfrom layers.conv import Conv\nfrom . import nothing\n" + RAISES
    )
    (root / "blocks.py").write_text("import os\nimport activations\n" + RAISES)  # a helper's helper
    (root / "activations.py").write_text("WIDTH = 32\n" + RAISES)
    (root / "layers").mkdir()
    (root / "layers" / "__init__.py").write_text(RAISES)
    (root / "layers" / "conv.py").write_text("from .norm import Norm\n" + RAISES)
    (root / "layers" / "norm.py").write_text(RAISES)
    (root / "layers" / "make_figures.py").write_text(RAISES)  # in the package, imported by none: no key's
    (root / "unrelated.py").write_text(RAISES)  # beside them, imported by none of them
    (root / "broken.py").write_text("def (:\n")


def test_a_modules_user_code_is_itself_and_the_user_modules_it_imports_in_turn_found_without_importing(
    tmp_path, monkeypatch
):
    """The cache keys hashed a python: model's module alone: a helper it imports, edited, left the backbone, the
    converted weights and the conversion keyed as before (the stale backbone was reused)."""
    _write_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    root = tmp_path.resolve()
    before = set(sys.modules)
    units = user_units("my_nets")
    assert units == (root / "my_nets.py", root / "blocks.py", root / "layers", root / "activations.py")
    assert not {"my_nets", "blocks", "layers", "activations"} & (set(sys.modules) - before)
    assert user_units("json") == () and user_units("no_such_module") == ()
    assert user_units("broken") == (root / "broken.py",)  # unparsable: itself; importing it names the fault
    assert python_model_sources(["python:my_nets:make", "python:blocks:make", "resnet18"]) == units

    digest, content = python_source_digest("my_nets:make"), model_content_key("python:my_nets:make")
    for idle in (root / "unrelated.py", root / "layers" / "make_figures.py"):
        idle.write_text("CHANGED = 1\n")  # shipped with its package or not at all, imported by nothing
    assert python_source_digest("my_nets:make") == digest
    for edited in (root / "activations.py", root / "layers" / "norm.py"):
        text = edited.read_text()
        edited.write_text("WIDTH = 512\n" + text)
        assert python_source_digest("my_nets:make") != digest
        assert model_content_key("python:my_nets:make") != content
        edited.write_text(text)
        assert python_source_digest("my_nets:make") == digest


def test_a_linked_module_or_package_ships_under_the_name_it_is_imported_by(tmp_path, monkeypatch):
    """Ray ships each unit under its path's last name: a unit named by its link's target reached the nodes as
    nets_impl.py or mypkg-1.2/, where no worker could import my_nets or mypkg."""
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "nets_impl.py").write_text("import mypkg\n" + RAISES)
    (tmp_path / "src" / "mypkg-1.2").mkdir(parents=True)
    (tmp_path / "src" / "mypkg-1.2" / "__init__.py").write_text(RAISES)
    (tmp_path / "my_nets.py").symlink_to(tmp_path / "real" / "nets_impl.py")
    (tmp_path / "mypkg").symlink_to(tmp_path / "src" / "mypkg-1.2", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    root = tmp_path.resolve()
    assert python_model_sources(["python:my_nets:make"]) == (root / "my_nets.py", root / "mypkg")
    digest = user_source_digest("my_nets")
    (tmp_path / "src" / "mypkg-1.2" / "__init__.py").write_text("WIDTH = 8\n" + RAISES)  # read through the link
    assert user_source_digest("my_nets") != digest


def test_a_copy_of_the_units_elsewhere_hashes_as_the_driver_does(tmp_path, monkeypatch):
    """A cluster node gets the units in a folder of Ray's (py_modules), without what a .gitignore in them names,
    finds them there as its workers import them, and hashes its copy into the same keys."""
    driver, node = tmp_path / "driver", tmp_path / "node"
    driver.mkdir()
    _write_project(driver)
    (driver / "layers" / ".gitignore").write_text("make_figures.py\n")
    monkeypatch.chdir(driver)
    digest, units = user_source_digest("my_nets"), user_units("my_nets")
    node.mkdir()
    for unit in units:
        (shutil.copytree if unit.is_dir() else shutil.copy)(unit, node / unit.name)
    (node / "layers" / "make_figures.py").unlink()  # Ray leaves out what the package's .gitignore names
    monkeypatch.chdir(node)
    assert user_units("my_nets") == tuple(node.resolve() / unit.name for unit in units)
    assert user_source_digest("my_nets") == digest


def test_a_namespace_subpackage_and_a_linked_file_are_followed(tmp_path, monkeypatch):
    """A folder without __init__.py inside a package imports like a package (the closure stopped at it, leaving
    its modules and what they import out of the keys and the shipment); a module linked in from elsewhere is named
    where the import finds it (naming it where the link points raised ValueError)."""
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text(RAISES)
    (tmp_path / "pkg" / "model.py").write_text("from pkg.sub import layers\nfrom .linked import X\n" + RAISES)
    (tmp_path / "pkg" / "sub" / "layers.py").write_text("import helpers2\n" + RAISES)
    (tmp_path / "helpers2.py").write_text(RAISES)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "linked.py").write_text("X = 1\n")
    (tmp_path / "pkg" / "linked.py").symlink_to(tmp_path / "elsewhere" / "linked.py")
    monkeypatch.chdir(tmp_path)
    root = tmp_path.resolve()
    assert user_units("pkg.model") == (root / "pkg", root / "helpers2.py")
    digest = user_source_digest("pkg.model")
    for edited in (tmp_path / "pkg" / "sub" / "layers.py", tmp_path / "elsewhere" / "linked.py"):
        text = edited.read_text()
        edited.write_text("CHANGED = 1\n" + text)
        assert user_source_digest("pkg.model") != digest
        edited.write_text(text)
    assert user_source_digest("pkg.model") == digest
