"""README.md runs as written: every ```python block is executed, every `mpc-ray` command line of a ```bash block
must parse, and the install and test commands agree with pyproject.toml and .ci/run.

A Python block's first line may say how it runs:
- ``# excerpt: <why>``: not run (it needs something a test cannot have, e.g. a gateway on another host); it is
  compiled, and the test reports it as skipped with that reason, so an excerpt is never silently counted as run;
- ``# continued: ...``: it goes on inside the nearest runnable block above it that ends in an indented body (the
  ``with local_cluster(...)`` walk-through), at the indentation of that block's last line, so that every Ray example
  shares one cluster (one cluster start on 2 cores is a minute or two).

Each runnable block and its continuations run as one program in a fresh interpreter. The program keeps the README's
line numbers (other lines are blank), so a traceback points at the README line that failed. A ``print(...)`` line
with a trailing comment claims its output: ``print(e.rule)  # policy.per_tx_cap`` must print that line.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mpc_ray.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
EXCERPT, CONTINUED = "# excerpt:", "# continued:"
CLUSTER_MARK = "local_cluster("  # a program that starts an embedded Ray cluster is slow (about a minute or two)
CLUSTER_TIMEOUT_S, PLAIN_TIMEOUT_S = 420, 180
_FENCE = re.compile(r"^```(\w*)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
_PRINT_CLAIM = re.compile(r"^\s*print\(.*\)\s+#\s*(.+?)\s*$")


@dataclass
class Block:
    lang: str
    line: int  # README line of the block's first code line
    code: str

    @property
    def first(self) -> str:
        return self.code.splitlines()[0].strip() if self.code.strip() else ""


@dataclass
class Program:
    base: Block
    continuations: list[Block] = field(default_factory=list)

    @property
    def blocks(self) -> list[Block]:
        return [self.base, *self.continuations]

    @property
    def ends_indented(self) -> bool:
        return bool(re.match(r"\s", self._base_lines()[-1]))

    def _base_lines(self) -> list[str]:
        return [ln for ln in self.base.code.splitlines() if ln.strip()]

    @property
    def starts_cluster(self) -> bool:
        return any(CLUSTER_MARK in b.code for b in self.blocks)

    def source(self) -> str:
        """The program, each code line on its README line (continuations indented into the base's last line)."""
        indent = re.match(r"\s*", self._base_lines()[-1]).group(0)
        out: list[str] = []
        for block in self.blocks:
            pad = "" if block is self.base else indent
            out.extend([""] * (block.line - 1 - len(out)))
            out.extend(pad + ln if ln.strip() else "" for ln in block.code.splitlines())
        return "\n".join(out) + "\n"

    def claimed_output(self) -> list[str]:
        return [m.group(1) for b in self.blocks for ln in b.code.splitlines() if (m := _PRINT_CLAIM.match(ln))]


def readme_blocks(text: str | None = None) -> list[Block]:
    text = README.read_text() if text is None else text
    return [Block(m.group(1), text.count("\n", 0, m.start(2)) + 1, m.group(2)) for m in _FENCE.finditer(text)]


def python_programs(blocks: list[Block]) -> tuple[list[Program], list[Block]]:
    """(runnable programs, excerpts) of the README's Python blocks."""
    programs: list[Program] = []
    excerpts: list[Block] = []
    for b in (b for b in blocks if b.lang == "python"):
        if b.first.startswith(EXCERPT):
            excerpts.append(b)
        elif b.first.startswith(CONTINUED):
            open_bodies = [p for p in programs if p.ends_indented]
            assert open_bodies, f"README.md:{b.line}: a continued block with no indented block above it to go on in"
            open_bodies[-1].continuations.append(b)
        else:
            programs.append(Program(b))
    return programs, excerpts


BLOCKS = readme_blocks()
PROGRAMS, EXCERPTS = python_programs(BLOCKS)


def _program_param(p: Program):
    marks = [pytest.mark.slow, pytest.mark.ray] if p.starts_cluster else []
    lines = "+".join(str(b.line) for b in p.blocks)
    return pytest.param(p, id=f"README.md:{lines}", marks=marks)


def _run(program: Program, tmp_path: Path) -> subprocess.CompletedProcess:
    script = tmp_path / f"README_md_line_{program.base.line}.py"
    script.write_text(program.source())
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
    env.pop("MPC_RAY_CREDENTIALS", None)  # the README's examples make their own principals
    timeout = CLUSTER_TIMEOUT_S if program.starts_cluster else PLAIN_TIMEOUT_S
    # a fresh interpreter in an empty directory: nothing of the test process (or of the checkout) leaks in
    return subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.mark.parametrize("program", [_program_param(p) for p in PROGRAMS])
def test_python_block_runs_as_written(program: Program, tmp_path: Path):
    proc = _run(program, tmp_path)
    assert proc.returncode == 0, (
        f"README.md python block(s) at line(s) {[b.line for b in program.blocks]} failed (exit {proc.returncode}); "
        f"traceback line numbers are README.md lines:\n{proc.stderr[-6000:]}")
    printed = [ln.strip() for ln in proc.stdout.splitlines()]
    for claim in program.claimed_output():
        assert claim in printed, f"README.md claims a print of {claim!r}; the block printed {printed}"


@pytest.mark.parametrize("block", [pytest.param(b, id=f"README.md:{b.line}") for b in EXCERPTS])
def test_python_excerpt_is_marked_and_compiles(block: Block):
    reason = block.first[len(EXCERPT):].strip()
    assert reason, f"README.md:{block.line}: an excerpt says why it is not run (# excerpt: needs ...)"
    # top-level await is how an async excerpt reads; compile() checks the syntax without running anything
    compile(block.code, f"README.md:{block.line}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    pytest.skip(f"README.md:{block.line} is an excerpt, compiled but not run: {reason}")


def shell_commands(block: Block) -> list[tuple[int, list[str]]]:
    """(README line, argv) of every simple command of a bash block (split at &&, ||, ;, |)."""
    out = []
    for offset, line in enumerate(block.code.splitlines()):
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split, lexer.commenters = True, "#"
        argv: list[str] = []
        for tok in [*lexer, ";"]:
            if tok and set(tok) <= set(";&|"):
                if argv:
                    out.append((block.line + offset, argv))
                argv = []
            else:
                argv.append(tok)
    return out


def _without_env(argv: list[str]) -> list[str]:
    """argv without leading VAR=value assignments."""
    i = 0
    while i < len(argv) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", argv[i]):
        i += 1
    return argv[i:]


BASH_COMMANDS = [(n, argv) for b in BLOCKS if b.lang in ("bash", "sh", "shell") for n, argv in shell_commands(b)]
CLI_COMMANDS = [(n, _without_env(a)) for n, a in BASH_COMMANDS if _without_env(a)[:1] == ["mpc-ray"]]


def test_readme_has_cli_commands_to_check():
    assert len(CLI_COMMANDS) >= 8, CLI_COMMANDS  # demo, up, keygen, sign, status, bench, export-audit, down


@pytest.mark.parametrize("line,argv", [pytest.param(n, a, id=f"README.md:{n}:{' '.join(a[:2])}")
                                       for n, a in CLI_COMMANDS])
def test_cli_command_line_parses(line: int, argv: list[str], capsys):
    try:
        args = build_parser().parse_args(argv[1:])
    except SystemExit as e:  # argparse exits 2 on an unknown flag or a bad value
        pytest.fail(f"README.md:{line}: `{shlex.join(argv)}` does not parse (exit {e.code}): "
                    f"{capsys.readouterr().err.strip()}")
    assert callable(args.func), f"README.md:{line}: `{shlex.join(argv)}` names no command"


def test_conformance_command_runs_as_written():
    commands = [a for _, a in BASH_COMMANDS if a[:3] == ["python", "-m", "mpc_ray.conformance"]]
    assert commands
    for argv in commands:
        proc = subprocess.run([sys.executable, *argv[1:]], cwd=ROOT, capture_output=True, text=True, timeout=120,
                              check=False)
        assert proc.returncode == 0 and proc.stdout.startswith("PASS"), (argv, proc.stdout, proc.stderr)


def test_test_command_is_the_one_ci_runs():
    """The README's test command is what .ci/run runs (after it sets RAY_AUTH_MODE=disabled) and installs."""
    readme = [_without_env(a) for _, a in BASH_COMMANDS if "pytest" in a]
    assert readme == [["python", "-m", "pytest", "-q"]], readme
    assert ["RAY_AUTH_MODE=disabled", "python", "-m", "pytest", "-q"] in [a for _, a in BASH_COMMANDS]
    ci = [ln.split("#")[0].strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert "python -m pytest -q" in ci
    assert "export RAY_AUTH_MODE=disabled" in ci
    assert any(ln.startswith("python -m pip install") and '-e ".[test]"' in ln for ln in ci)
    assert ["pip", "install", "-e", ".[test]"] in [a for _, a in BASH_COMMANDS]


def test_python_version_and_extras_match_pyproject():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    minimum = re.fullmatch(r">=\s*(\d+\.\d+)", meta["requires-python"]).group(1)
    text = README.read_text()
    assert f"Python {minimum} or newer" in text
    assert ["python3", "-m", "venv", ".venv"] in [a for _, a in BASH_COMMANDS]
    named = set(re.findall(r'"\.\[([a-z0-9_,-]+)\]"', text)) | set(re.findall(r"mpc-ray\[([a-z0-9_,-]+)\]", text))
    extras = {e for group in named for e in group.split(",")}
    assert extras and extras <= set(meta["optional-dependencies"]), extras - set(meta["optional-dependencies"])


def test_block_markers_are_understood():
    """The parser this file relies on: continuations join the runnable block above, excerpts are set apart."""
    text = ("```python\nwith open('x') as f:\n    pass\n```\ntext\n```python\n# excerpt: needs a gateway\nawait x\n```\n"
            "```python\nx = 1\n```\n"
            "```python\n# continued: inside the with block\nprint(1)  # 1\n```\n```bash\nmpc-ray up && mpc-ray down\n```\n")
    blocks = readme_blocks(text)
    programs, excerpts = python_programs(blocks)
    assert [b.line for b in excerpts] == [7] and len(programs) == 2 and not programs[1].continuations
    assert programs[0].source().splitlines() == ["", "with open('x') as f:", "    pass", *[""] * 10,
                                                 "    # continued: inside the with block", "    print(1)  # 1"]
    assert programs[0].claimed_output() == ["1"]
    assert shell_commands(blocks[-1]) == [(18, ["mpc-ray", "up"]), (18, ["mpc-ray", "down"])]


def test_layout_names_every_module_and_package():
    """README's Layout names every package and top-level module of mpc_ray/ (and every folder of tests/), so the map
    a newcomer reads is the tree they find."""
    text = README.read_text()
    layout = text[text.index("## Layout"):]
    layout = layout[: layout.index("\n## ", 1)]
    pkg = ROOT / "mpc_ray"
    names = {p.name + "/" for p in pkg.iterdir() if (p.is_dir() and (p / "__init__.py").exists())}
    names |= {p.name for p in pkg.glob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    missing = sorted(n for n in names if n not in layout)
    assert not missing, f"README's Layout does not name: {missing}"
    folders = {p.name for p in (ROOT / "tests").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    tests_entry = layout[layout.index("\ntests/"):]
    tests_entry = tests_entry[: tests_entry.index("\nbenchmarks/")]
    assert not sorted(f for f in folders if f not in tests_entry), "README's Layout does not name every tests/ folder"
