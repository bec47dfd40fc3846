"""The tests are arranged like the code: shared helpers live in tests/support, no test module imports another
(a test module's data and fixtures are its own), and every folder is a package, so that two folders may hold
modules of the same name."""

from __future__ import annotations

from pathlib import Path

from tests.support.layers import ROOT, _imports

TESTS = ROOT / "tests"


def _test_module(name: str) -> bool:
    return name.startswith("tests.") and name.rsplit(".", 1)[-1].startswith("test_")


def test_no_test_module_imports_another():
    bad = [f"{path.relative_to(ROOT)}:{line}: {name}"
           for path in sorted(TESTS.rglob("*.py"))
           for name, line in _imports(path)
           if _test_module(name) and name != ".".join(path.relative_to(ROOT).with_suffix("").parts)]
    assert bad == [], "move what they share into tests/support:\n" + "\n".join(bad)


def test_the_probe_sees_an_import_of_a_test_module(tmp_path: Path):
    probe = tmp_path / "tests" / "node" / "test_probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("def f():\n    from tests.node.test_policy import ALICE\n    from ..support import policies\n")
    names = [name for name, _ in _imports(probe, tmp_path)]
    assert [n for n in names if _test_module(n)] == ["tests.node.test_policy"]


def test_every_folder_is_a_package():
    folders = {p.parent for p in TESTS.rglob("*.py")} - {TESTS}
    assert sorted(str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").exists()) == []
