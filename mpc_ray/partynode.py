"""`mpc-ray node start` / `node stop` on a party host: the party's vault, then its Ray node, and nothing else.

    mpc-ray node start --party I --region R --address HEAD:6379 --state-dir DIR [--vault-user U] [--ray-user U]
        [--workers N] [--secret-file F | --secret-env V | --secret-command C] [--allow-root] [--ray-args "..."]
    mpc-ray node start --head --address HEAD:6379 --state-dir DIR          (the head: Ray only, no party, no CPUs)
    mpc-ray node stop --state-dir DIR [--party I | --head]

Start: the vault (``python -m mpc_ray.node.vault``, in its own session so it outlives this command and keeps serving
across Ray restarts; as ``--vault-user`` through node/vault.py's `as_user` prefix) with its store in ``DIR/party-I``
and its socket at ``vault_socket_path(DIR/party-I)``, the convention `mpc-ray deploy` finds it by; then its presign
worker vaults; once each answers a ping, ``ray start --block --address HEAD --labels mpc-party=I,region=R`` in its
own session, so this command owns one PID whose signal stops that node's Ray processes (``--block`` makes ``ray
start`` stay and, on SIGTERM, kill the processes it started). Ray's auth mode comes from the environment,
``RAY_AUTH_MODE=token`` when unset. The PIDs (with their start times, so a reused PID is never signalled) go to
``DIR/party-I.node.json``; `stop` signals exactly those and their descendants, never ``ray stop`` (which stops every
Ray process on the machine). Run again while part of the node runs (a vault died), `start` starts only what is down:
the vault comes back under the running Ray node, and its proxy actor reconnects.

Ray runs whatever code a driver submits as the user Ray runs as: as root that is the whole host, every vault
included, so `start` refuses root unless ``--ray-user`` drops Ray to another user or ``--allow-root`` says so.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .deploy import PARTY_LABEL, REGION_LABEL, party_state_dir, vault_socket
from .devcluster import pid_alive
from .errors import InvalidInput, MpcError

__all__ = ["start_node", "stop_node"]

START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0
_LABEL_VALUE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?")  # Ray's (Kubernetes') label values
_OWN_RAY_ARGS = ("--address", "--head", "--block", "--labels", "--labels-file", "--port")  # set by this command
ROOT_REFUSAL = ("refusing to run Ray as root: Ray runs any code a driver submits as its own user, and root can read "
                "every vault; pass --ray-user USER (or --allow-root, for a throwaway test host)")


def _record_path(state_dir: Path, party: int | None) -> Path:
    return state_dir / ("head.node.json" if party is None else f"party-{party}.node.json")


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22): with the PID, its identity."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def _same_process(entry: dict[str, Any]) -> bool:
    return pid_alive(entry["pid"]) and _start_time(entry["pid"]) == entry["start"]


def _descendants(pid: int) -> list[dict[str, Any]]:
    """Every process below `pid` (children, theirs, ...), each as {pid, start}."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop()
        start = _start_time(p)
        if start is not None:
            out.append({"pid": p, "start": start})
        todo.extend(children.get(p, []))
    return out


