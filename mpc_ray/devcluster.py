"""A local multi-node committee that outlives the command that started it: what `mpc-ray up` / `down` manage.

`start` launches a supervisor process (`python -m mpc_ray.devcluster serve`) in its own session. The supervisor
holds `mpc_ray.local_cluster` open: a Ray head node and one Ray node per party (labels ``mpc-party=<i>``,
``region=region-<i>``), the share holders pinned there, presign workers and the coordinator, with every party's
encrypted store under ``<home>/parties/party-<i>``. It writes ``<home>/cluster.json`` (address, namespace, auth
mode, phase) so that other commands can find the cluster, and on SIGTERM shuts down exactly the Ray processes it
started. `stop` sends that SIGTERM and waits; it never touches another Ray cluster on the machine.

Auth: by default the cluster runs with ``RAY_AUTH_MODE=token`` and a fresh token in ``<home>/auth_token`` (mode
0600, ``RAY_AUTH_TOKEN_PATH``); every command that connects sets the same variables from cluster.json.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from .errors import InvalidInput, MpcError
from .errors import ClusterNotRunning  # noqa: F401  (old import path)

STATE_FILE = "cluster.json"
CREDENTIALS_FILE = "credentials.json"  # the committee's dev admin and operator keys (client/credentials.py)
MARKER_ENV = "MPC_RAY_DEVCLUSTER"
PHASES = ("launching", "starting", "aux-info", "ready")  # then "stopping"; "failed" on an error
NAMESPACE = "mpc-ray"


def check_committee(parties: int, threshold: int, *, allow_single: bool = False) -> None:
    """A committee the CLI may start or a key it may make: 2 <= threshold <= parties, or 1-of-n with
    `allow_single` (a test setup: one compromised node is then enough to sign)."""
    low = 1 if allow_single else 2
    if parties < low:
        raise InvalidInput(f"parties must be at least {low}"
                           + ("" if allow_single else " (one node alone would hold a usable key; --allow-single "
                                                      "permits it, for tests)"))
    if not low <= threshold <= parties:
        raise InvalidInput(f"threshold must be between {low} and {parties}"
                           + (" (with threshold 1 any one node signs alone: each share is then the whole key; "
                              "--allow-single permits it, for tests)" if threshold == 1 else ""))


def default_home() -> Path:
    return Path(os.environ.get("MPC_RAY_HOME") or Path.home() / ".mpc-ray").expanduser()


def read_state(home: Path) -> dict[str, Any] | None:
    try:
        return json.loads((home / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None


def _write_state(home: Path, state: dict[str, Any]) -> None:
    tmp = home / f".{STATE_FILE}.tmp"
    tmp.write_text(json.dumps(state, indent=2))
    os.replace(tmp, home / STATE_FILE)  # readers never see a half-written file


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (our own exited child not yet reaped) is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def running_state(home: Path) -> dict[str, Any]:
    """cluster.json of a live, ready cluster; ClusterNotRunning otherwise."""
    state = read_state(home)
    if state is None or not pid_alive(state.get("pid")):
        raise ClusterNotRunning(f"no cluster is running for {home} (start one with `mpc-ray up`)")
    if state.get("phase") != "ready":
        raise ClusterNotRunning(f"the cluster in {home} is {state.get('phase')!r}, not ready")
    return state


def apply_auth_env(state: dict[str, Any]) -> None:
    """Make this process speak the cluster's auth mode (before Ray connects)."""
    os.environ["RAY_AUTH_MODE"] = state.get("auth", "disabled")
    if state.get("auth") == "token":
        os.environ["RAY_AUTH_TOKEN_PATH"] = state["token_path"]
    if "ray" in sys.modules:  # Ray read its config when it was imported (a notebook imports it first): reload it
        try:
            from ray._raylet import AuthenticationTokenLoader, Config

            Config.initialize("")
            AuthenticationTokenLoader.instance().reset_cache()
        except (ImportError, AttributeError):  # another Ray version: the variables above are all it needs
            pass


def connect(home: Path):
    """An `MpcClient` on the cluster of `home`."""
    state = running_state(home)
    apply_auth_env(state)
    import ray

    from .client.client import connect as client_connect

    if not ray.is_initialized():
        ray.init(address=state["address"], namespace=state["namespace"], log_to_driver=False,
                 logging_level="ERROR")
    from .client.credentials import Credentials

    creds_file = home / CREDENTIALS_FILE
    creds = Credentials.from_file(creds_file) if creds_file.exists() else None  # else from the environment
    return client_connect(state["address"], namespace=state["namespace"], credentials=creds)


