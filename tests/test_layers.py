"""The layers hold: the shared request layer (mpc_ray.requests, mpc_ray.intents, the policy model mpc_ray.policy) is
pure, and clients do not reach into node/.

`mpc_ray.requests`, `mpc_ray.intents` and `mpc_ray.policy` load without Ray, node/ (its store with fcntl and Argon2)
or the coordinator, and none of their modules imports the runtime, the disk or the clock (checked on the source with
`ast`, so a lazy import inside a function is caught too). No client module imports node/, not even lazily: what a
client shares with the holders is in those pure modules, and mpc_ray/deploy.py builds holders and starts vaults.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.layers import FORBIDDEN, _imports, _under

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "mpc_ray"
PURE = ("requests", "intents")  # packages
PURE_MODULES = ("policy.py",)
FORBIDDEN_CALLS = {"open"}  # builtins that touch the disk
FORBIDDEN_ATTRS = {("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today")}


def _pure_files() -> list[Path]:
    return sorted([*(p for pkg in PURE for p in (PKG / pkg).rglob("*.py")), *(PKG / m for m in PURE_MODULES)])


def test_pure_packages_exist():
    names = {p.relative_to(PKG).as_posix() for p in _pure_files()}
    assert {"requests/signed.py", "requests/principals.py", "requests/raw_batch.py", "intents/evm.py",
            "intents/solana.py", "intents/bitcoin.py", "intents/decode.py", "requests/admin.py", "policy.py"} <= names


@pytest.mark.parametrize("path", _pure_files(), ids=lambda p: p.relative_to(PKG).as_posix())
def test_pure_module_imports_no_runtime_disk_or_clock(path):
    bad = [f"line {line}: {name}" for name, line in _imports(path) if any(_under(name, f) for f in FORBIDDEN)]
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS:
            bad.append(f"line {node.lineno}: {node.func.id}()")
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and (node.value.id, node.attr) in FORBIDDEN_ATTRS):
            bad.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    assert not bad, f"{path.relative_to(ROOT)} reaches outside its layer: {bad}"


def test_the_checker_sees_a_forbidden_import(tmp_path):
    # the scan must catch a lazy import inside a function, relative or absolute: else the test above proves nothing
    probe = tmp_path / "mpc_ray" / "requests" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("def f():\n    from ..node import store\n    import time\n")
    names = [name for name, _ in _imports(probe, tmp_path)]
    assert "mpc_ray.node" in names and "mpc_ray.node.store" in names and "time" in names


def _loaded_after(code: str) -> dict[str, bool]:
    probe = ("import json, sys\n" + code + "\n"
             "print(json.dumps({m: m in sys.modules for m in ('ray', 'mpc_ray.node', 'mpc_ray.node.store', "
             "'mpc_ray.coordinator', 'mpc_ray.client', 'fcntl', 'argon2', 'nacl.pwhash')}))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_requests_and_intents_load_without_ray_or_node():
    loaded = _loaded_after("import mpc_ray.requests, mpc_ray.intents, mpc_ray.intents.bitcoin, mpc_ray.policy\n"
                           "from mpc_ray.intents import intent_from_request\n"
                           "from mpc_ray.policy import AssetLimit, Policy, TxType, native_asset\n"
                           "from mpc_ray.requests import SignedRequest, sign_request")
    for name in ("ray", "mpc_ray.node", "mpc_ray.node.store", "mpc_ray.coordinator", "mpc_ray.client", "argon2",
                 "nacl.pwhash"):
        assert not loaded[name], f"{name} is loaded by the pure request layer"


def test_requests_alone_load_no_fcntl():
    # mpc_ray.intents pulls eth-account, whose pycryptodome -> cffi -> subprocess imports fcntl: not ours, and not a
    # disk access. The request layer alone (what an agent that only signs requests loads) must not.
    loaded = _loaded_after("import mpc_ray.requests")
    assert not loaded["fcntl"] and not loaded["ray"] and not loaded["mpc_ray.node"]


def test_client_modules_do_not_import_node():
    bad = [f"client/{path.relative_to(PKG / 'client').as_posix()}:{line} imports {name}"
           for path in sorted((PKG / "client").rglob("*.py"))
           for name, line in _imports(path) if _under(name, "mpc_ray.node")]
    assert not bad, ("client modules import node/ (use mpc_ray.requests, mpc_ray.intents, mpc_ray.policy or "
                     "mpc_ray.deploy): " + "; ".join(bad))


def test_the_client_contract_has_no_exceptions():
    # pyproject.toml's import-linter contract (run by tests/test_guards.py) forbids client -> node outright
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    client = [c for c in contracts if c["type"] == "forbidden" and "mpc_ray.client" in c["source_modules"]
              and "mpc_ray.node" in c["forbidden_modules"]]
    assert len(client) == 1 and not client[0].get("ignore_imports"), client


def _cycles_within_packages() -> list[list[str]]:
    """Strongly connected groups (more than one module) of the graph "module imports module of the same package",
    lazy imports inside functions included, annotation-only imports (``if TYPE_CHECKING:``) left out."""
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
               for p in PKG.rglob("*.py")}

    def package(name: str) -> str:
        return ".".join(name.split(".")[:2])

    graph = {m: {i for i, _ in _imports(p, ROOT, runtime_only=True)
                 if i in modules and i != m and package(i) == package(m)} for m, p in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def test_no_import_cycle_within_a_package():
    """Issue 19: no two modules of one package import each other, directly or around a loop (a lazy import that
    breaks a loop at import time is still a loop); only annotation-only imports may point back."""
    assert _cycles_within_packages() == []
