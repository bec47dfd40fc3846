"""Issue 16's attacker: Ray runs as an unprivileged user and party 1's vault as another (`start_vault(user=...)`).
Code that a driver sends to party 1's node (a label selector) tries to list and read the state directory, read the
node secret, open the vault's /proc/<pid>/mem and environ and signal it: every attempt is refused, while the proxy,
as the Ray user, is served; a third uid is refused by the socket's mode, or, in the Ray user's group, by its peer
uid. A control vault run as the Ray user gives each attempt what it asked for, so the test can fail. Then
`local_cluster(isolation="user")` keygens and signs. Needs root to create the users (CI runs as root); skips with
the reason otherwise."""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import coincurve
import pytest

import mpc_ray
from mpc_ray.errors import InvalidInput, IsolationUnavailable, Unauthorized
from mpc_ray.node import vault_codec as vc
from mpc_ray.node.vault import PEER_RULE, VAULT_PYTHON_ENV, VaultProcess, as_user, ensure_user, start_vault
from tests.support.isolation import RAY_USER, VAULT_USER, shared_python, users_or_skip
from tests.support.isolation import OTHER_CLIENT

MARKER = "MPC_VAULT_ISOLATION_MARKER"  # in each vault's environment: the control finds it there

# Run as the Ray user: starts Ray with party 1's label, sends the attack to that node, then tries the proxy.
ATTACK = r'''
import hashlib, json, os, sys
import ray
from mpc_ray.node.vault_proxy import VaultProxy


def attempt(fn):
    try:
        return "ok:" + str(fn())
    except PermissionError:
        return "denied"
    except Exception as exc:
        return "error:" + type(exc).__name__


def read_mem(pid):
    with open(f"/proc/{pid}/mem", "rb", 0) as mem, open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            span, perms = line.split()[:2]
            if perms.startswith("r"):
                mem.seek(int(span.split("-")[0], 16))
                return len(mem.read(4096))


@ray.remote(num_cpus=0)
def attack(state, pid, marker):
    secret = os.path.join(state, "node.secret")
    return os.getuid(), {
        "list the state directory": attempt(lambda: len(os.listdir(state))),
        "read the node secret": attempt(lambda: hashlib.sha256(open(secret, "rb").read()).hexdigest()),
        "list the store": attempt(lambda: len(os.listdir(os.path.join(state, "store")))),
        "read the vault's memory": attempt(lambda: read_mem(pid)),
        "read the vault's environment": attempt(lambda: marker.encode() in open(f"/proc/{pid}/environ", "rb").read()),
        "signal the vault": attempt(lambda: os.kill(pid, 0)),
    }


args = json.loads(sys.argv[1])
ray.init(num_cpus=1, labels={"mpc-party": "1"}, include_dashboard=False, log_to_driver=False,
         _temp_dir=args["ray_dir"])
on_party_1 = {"label_selector": {"mpc-party": "1"}}
out = {}
for name, t in args["targets"].items():
    uid, found = ray.get(attack.options(**on_party_1).remote(t["state_dir"], t["pid"], args["marker"]))
    proxy = ray.remote(VaultProxy).options(num_cpus=0, **on_party_1).remote(1, t["socket"])
    out[name] = {"uid": uid, "attempts": found, "proxy ping": attempt(lambda: ray.get(proxy.ping.remote()))}
ray.shutdown()
print(json.dumps(out))
'''
ATTEMPTS = ("list the state directory", "read the node secret", "list the store", "read the vault's memory",
            "read the vault's environment", "signal the vault")


@dataclass
class World:
    top: Path
    python: str
    ray: pwd.struct_passwd
    vault: pwd.struct_passwd
    nobody: pwd.struct_passwd
    isolated: VaultProcess  # party 1's vault, as the vault user
    control: VaultProcess  # the same, as the Ray user
    marker: str


@pytest.fixture(scope="module")
def world():
    ray_user, vault_user = users_or_skip()
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no 'nobody' user to connect as a third uid")
    top = Path(tempfile.mkdtemp(prefix="mvi-"))  # short: a socket path holds 107 bytes
    os.chmod(top, 0o711)  # each user reaches its own directory below, never lists
    started: list[VaultProcess] = []
    marker = secrets.token_hex(16)
    try:
        python = shared_python(top / "py", [RAY_USER, VAULT_USER])
        os.environ[MARKER] = marker
        try:
            started.append(start_vault(1, top / "v" / "party-1", kdf="min", user=VAULT_USER, socket_group=RAY_USER,
                                       allow_uids=[ray_user.pw_uid], python=python))
            started.append(start_vault(1, top / "c" / "party-1", kdf="min", user=RAY_USER, socket_group=RAY_USER,
                                       allow_uids=[ray_user.pw_uid, nobody.pw_uid], python=python))
        finally:
            del os.environ[MARKER]
        yield World(top, python, ray_user, vault_user, nobody, *started, marker)
    finally:
        for v in started:
            v.stop()
        shutil.rmtree(top, ignore_errors=True)