def start(home: Path, *, parties: int = 3, threshold: int = 2, security: str = "128", pool_depth: int = 32,
          workers_per_node: int = 1, kdf: str = "interactive", auth: str = "token", tracing: str | None = None,
          timeout: float = 900.0, on_phase: Callable[[str], None] | None = None,
          allow_single: bool = False) -> dict[str, Any]:
    """Launch the supervisor and wait until the committee is ready (or failed); returns cluster.json.
    Threshold 1 only with `allow_single` (see `check_committee`)."""
    check_committee(parties, threshold, allow_single=allow_single)
    if auth not in ("token", "disabled"):
        raise InvalidInput("auth is 'token' or 'disabled'")
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    old = read_state(home)
    if old is not None and pid_alive(old.get("pid")):
        raise InvalidInput(f"a cluster is already running for {home} (pid {old['pid']}); `mpc-ray down` first")
    env = dict(os.environ)
    env[MARKER_ENV] = str(home.resolve())  # every process of this cluster inherits it: `stop` finds them by it
    env["RAY_AUTH_MODE"] = auth
    token_path = home / "auth_token"
    if auth == "token":
        if not token_path.exists():
            fd = os.open(token_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
        env["RAY_AUTH_TOKEN_PATH"] = str(token_path)
    if tracing:
        env["MPC_RAY_TRACING"] = tracing  # the coordinator actor configures its exporter from this
    log = home / "supervisor.log"
    state = {"phase": "launching", "pid": None, "parties": parties, "threshold": threshold, "security": security,
             "pool_depth": pool_depth, "auth": auth, "token_path": str(token_path) if auth == "token" else None,
             "home": str(home), "log": str(log), "started_at": time.time()}
    _write_state(home, state)
    cmd = [sys.executable, "-m", "mpc_ray.devcluster", "serve", "--home", str(home), "--parties", str(parties),
           "--threshold", str(threshold), "--security", security, "--pool-depth", str(pool_depth),
           "--workers-per-node", str(workers_per_node), "--kdf", kdf]
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, close_fds=True)
    state["pid"] = proc.pid
    _write_state(home, state)  # the supervisor rewrites it from here on; this makes the pid known at once
    deadline = time.monotonic() + timeout
    seen = "launching"
    while True:
        cur = read_state(home) or state
        if cur.get("phase") != seen:
            seen = cur.get("phase", seen)
            if on_phase:
                on_phase(seen)
        if seen == "ready":
            return cur
        if seen == "failed" or proc.poll() is not None:
            detail = cur.get("error") or f"supervisor exited with {proc.poll()}"
            raise MpcError(f"the cluster did not start: {detail} (log: {log})")
        if time.monotonic() > deadline:
            stop(home)
            raise MpcError(f"the cluster was not ready after {timeout:.0f} s (log: {log})")
        time.sleep(0.2)


def owned_pids(home: Path) -> list[int]:
    """Processes started for this cluster: they carry MPC_RAY_DEVCLUSTER=<home> in their environment."""
    marker = f"{MARKER_ENV}={home.resolve()}".encode()
    found = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if marker in f.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:  # gone, or not ours to read
            continue
    return found


def stop(home: Path, timeout: float = 60.0) -> dict[str, Any]:
    """Stop the cluster `start` made for `home`: SIGTERM to its supervisor, which shuts down the Ray processes it
    started; whatever is left after `timeout` (or after a supervisor that died) and carries this cluster's marker is
    killed. Nothing else is touched. Idempotent."""
    state = read_state(home)
    if state is None and not owned_pids(home):
        return {"stopped": False, "reason": "no cluster.json"}
    pid = (state or {}).get("pid")
    was_alive = pid_alive(pid)
    if was_alive:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
    leftovers = [p for p in owned_pids(home) if pid_alive(p)]
    if leftovers:
        time.sleep(1.0)  # Ray's own processes may still be exiting after the supervisor
        for p in owned_pids(home):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
    (home / STATE_FILE).unlink(missing_ok=True)
    return {"stopped": was_alive, "pid": pid, "killed_leftovers": len(leftovers)}


# the supervisor ----------------------------------------------------------------------------------------------
def serve(args: argparse.Namespace) -> int:
    home = Path(args.home)
    state = read_state(home) or {}
    state.update(pid=os.getpid(), phase="starting")
    _write_state(home, state)
    lock = threading.Lock()
    stop_event = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop_event.set())

    def set_phase(phase: str, **extra: Any) -> None:
        with lock:
            if state.get("phase") in ("ready", "failed", "stopping") and phase == "aux-info":
                return
            state.update(phase=phase, **extra)
            _write_state(home, state)

    def watch() -> None:
        """Report when the Ray nodes are up and the coordinator runs aux-info (the long step)."""
        import ray

        from .deploy import COORDINATOR_NAME

        while not stop_event.is_set() and state.get("phase") == "starting":
            if ray.is_initialized():
                try:
                    ray.get_actor(COORDINATOR_NAME, namespace=NAMESPACE)
                    set_phase("aux-info")
                    return
                except ValueError:
                    pass
            time.sleep(0.3)

    try:
        import ray

        from .client.credentials import Credentials
        from .client.local import local_cluster

        threading.Thread(target=watch, daemon=True).start()
        creds_file = home / CREDENTIALS_FILE  # a kept committee's admin and operator (an earlier `up`)
        with local_cluster(parties=args.parties, threshold=args.threshold, security=args.security,
                           state_dir=str(home / "parties"), pool_depth=args.pool_depth, kdf=args.kdf,
                           workers_per_node=args.workers_per_node, namespace=NAMESPACE,
                           credentials=Credentials.from_file(creds_file) if creds_file.exists() else None) as mpc:
            mpc.credentials.save(home / CREDENTIALS_FILE)  # the dev admin and operator, mode 0600
            set_phase("ready", address=mpc._cluster.address, namespace=NAMESPACE, ready_at=time.time(),
                      nodes=len(ray.nodes()))
            print(f"mpc-ray cluster ready at {state['address']}", flush=True)
            while not stop_event.wait(1.0):
                pass
            set_phase("stopping")
    except BaseException as exc:  # noqa: BLE001 - reported to `up` through cluster.json, then re-raised
        set_phase("failed", error=f"{type(exc).__name__}: {exc}"[:500])
        raise
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mpc_ray.devcluster")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="(internal) the supervisor `mpc-ray up` starts")
    s.add_argument("--home", required=True)
    s.add_argument("--parties", type=int, default=3)
    s.add_argument("--threshold", type=int, default=2)
    s.add_argument("--security", default="128")
    s.add_argument("--pool-depth", type=int, default=32)
    s.add_argument("--workers-per-node", type=int, default=1)
    s.add_argument("--kdf", default="interactive")
    args = ap.parse_args(argv)
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
