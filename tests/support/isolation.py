"""Processes as other OS users, for the isolation tests: they need root (CI runs as root), setpriv and useradd, and
skip with the reason where these are missing."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from mpc_ray.errors import IsolationUnavailable
from mpc_ray.node.vault import as_user, ensure_user

RAY_USER, VAULT_USER = "mpcray-test-ray", "mpcray-test-vault"


def users_or_skip() -> tuple[pwd.struct_passwd, pwd.struct_passwd]:
    """The test's Ray user and vault user (created when missing; the vault user in the Ray user's group)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create OS users and run processes as them (CI runs as root)")
    for tool in ("setpriv", "useradd", "usermod"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool} to create OS users and run processes as them")
    try:
        return ensure_user(RAY_USER), ensure_user(VAULT_USER, groups=[RAY_USER])
    except IsolationUnavailable as exc:
        pytest.skip(f"cannot create the test users: {exc}")


_PROBE = "import os, sys; os.execv(sys.executable, [sys.executable, '-c', 'import mpc_ray, ray'])"


def _runs_as(python: str, users: list[str]) -> bool:
    """Whether each of `users` can run `python` with mpc-ray and Ray, and run it again from inside: setpriv may
    exec an interpreter its user could not reach by its path, which then fails to start Ray's own processes."""
    return all(subprocess.run(as_user(u) + [python, "-c", _PROBE], cwd="/", capture_output=True,
                              timeout=120).returncode == 0 for u in users)


def shared_python(where: Path, users: list[str]) -> str:
    """An interpreter that each of `users` can run, with this one's packages: this one where they can, else (it lies
    under a directory they cannot enter, as pyenv's under /root) a venv at `where` of the system's Python of the
    same minor version, whose site-packages adds this one's."""
    if _runs_as(sys.executable, users):
        return sys.executable
    minor = f"{sys.version_info.major}.{sys.version_info.minor}"
    base = shutil.which(f"python{minor}", path="/usr/bin:/usr/local/bin")
    if base is None:
        pytest.skip(f"the test users cannot run {sys.executable}, and there is no system python{minor} to use")
    site = where / "lib" / f"python{minor}" / "site-packages"
    site.mkdir(parents=True)
    (where / "bin").mkdir()
    (where / "bin" / "python3").symlink_to(base)
    (where / "pyvenv.cfg").write_text(f"home = {Path(base).parent}\ninclude-system-site-packages = false\n")
    (site / "zz-mpc-ray.pth").write_text(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    for path in [where, *where.rglob("*")]:
        if not path.is_symlink():
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
    python = str(where / "bin" / "python3")
    if not _runs_as(python, users):
        pytest.skip(f"the test users can run neither {sys.executable} nor {base} with this one's packages")
    return python


# a client of the vault socket run as another user or process (the vault must refuse it by uid)
OTHER_CLIENT = """
import socket, struct, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(20)
try:
    s.connect(sys.argv[1])
except PermissionError:
    print("EACCES"); sys.exit(0)
body = bytes.fromhex(sys.argv[2])
s.sendall(struct.pack(">I", len(body)) + body)
data = b""
while len(data) < 4 or len(data) < 4 + struct.unpack(">I", data[:4])[0]:  # one answer
    try:
        chunk = s.recv(65536)
    except ConnectionResetError:
        break
    if not chunk:
        break
    data += chunk
print(data.hex())
"""