def _stop_leftovers(uid: int, mark: str) -> None:
    """Kill, by pid, the processes of `uid` whose command line names `mark` (the test's Ray directory): whatever of
    the cluster the test started outlived its driver. Never `ray stop`, which stops every Ray on the machine."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid == uid and mark in (entry / "cmdline").read_bytes().decode(errors="replace"):
                os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            continue


@pytest.fixture(scope="module")
def attack(world):
    """What the attack found, per target vault ("isolated", "control"), run once on a Ray cluster of the Ray user."""
    ray_dir = world.top / "ray"  # Ray's temp dir and the Ray user's home: nothing of Ray's outside it
    ray_dir.mkdir(mode=0o700)
    os.chown(ray_dir, world.ray.pw_uid, world.ray.pw_gid)
    script = world.top / "attack.py"
    script.write_text(ATTACK)
    os.chmod(script, 0o644)
    state = {"isolated": world.top / "v" / "party-1", "control": world.top / "c" / "party-1"}
    args = {"ray_dir": str(ray_dir / "r"), "marker": world.marker,
            "targets": {name: {"state_dir": str(state[name]), "pid": v.process.pid, "socket": str(v.socket_path)}
                        for name, v in (("isolated", world.isolated), ("control", world.control))}}
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(ray_dir), "TMPDIR": str(ray_dir),
           "USER": RAY_USER, "LOGNAME": RAY_USER, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.Popen(as_user(RAY_USER) + [world.python, str(script), json.dumps(args)], cwd=ray_dir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the driver's process group: what Ray started and left behind
        except ProcessLookupError:
            pass
        _stop_leftovers(world.ray.pw_uid, str(ray_dir))
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def _mode(path: Path) -> tuple[int, int, int]:
    st = path.lstat()
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


def _as_nobody(world: World, groups: list[int], vault: VaultProcess) -> str:
    """A ping from `nobody` (in `groups` only): "EACCES" when it cannot connect, else the answer in hex."""
    group_opts = [f"--groups={','.join(map(str, groups))}"] if groups else ["--clear-groups"]
    ping = vc.encode_request(1, "ping", []).hex()
    out = subprocess.run(["setpriv", f"--reuid={world.nobody.pw_uid}", f"--regid={world.nobody.pw_gid}", *group_opts,
                          world.python, "-c", OTHER_CLIENT, str(vault.socket_path), ping],
                         capture_output=True, text=True, timeout=60, cwd="/")
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def _answer(hexed: str):
    return vc.decode_response(bytes.fromhex(hexed)[4:], 1, "ping")


# -- what the vault user owns ------------------------------------------------------------------------------------


def test_the_vault_user_owns_the_state_and_the_ray_users_group_the_socket(world):
    state = world.top / "v" / "party-1"
    assert _mode(state) == (world.vault.pw_uid, world.vault.pw_gid, 0o700)
    assert _mode(state / "node.secret") == (world.vault.pw_uid, world.vault.pw_gid, 0o600)
    assert _mode(world.isolated.socket_path) == (world.vault.pw_uid, world.ray.pw_gid, 0o660)
    assert Path(f"/proc/{world.isolated.process.pid}").stat().st_uid == world.vault.pw_uid


def test_a_third_uid_is_refused_by_the_socket_mode_then_by_its_peer_uid(world):
    assert _as_nobody(world, [], world.isolated) == "EACCES"  # not in the Ray user's group: no connection
    ok, err = _answer(_as_nobody(world, [world.ray.pw_gid], world.isolated))  # in the group, not on the list
    assert not ok and isinstance(err, Unauthorized) and err.rule == PEER_RULE
    assert _answer(_as_nobody(world, [world.ray.pw_gid], world.control)) == (True, 1)  # the control lists it
    assert _answer(_as_nobody(world, [world.ray.pw_gid], world.isolated))[0] is False  # the vault served on


# -- the attack --------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.ray
def test_code_on_party_1s_node_takes_nothing_from_a_vault_of_another_user(world, attack):
    got = attack["isolated"]
    assert got["uid"] == world.ray.pw_uid  # Ray's worker, as the Ray user
    assert got["attempts"] == {name: "denied" for name in ATTEMPTS}  # PermissionError, each one
    assert got["proxy ping"] == "ok:1"  # the proxy, as the Ray user, is served
    assert world.isolated.alive()


def _ptrace_restricted() -> bool:
    """Yama at scope 1 or more lets a process read only its descendants' memory, even of its own user."""
    try:
        return int(Path("/proc/sys/kernel/yama/ptrace_scope").read_text()) > 0
    except (OSError, ValueError):
        return False