def _signal_and_wait(entries: list[dict[str, Any]], timeout_s: float) -> list[int]:
    """SIGTERM each process still the one recorded, wait, SIGKILL what is left; returns the PIDs signalled."""
    live = [e for e in entries if _same_process(e)]
    for e in live:
        try:
            os.kill(e["pid"], signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout_s
    while any(_same_process(e) for e in live) and time.monotonic() < deadline:
        time.sleep(0.1)
    for e in live:
        if _same_process(e):
            try:
                os.kill(e["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
    return [e["pid"] for e in live]


def _stop_entries(entries: list[dict[str, Any]], timeout_s: float) -> list[int]:
    """Stop recorded processes, last started first (Ray before the vaults it calls), and whatever each left below it
    (Ray's raylet, workers and agents, should `ray start --block` be killed before it stops them)."""
    stopped: list[int] = []
    for entry in reversed(entries):
        below = _descendants(entry["pid"]) if _same_process(entry) else []
        stopped += _signal_and_wait([entry], timeout_s)
        stopped += _signal_and_wait(below, 5.0)
    return stopped


def _write_record(path: Path, record: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, path)


def _ray_exe() -> str:
    beside = Path(sys.executable).parent / "ray"
    found = str(beside) if beside.exists() else shutil.which("ray")
    if found is None:
        raise InvalidInput("the `ray` command is not installed beside mpc-ray")
    return found


def _user_prefix(user: str | None) -> list[str]:
    """The command prefix that runs a process as `user` (node/vault.py's `as_user`); none for the current user."""
    if user is None or pwd.getpwnam(user).pw_uid == os.geteuid():
        return []
    from .node.vault import as_user

    return as_user(user)


def _account(user: str | None) -> pwd.struct_passwd:
    try:
        return pwd.getpwuid(os.geteuid()) if user is None else pwd.getpwnam(user)
    except KeyError:
        raise InvalidInput(f"no user {user!r} on this host") from None


def check_start(*, party: int | None, region: str | None, head: bool, address: str, workers: int,
                ray_user: str | None, vault_user: str | None, allow_root: bool, ray_args: str) -> list[str]:
    """The arguments of `node start`, checked before anything starts; returns the extra `ray start` arguments."""
    if head == (party is not None):
        raise InvalidInput("give --party I for a party's node, or --head for the head (which holds no party)")
    if party is not None and party < 1:
        raise InvalidInput("--party must be at least 1")
    if party is not None and (region is None or not _LABEL_VALUE.fullmatch(region)):
        raise InvalidInput("--region is a Ray label value: 1-63 characters of A-Z a-z 0-9 . _ -, starting and ending "
                           "with a letter or digit")
    if head and (vault_user or workers):
        raise InvalidInput("the head runs no vault: --vault-user and --workers are for a party's node")
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInput(f"--address is HOST:PORT (the head's GCS), got {address!r}")
    if workers < 0:
        raise InvalidInput("--workers must be at least 0")
    for user in (ray_user, vault_user):
        _account(user)
    ray_account = _account(ray_user)
    if (vault_user is not None and ray_account.pw_uid != 0 and _account(vault_user).pw_uid != ray_account.pw_uid
            and ray_account.pw_gid not in os.getgrouplist(vault_user, _account(vault_user).pw_gid)):
        raise InvalidInput(f"the vault's socket is for the Ray user's group: add {vault_user} to it first "
                           f"(usermod -aG {grp.getgrgid(ray_account.pw_gid).gr_name} {vault_user})")
    if os.geteuid() == 0 and (ray_user is None or _account(ray_user).pw_uid == 0) and not allow_root:
        raise InvalidInput(ROOT_REFUSAL)
    try:
        extra = shlex.split(ray_args)
    except ValueError as exc:
        raise InvalidInput(f"--ray-args: {exc}") from None
    own = [a for a in extra if a.split("=", 1)[0] in _OWN_RAY_ARGS]
    if own:
        raise InvalidInput(f"--ray-args may not set {own[0].split('=', 1)[0]}: `mpc-ray node start` sets it")
    return extra


def _prepare_dir(state_dir: Path, vault_user: str | None) -> None:
    """DIR: the vault's user must create its store and socket there; nobody but root may remove this command's
    records (sticky bit) and the Ray user only passes through it to the socket."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if vault_user is not None and _account(vault_user).pw_uid != os.geteuid():
        os.chown(state_dir, -1, _account(vault_user).pw_gid)
        os.chmod(state_dir, 0o1771)


def _wait_ready(proc: subprocess.Popen, ready, what: str, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if proc.poll() is not None:
            last = next((ln for ln in reversed(log.read_text(errors="replace").splitlines()) if ln.strip()), "")
            raise MpcError(f"{what} exited with status {proc.returncode} (see {log}): {last.strip()[:300]}")
        if time.monotonic() > deadline:
            raise MpcError(f"{what} was not ready after {timeout_s:.0f} s (see {log})")
        time.sleep(0.1)


def _vault_answers(party: int, path: str) -> bool:
    from .errors import PartyUnavailable
    from .node.vault_proxy import VaultClient

    client = VaultClient(path, party, timeout_s=30.0, connect_wait_s=0.1)
    try:
        client.call("ping")
        return True
    except PartyUnavailable:  # not listening yet; any other answer is final
        return False
    finally:
        client.close()


def _spawn(cmd: list[str], log: Path, env: dict[str, str], record: list[dict[str, Any]],
           started: list[dict[str, Any]], role: str) -> subprocess.Popen:
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, close_fds=True)  # outlives this command
    entry = {"role": role, "pid": proc.pid, "start": _start_time(proc.pid)}
    record.append(entry)
    started.append(entry)
    return proc


def start_node(*, state_dir: str | Path, address: str, party: int | None = None, region: str | None = None,
               head: bool = False, workers: int = 0, vault_user: str | None = None, ray_user: str | None = None,
               allow_root: bool = False, secret_file: str | None = None, secret_env: str | None = None,
               secret_command: str | None = None, kdf: str = "interactive", ray_args: str = "",
               timeout_s: float = START_TIMEOUT_S) -> dict[str, Any]:
    """Start the vault(s) and the Ray node of `party` (or the head); returns the record written to DIR."""
    extra = check_start(party=party, region=region, head=head, address=address, workers=workers, ray_user=ray_user,
                        vault_user=vault_user, allow_root=allow_root, ray_args=ray_args)
    state_dir = Path(state_dir).expanduser().resolve()
    record_path = _record_path(state_dir, party)
    old = json.loads(record_path.read_text()) if record_path.exists() else {"processes": []}
    # what still runs of this node stays (a vault that died comes back under its running Ray node and proxy)
    kept = {e["role"]: e for e in old["processes"] if _same_process(e)}
    roles = ["ray"] if head else ["vault", *(f"vault-worker-{w}" for w in range(workers)), "ray"]
    if set(roles) <= set(kept):
        raise InvalidInput(f"{'the head' if head else f'party {party}'}'s node runs already (pids "
                           f"{[e['pid'] for e in kept.values()]}): `mpc-ray node stop --state-dir {state_dir}` first")
    _prepare_dir(state_dir, vault_user)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MPC_RAY_NODE_SECRET_")}
    env.pop(secret_env or "", None)  # the node secret reaches the vault only, never Ray
    env.setdefault("RAY_AUTH_MODE", "token")
    # on SIGTERM Ray drains the node first, waiting (30 s) for its actors to leave: a holder is detached and never
    # leaves, and holds nothing (its vault does), so `node stop` skips the wait unless the environment sets one
    env.setdefault("RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S", "0")
    processes: list[dict[str, Any]] = [e for e in old["processes"] if e["role"] in kept]
    started: list[dict[str, Any]] = []  # by this run: what a failure stops again
    record = {"party": party, "head": head, "address": address, "auth": env["RAY_AUTH_MODE"],
              "started_at": time.time(), "processes": processes}
    name = "head" if head else f"party-{party}"
    try:
        if not head:
            from .node.vault import vault_command

            assert party is not None  # check_start: a node is a party's or the head
            ray_uid = _account(ray_user).pw_uid
            secret = (["--secret-file", secret_file] if secret_file else ["--secret-env", secret_env] if secret_env
                      else ["--secret-command", secret_command] if secret_command else [])
            allow_uids: list[int] = []
            socket_group: int | None = None
            if _account(vault_user).pw_uid != ray_uid:  # the Ray user may connect; this command (the ping) too
                allow_uids = [ray_uid, os.geteuid()]
                if ray_uid != 0:  # root passes the socket's mode anyway; the vault's user cannot give it root's group
                    socket_group = _account(ray_user).pw_gid
            for worker in [None, *range(workers)]:
                # detached (its own session, _spawn) and not --exit-with-parent: it outlives this command
                cmd = vault_command(party, party_state_dir(state_dir, party), worker=worker, kdf=kdf,
                                    prefix=_user_prefix(vault_user), socket_group=socket_group,
                                    allow_uids=allow_uids, args=secret)
                socket = vault_socket(state_dir, party, worker)
                role = "vault" if worker is None else f"vault-worker-{worker}"
                if role in kept:
                    continue
                vault_env = dict(env) if secret_env is None else {**env, secret_env: os.environ.get(secret_env, "")}
                log = state_dir / f"{name}.{role}.log"
                proc = _spawn(cmd, log, vault_env, processes, started, role)
                _write_record(record_path, record)
                _wait_ready(proc, lambda: _vault_answers(party, socket), f"party {party}'s {role}", log, timeout_s)
        if "ray" in kept:
            _write_record(record_path, record)
            record["state_dir"] = str(state_dir)
            return record
        cmd = [*_user_prefix(ray_user), _ray_exe(), "start", "--block"]
        if head:
            cmd += ["--head", "--port", address.rpartition(":")[2], "--num-cpus", "0"]
        else:
            cmd += ["--address", address, "--labels", f"{PARTY_LABEL}={party},{REGION_LABEL}={region}"]
        log = state_dir / f"{name}.ray.log"
        log.unlink(missing_ok=True)  # readiness is read from this run's output, unbuffered
        proc = _spawn([*cmd, *extra], log, {**env, "PYTHONUNBUFFERED": "1"}, processes, started, "ray")
        _write_record(record_path, record)
        _wait_ready(proc, lambda: b"Ray runtime started" in log.read_bytes(), "ray start", log, timeout_s)
    except BaseException:
        _stop_entries(started, STOP_TIMEOUT_S)  # nothing half-started stays
        record["processes"] = [e for e in processes if e not in started]
        _write_record(record_path, record)
        raise
    record["state_dir"] = str(state_dir)
    return record


def stop_node(state_dir: str | Path, *, party: int | None = None, head: bool = False,
              timeout_s: float = STOP_TIMEOUT_S) -> dict[str, Any]:
    """Stop what `start_node` recorded in `state_dir` (one party's node, the head, or every record there) by PID."""
    state_dir = Path(state_dir).expanduser().resolve()
    if party is not None or head:
        paths = [_record_path(state_dir, None if head else party)]
    else:
        paths = sorted(state_dir.glob("*.node.json"))
    out: dict[str, Any] = {}
    for path in paths:
        if not path.exists():
            continue
        record = json.loads(path.read_text())
        out[path.name.removesuffix(".node.json")] = _stop_entries(record["processes"], timeout_s)
        path.unlink()
    return {"state_dir": str(state_dir), "stopped": out}
