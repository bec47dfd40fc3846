"""What a module imports, read from its source with `ast` (lazy imports inside functions too), and the modules a
pure layer must never import: shared by tests/test_layers.py and the pure-layer checks of other tests."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# modules a pure package must never import: the runtime, the layers above it, the disk and the clock
FORBIDDEN = ("ray", "mpc_ray.node", "mpc_ray.coordinator", "mpc_ray.client", "mpc_ray.gateway", "mpc_ray.cli",
             "fcntl", "os", "pathlib", "shutil", "tempfile", "time")


def _imports(path: Path, root: Path = ROOT, *, runtime_only: bool = False) -> list[tuple[str, int]]:
    """Every module `path` imports (absolute names; relative imports resolved), with line numbers, lazy ones too;
    `runtime_only`: not those under ``if TYPE_CHECKING:`` (annotations only)."""
    module = ".".join(path.relative_to(root).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    package = package.removesuffix(".__init__")
    tree = ast.parse(path.read_text(), str(path))
    typing_only = {id(n) for guard in ast.walk(tree) if isinstance(guard, ast.If) and runtime_only
                   and "TYPE_CHECKING" in ast.unparse(guard.test) for n in ast.walk(guard)}
    out = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.append((name, node.lineno))
            # `from .. import x` may import the module x
            out += [(f"{name}.{a.name}", node.lineno) for a in node.names]
    return out


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")