@pytest.mark.slow
@pytest.mark.ray
def test_the_same_attempts_succeed_against_a_vault_of_the_ray_user(world, attack):
    got = attack["control"]["attempts"]
    secret = (world.top / "c" / "party-1" / "node.secret").read_bytes()
    assert got["read the node secret"] == "ok:" + hashlib.sha256(secret).hexdigest()
    assert got["list the state directory"].startswith("ok:") and got["list the store"].startswith("ok:")
    assert got["read the vault's environment"] == "ok:True"
    assert got["read the vault's memory"] == ("denied" if _ptrace_restricted() else "ok:4096")
    assert got["signal the vault"] == "ok:None"
    assert attack["control"]["proxy ping"] == "ok:1"


# -- starting a vault as another user: the refusals --------------------------------------------------------------


def test_as_user_and_start_vault_refuse_what_cannot_work(world, monkeypatch):
    with pytest.raises(InvalidInput, match="no OS user"):
        as_user("mpcray-no-such-user")
    with pytest.raises(InvalidInput, match="not a user name"):
        ensure_user("--help")  # never handed to useradd, where it would read as an option
    root = world.top / "refusals"
    root.mkdir(mode=0o700)  # root's own: the vault user cannot make its socket there
    with pytest.raises(InvalidInput, match="cannot create its socket"):
        start_vault(1, root / "party-1", kdf="min", user=VAULT_USER, python=world.python)
    with pytest.raises(InvalidInput, match="not in the group"):
        start_vault(1, world.top / "v2" / "party-1", kdf="min", user=VAULT_USER, socket_group="nogroup",
                    python=world.python)
    with pytest.raises(IsolationUnavailable, match="cannot run"):
        start_vault(1, world.top / "v2" / "party-1", kdf="min", user=VAULT_USER, python="/nonexistent/python3")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(IsolationUnavailable, match="needs root"):
        as_user(VAULT_USER)
    with pytest.raises(IsolationUnavailable, match="needs root"):
        ensure_user("mpcray-test-not-created")


def test_ensure_user_creates_a_system_user_and_adds_groups(world):
    name = f"mpcray-t{secrets.token_hex(3)}"
    try:
        entry = ensure_user(name, groups=[RAY_USER])
        assert entry.pw_shell.endswith("nologin") and entry.pw_uid < 1000  # a system user, no login
        assert world.ray.pw_gid in os.getgrouplist(name, entry.pw_gid)
        assert ensure_user(name, groups=[RAY_USER]) == entry  # idempotent
    finally:
        subprocess.run(["userdel", name], capture_output=True, check=False)


# -- local_cluster(isolation="user") ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.ray
def test_local_cluster_with_vaults_of_a_dedicated_user_keygens_and_signs(world, monkeypatch):
    monkeypatch.setenv(VAULT_PYTHON_ENV, world.python)  # an interpreter the vault user can run
    digest = hashlib.sha256(b"isolation=user").digest()
    with mpc_ray.local_cluster(parties=2, threshold=2, security="112", kdf="min", pool_depth=2, workers_per_node=0,
                               isolation="user", vault_user=VAULT_USER) as mpc:
        assert len(mpc.vaults) == 2
        for v in mpc.vaults.values():
            assert Path(f"/proc/{v.process.pid}").stat().st_uid == world.vault.pw_uid
        assert _mode(mpc.state_dir(1))[::2] == (world.vault.pw_uid, 0o700)
        key = mpc.create_key("ecdsa-secp256k1")
        sig = mpc.sign(key.key_id, digest)
        assert coincurve.PublicKey(key.public_key).verify(sig.der(), digest, hasher=None)
