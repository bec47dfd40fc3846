"""The vault: one party's `ShareHolder` (or one of its presign workers) in its own OS process, behind a Unix socket.

Ray runs whatever code a driver submits on whatever node it names, so a holder inside a Ray actor shares its memory,
its environment and its files with any such code. The vault keeps the holder out of Ray: it owns the state directory
(mode 0700), reads the node secret itself (the holder's own file or variable, ``--secret-file``, ``--secret-env``
or ``--secret-command``), and serves the holder's entry points (node/actor.py `ENTRY_POINTS`) on a socket that only
allowed uids may use. The Ray actor in front of it (node/vault_proxy.py `VaultProxy`) forwards calls and holds
nothing secret; the vault keeps serving while Ray restarts that actor, or all of Ray.

The socket: mode 0600 (or 0660 with ``--socket-group``, the Ray user's group), and each connection's peer uid,
read with ``SO_PEERCRED``, must be in the allowed set (default: the vault's own uid). One thread serves each
connection; calls into the holder are serialised, as in a Ray actor with max_concurrency 1. A frame that is over
the limit or cut short is answered with InvalidInput and the connection closed (the stream cannot be resynchronised);
a request that does not decode, names no entry point or has arguments of the wrong types is answered with
InvalidInput; either way the vault serves on. The format is node/vault_codec.py: length-prefixed msgpack, never
pickle.

    python -m mpc_ray.node.vault --party 1 --state-dir /var/lib/mpc-ray/party-1 [--worker 0] [--kdf interactive]
        [--secret-file F | --secret-env NAME | --secret-command CMD] [--allow-uid UID ...]
        [--socket PATH] [--socket-group GROUP]

Same-user isolation (``local_cluster(isolation="process")``) only keeps the secret out of Ray's processes; any
process of the same user can still read the vault's memory. A deployment runs the vault as its own OS user
(``start_vault(user=...)``, ``local_cluster(isolation="user")``): then Ray's processes can neither read the state
directory nor the node secret, nor open the vault's ``/proc/<pid>/mem`` or ``environ``, nor signal it. Starting
it so needs root (`as_user`, `ensure_user`); a vault user in the Ray user's group gives its socket that group.
"""

from __future__ import annotations

import argparse
import gc
import grp
import logging
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..errors import InvalidInput, IsolationUnavailable, MpcError, PartyUnavailable, Unauthorized
from .holder import ShareHolder
from .store import MIN_NODE_SECRET_BYTES
from .vault_codec import MAX_FRAME, decode_request, encode_error, encode_ok, recv_frame, send_frame

__all__ = ["VaultProcess", "VaultServer", "as_user", "ensure_user", "read_node_secret", "serve", "start_vault",
           "vault_command", "vault_socket_path"]

log = logging.getLogger("mpc_ray.vault")

BODY_TIMEOUT_S = 30.0  # a frame's body must follow its header within this (a stalled writer holds one thread only)
MAX_SOCKET_PATH = 107  # sun_path holds 108 bytes with the terminating NUL
SECRET_COMMAND_TIMEOUT_S = 30.0
VAULT_PYTHON_ENV = "MPC_RAY_VAULT_PYTHON"  # an interpreter a vault user can run, where this one is out of its reach
_PEERCRED = struct.Struct("3i")  # pid, uid, gid
PEER_RULE = "auth.vault_peer"


def vault_socket_path(state_dir: str | Path, worker: int | None = None) -> Path:
    """Where the vault of `state_dir` (or of its presign `worker`) listens: beside the state directory, which stays
    the vault's alone (0700)."""
    state_dir = Path(state_dir)
    suffix = "vault.sock" if worker is None else f"worker-{worker}.vault.sock"
    return state_dir.parent / f"{state_dir.name}.{suffix}"


# -- another OS user ----------------------------------------------------------------------------------------------


def _account(user: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(user)
    except KeyError:
        raise InvalidInput(f"there is no OS user {user!r} (create it: useradd --system {user})") from None


def _need_root(what: str) -> None:
    if os.geteuid() != 0:
        raise IsolationUnavailable(f"{what} needs root; this process runs as uid {os.geteuid()}")


def as_user(user: str) -> list[str]:
    """The command prefix that runs a command as the OS user `user`, with its primary group and its supplementary
    groups (a vault user in the Ray user's group can give its socket that group); no capability survives the
    change of uid. Needs root (IsolationUnavailable otherwise) and an existing user (InvalidInput)."""
    _need_root(f"running a process as {user}")
    entry = _account(user)
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise IsolationUnavailable("setpriv (util-linux) is not installed: it starts a process as another user")
    return [setpriv, f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups", "--"]


def _groups_of(entry: pwd.struct_passwd) -> set[int]:
    return set(os.getgrouplist(entry.pw_name, entry.pw_gid))


def _gid(group: str | int) -> int:
    if isinstance(group, int) or group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise InvalidInput(f"there is no group {group!r}") from None


def _run_admin(cmd: list[str], done) -> None:
    """Run a user-administration command until `done()` holds: a concurrent one may hold the lock on /etc/passwd,
    or have made the change first."""
    if shutil.which(cmd[0]) is None:
        raise IsolationUnavailable(f"{cmd[0]} is not installed: it is needed to create or change OS users")
    for attempt in range(5):
        out = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
        if done():
            return
        time.sleep(0.2 * (attempt + 1))
    raise IsolationUnavailable(f"{' '.join(cmd)} failed with status {out.returncode}: {out.stderr.strip()[:200]}")


def ensure_user(user: str, *, groups: Sequence[str | int] = ()) -> pwd.struct_passwd:
    """The OS user `user`, created when missing as a system user (its own group, no home, no login shell), and
    made a member of each of `groups` it is not in yet (the vault user joins the Ray user's group, to give its
    socket that group). Changing anything needs root: IsolationUnavailable otherwise, saying why."""
    if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", user):  # what useradd takes, never read as an option
        raise InvalidInput(f"{user!r} is not a user name useradd accepts (lowercase, digits, _ and -)")
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        _need_root(f"creating the OS user {user}")
        _run_admin(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                    "--shell", "/usr/sbin/nologin", user], lambda: _exists(user))
        entry = _account(user)
    missing = [str(g) for g in groups if _gid(g) not in _groups_of(entry)]
    if missing:
        _need_root(f"adding the OS user {user} to the groups {', '.join(missing)}")
        names = [grp.getgrgid(_gid(g)).gr_name for g in missing]
        _run_admin(["usermod", "--append", "--groups", ",".join(names), user],
                   lambda: all(_gid(g) in _groups_of(entry) for g in missing))
    return entry


def _exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


def _user_may(entry: pwd.struct_passwd, path: Path, bits: int) -> bool:
    """Whether `entry`'s user has the `bits` (4 read, 2 write, 1 search) on `path` by its mode bits."""
    if entry.pw_uid == 0:
        return True
    st = path.stat()
    if st.st_uid == entry.pw_uid:
        have = st.st_mode >> 6
    elif st.st_gid in _groups_of(entry):
        have = st.st_mode >> 3
    else:
        have = st.st_mode
    return have & bits == bits


def _hand_over(state_dir: Path, entry: pwd.struct_passwd) -> None:
    """Make `state_dir` the vault user's before its vault starts. Its parent, where the vault makes its socket, is
    created for that user when missing (mode 0711: others reach the socket by its name, never list), and must
    already let that user create files when it exists (this never takes over a directory it did not make). The
    state directory is created (mode 0700), or handed over with everything in it when another user owns it (a
    state directory first served as the starting user)."""
    parent = state_dir.parent
    if not parent.exists():
        parent.mkdir(parents=True)
        os.chown(parent, entry.pw_uid, entry.pw_gid)
        os.chmod(parent, 0o711)
    for ancestor in reversed(parent.parents):
        if not _user_may(entry, ancestor, 1):
            raise InvalidInput(f"the vault user {entry.pw_name} cannot enter {ancestor}: keep its state elsewhere")
    if not _user_may(entry, parent, 3):
        raise InvalidInput(f"the vault user {entry.pw_name} cannot create its socket in {parent}: make that "
                           f"directory its own (chown {entry.pw_name}; mode 0711) or keep the state elsewhere")
    state_dir.mkdir(mode=0o700, exist_ok=True)
    if state_dir.is_symlink() or not state_dir.is_dir():
        raise InvalidInput(f"{state_dir} is not a directory")
    if state_dir.stat().st_uid != entry.pw_uid:
        for top, dirs, files in os.walk(state_dir):
            for name in dirs + files:
                os.lchown(os.path.join(top, name), entry.pw_uid, entry.pw_gid)
        os.chown(state_dir, entry.pw_uid, entry.pw_gid)
    os.chmod(state_dir, 0o700)


# -- the node secret ---------------------------------------------------------------------------------------------


def _private_file(path: Path) -> Path:
    """`path`, once it is a regular file of this user that nobody else may read or write."""
    st = path.stat()
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        raise InvalidInput(f"{path} must be a file of the vault's user with mode 0600 (no group or other access)")
    return path


def _from_hex(text: str, where: str) -> bytes:
    try:
        secret = bytes.fromhex(text.strip())
    except ValueError:
        raise InvalidInput(f"{where} is not the node secret in hex") from None
    if len(secret) < MIN_NODE_SECRET_BYTES:
        raise InvalidInput(f"{where}: a node secret is at least {MIN_NODE_SECRET_BYTES} bytes")
    return secret


def read_node_secret(*, file: str | None = None, env: str | None = None, command: str | None = None) -> bytes | None:
    """The node secret from one source: a file only this user can read (raw bytes, as the holder's ``node.secret``),
    an environment variable given at the vault's start (hex; removed from the environment once read, so no child
    inherits it), or a command's standard output (hex; a secret manager's client, run without a shell). None when no
    source is named: the holder then reads its own (``MPC_RAY_NODE_SECRET_<party>``, else ``node.secret`` in its
    state directory, created on first start)."""
    if sum(x is not None for x in (file, env, command)) > 1:
        raise InvalidInput("name one source of the node secret")
    if file is not None:
        secret = _private_file(Path(file)).read_bytes()
        if len(secret) < MIN_NODE_SECRET_BYTES:
            raise InvalidInput(f"a node secret is at least {MIN_NODE_SECRET_BYTES} bytes")
        return secret
    if env is not None:
        value = os.environ.pop(env, None)
        if value is None:
            raise InvalidInput(f"the environment variable {env} is not set")
        return _from_hex(value, env)
    if command is not None:
        try:
            out = subprocess.run(shlex.split(command), stdin=subprocess.DEVNULL, capture_output=True, check=False,
                                 timeout=SECRET_COMMAND_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise InvalidInput(f"the secret command did not run ({type(exc).__name__})") from None
        if out.returncode != 0:  # its output is never shown: it may hold the secret
            raise InvalidInput(f"the secret command exited with status {out.returncode}")
        return _from_hex(out.stdout.decode("ascii", "replace"), "the secret command's output")
    return None


class VaultHolder(ShareHolder):
    """`ShareHolder` opening its store with the secret the vault read at its start (used once, then dropped), and
    answering `node_labels` with nothing: a vault runs outside Ray, and its proxy answers for the node it is on."""

    def __init__(self, party: int, state_dir: str, *, node_secret: bytes | None = None, **kwargs: Any) -> None:
        self._given_secret = node_secret
        super().__init__(party, state_dir, **kwargs)

    def _node_secret(self) -> bytes:
        secret, self._given_secret = self._given_secret, None
        if secret is not None:
            return secret
        default = self.dir / "node.secret"
        if default.exists() and f"MPC_RAY_NODE_SECRET_{self.party}" not in os.environ:
            _private_file(default)
        return super()._node_secret()

    def node_labels(self) -> dict[str, str]:
        return {}


# -- the server --------------------------------------------------------------------------------------------------


def _own_state_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_uid != os.geteuid():
        raise InvalidInput(f"{path} belongs to another user: the vault's user owns its state directory")
    os.chmod(path, 0o700)


def _refuse_if_serving(path: Path) -> None:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        return
    finally:
        probe.close()
    raise InvalidInput(f"a vault is serving {path} already")


def _listen(path: Path, mode: int, group: int | None) -> socket.socket:
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise InvalidInput(f"socket path {path} is longer than {MAX_SOCKET_PATH} bytes: use a shorter state directory")
    if mode & ~0o660 or mode & 0o600 != 0o600:
        raise InvalidInput("the socket's mode is 0600 or 0660 (owner read-write, at most the group besides)")
    if os.path.lexists(path):
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise InvalidInput(f"{path} exists and is not a socket")
        _refuse_if_serving(path)
        path.unlink(missing_ok=True)  # left by a vault that died: nobody listens
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o777 & ~mode)  # the socket is created with its final mode: no moment with a wider one
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    if group is not None:
        os.chown(path, -1, group)
        os.chmod(path, mode)
    sock.listen(64)
    return sock


class VaultServer:
    """Serves `holder` on a listening Unix socket until `close()`."""

    def __init__(self, holder: ShareHolder, listener: socket.socket, path: Path, *,
                 allowed_uids: Sequence[int] | None = None, max_frame: int = MAX_FRAME) -> None:
        self.holder, self.path, self.max_frame = holder, path, max_frame
        self.allowed_uids = frozenset([os.geteuid()] if allowed_uids is None else allowed_uids)
        self._listener = listener
        self._lock = threading.Lock()  # one holder call at a time, as in its Ray actor (max_concurrency 1)
        self._closed = threading.Event()

    def serve_forever(self) -> None:
        log.info("vault of party %d (%s) serving %s", self.holder.party, self.holder.role, self.path)
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                if self._closed.is_set():
                    return
                raise
            threading.Thread(target=self._connection, args=(conn,), daemon=True, name="vault-connection").start()

    def wait_idle(self, timeout_s: float = 60.0) -> None:
        """Wait (up to `timeout_s`) for a holder call in progress to finish: a signature under way completes."""
        if self._lock.acquire(timeout=timeout_s):
            self._lock.release()

    def close(self) -> None:
        """Stop accepting (the socket file goes); `wait_idle` lets a call in progress finish."""
        if self._closed.is_set():
            return
        self._closed.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        self.path.unlink(missing_ok=True)

    def _connection(self, conn: socket.socket) -> None:
        with conn:
            try:
                pid, uid, _ = _PEERCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
                if uid not in self.allowed_uids:
                    log.warning("refused a connection from uid %d (pid %d)", uid, pid)
                    _hang_up(conn, encode_error(0, Unauthorized(PEER_RULE, f"uid {uid} may not call this vault")))
                    return
                while not self._closed.is_set():
                    try:
                        body = recv_frame(conn, self.max_frame, BODY_TIMEOUT_S)
                    except InvalidInput as exc:  # over the limit or cut short: answer, then hang up
                        _hang_up(conn, encode_error(0, exc))
                        return
                    if body is None:
                        return
                    answer = self._handle(body)
                    try:
                        send_frame(conn, answer, self.max_frame)
                    except InvalidInput as exc:
                        send_frame(conn, encode_error(0, InvalidInput(f"the answer is over the frame limit ({exc})")))
            except OSError:
                return  # the peer went away
            except BaseException as exc:  # noqa: BLE001 - this connection ends; the vault serves on
                log.error("a vault connection ended with %s", type(exc).__name__)

    def _handle(self, body: bytes) -> bytes:
        try:
            call_id, method, args = decode_request(body)
        except InvalidInput as exc:
            return encode_error(getattr(exc, "call_id", 0), exc)
        with self._lock:
            try:
                value = getattr(self.holder, method)(*args)
            except MpcError as exc:
                return encode_error(call_id, exc)
            except Exception as exc:  # noqa: BLE001 - named by type only: its message may quote a value
                log.warning("%s failed with %s", method, type(exc).__name__)
                return encode_error(call_id, MpcError(f"internal error in the vault ({type(exc).__name__})"))
        try:
            return encode_ok(call_id, value)
        except Exception as exc:  # noqa: BLE001 - an answer the format does not carry
            log.error("%s answered a value the wire format does not carry (%s)", method, type(exc).__name__)
            return encode_error(call_id, MpcError(f"internal error in the vault ({type(exc).__name__})"))


def _hang_up(conn: socket.socket, answer: bytes) -> None:
    """Send a last answer and close without a reset: what the peer sent and this vault did not read would make the
    close a reset, and the peer could lose the answer."""
    send_frame(conn, answer)
    conn.shutdown(socket.SHUT_WR)
    conn.settimeout(1.0)
    unread = 0
    while unread < MAX_FRAME:
        chunk = conn.recv(65536)
        if not chunk:
            return
        unread += len(chunk)


def serve(party: int, state_dir: str | Path, *, worker: int | None = None, socket_path: str | Path | None = None,
          node_secret: bytes | None = None, kdf: str = "interactive", allow_test_keys: bool = False,
          allowed_uids: Sequence[int] | None = None, socket_group: int | None = None) -> VaultServer:
    """Open the holder (or presign `worker`) of `state_dir` and listen; call `serve_forever()` on the result."""
    state_dir = Path(state_dir)
    _own_state_dir(state_dir)
    path = Path(socket_path) if socket_path is not None else vault_socket_path(state_dir, worker)
    holder = VaultHolder(party, str(state_dir), node_secret=node_secret, kdf=kdf, allow_test_keys=allow_test_keys,
                         role="holder" if worker is None else "worker", worker=worker)
    del node_secret
    listener = _listen(path, 0o600 if socket_group is None else 0o660, socket_group)
    gc.collect()
    gc.freeze()  # start-up state (modules, keys) out of the collector's full scans, as settle_gc_for_latency in Ray
    return VaultServer(holder, listener, path, allowed_uids=allowed_uids)


# -- the command -------------------------------------------------------------------------------------------------


def _group(value: str) -> int:
    return int(value) if value.isdigit() else grp.getgrnam(value).gr_gid


def _watch_parent(server: VaultServer) -> None:
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(1.0)
    server.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mpc_ray.node.vault", description=__doc__.split("\n\n")[0])
    parser.add_argument("--party", type=int, required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--worker", type=int, help="serve this presign worker of the party (shares the store)")
    parser.add_argument("--socket", help="socket path (default: beside the state directory)")
    parser.add_argument("--kdf", choices=("interactive", "min"), default="interactive")
    parser.add_argument("--allow-test-keys", action="store_true")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--secret-file", help="the node secret, raw bytes, in a file of mode 0600")
    source.add_argument("--secret-env", help="an environment variable holding the node secret in hex")
    source.add_argument("--secret-command", help="a command that prints the node secret in hex")
    parser.add_argument("--allow-uid", type=int, action="append",
                        help="a uid that may connect (repeat; default: the vault's own)")
    parser.add_argument("--socket-group", type=_group, help="group of the socket, mode 0660 (the Ray user's)")
    parser.add_argument("--exit-with-parent", action="store_true", help="stop when the starting process ends")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s vault %(levelname)s %(message)s")
    try:
        secret = read_node_secret(file=args.secret_file, env=args.secret_env, command=args.secret_command)
        server = serve(args.party, args.state_dir, worker=args.worker, socket_path=args.socket, node_secret=secret,
                       kdf=args.kdf, allow_test_keys=args.allow_test_keys, allowed_uids=args.allow_uid,
                       socket_group=args.socket_group)
    except MpcError as exc:
        log.error("%s: %s", type(exc).__name__, exc)
        return 2
    del secret
    os.environ.pop(f"MPC_RAY_NODE_SECRET_{args.party}", None)  # read by the holder; no child inherits it
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: threading.Thread(target=server.close, daemon=True).start())
    if args.exit_with_parent:
        threading.Thread(target=_watch_parent, args=(server,), daemon=True, name="vault-parent").start()
    server.serve_forever()
    server.wait_idle()
    return 0


# -- starting one: detached (mpc-ray node start) or from a driver (local_cluster) --------------------------------


def vault_command(party: int, state_dir: str | Path, *, worker: int | None = None, socket: str | Path | None = None,
                  kdf: str = "interactive", prefix: Sequence[str] = (), socket_group: str | int | None = None,
                  allow_uids: Sequence[int] = (), allow_test_keys: bool = False, exit_with_parent: bool = False,
                  python: str | None = None, args: Sequence[str] = ()) -> list[str]:
    """The command line of the vault of `state_dir` (or of its presign `worker`), after `prefix` (`as_user`'s, to
    run it as another user). The one builder for both ways a vault starts: a child of a driver (`start_vault`, with
    `exit_with_parent`) and detached in its own session (`mpc-ray node start`, mpc_ray/partynode.py)."""
    cmd = [*prefix, python or sys.executable, "-m", "mpc_ray.node.vault",
           "--party", str(party), "--state-dir", str(state_dir), "--kdf", kdf]
    if socket is not None:
        cmd += ["--socket", str(socket)]
    if worker is not None:
        cmd += ["--worker", str(worker)]
    if allow_test_keys:
        cmd.append("--allow-test-keys")
    if exit_with_parent:
        cmd.append("--exit-with-parent")
    if socket_group is not None:
        cmd += ["--socket-group", str(_gid(socket_group))]
    for uid in allow_uids:
        cmd += ["--allow-uid", str(uid)]
    return [*cmd, *args]


@dataclass
class VaultProcess:
    """A vault started by `start_vault` (as this process's user, or as the vault user it was given)."""

    party: int
    worker: int | None
    socket_path: Path
    process: subprocess.Popen

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_vault(party: int, state_dir: str | Path, *, worker: int | None = None, kdf: str = "interactive",
                allow_test_keys: bool = False, args: Sequence[str] = (), timeout_s: float = 120.0,
                user: str | None = None, socket_group: str | int | None = None,
                allow_uids: Sequence[int] | None = None, python: str | None = None) -> VaultProcess:
    """Start the vault of `state_dir` (or of its presign `worker`) as a subprocess of this one, stopping when this
    process ends, and wait until it answers. Its log is ``<socket>.log`` (mode 0600).

    `user`: run it as that OS user (needs root; `ensure_user` makes one), which then owns the state directory
    (handed over, mode 0700) and the node secret in it. `socket_group`: the socket's group, mode 0660 (the Ray
    user's; the vault user must be a member). `allow_uids`: the uids its socket serves (`SO_PEERCRED`; the Ray
    user's), besides this process's own, which must see it answer; default: only the vault's own, or with `user`
    only this process's. `python`: the interpreter (default ``$MPC_RAY_VAULT_PYTHON``, else this one), which the
    vault user must be able to run."""
    from .vault_proxy import VaultClient

    state_dir = Path(state_dir)
    path = vault_socket_path(state_dir, worker)
    _refuse_if_serving(path)  # its answers would pass for the new one's
    python = python or os.environ.get(VAULT_PYTHON_ENV) or sys.executable
    env, cwd, prefix = None, None, []
    if user is not None:
        prefix, entry = as_user(user), _account(user)
        if socket_group is not None and _gid(socket_group) not in _groups_of(entry):
            raise InvalidInput(f"the vault user {user} is not in the group {socket_group}, so it cannot give its "
                               f"socket that group (usermod --append --groups {socket_group} {user})")
        _hand_over(state_dir, entry)
        env = {**os.environ, "HOME": entry.pw_dir, "USER": user, "LOGNAME": user}
        cwd = "/"  # not a directory of the starting user's, which the vault user may not enter
    else:
        state_dir.parent.mkdir(parents=True, exist_ok=True)
    uids = sorted({os.geteuid(), *(allow_uids or ())}) if allow_uids is not None or user is not None else ()
    cmd = vault_command(party, state_dir, worker=worker, socket=path, kdf=kdf, prefix=prefix,
                        socket_group=socket_group, allow_uids=uids, allow_test_keys=allow_test_keys,
                        exit_with_parent=True, python=python, args=args)
    out = os.open(f"{path}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env, cwd=cwd)
    finally:
        os.close(out)
    vault = VaultProcess(party, worker, path, proc)
    client = VaultClient(str(path), party, timeout_s=timeout_s, connect_wait_s=0.2)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            if not vault.alive():
                if user is not None and proc.returncode in (126, 127):  # setpriv could not run the interpreter
                    raise IsolationUnavailable(
                        f"the vault user {user} cannot run {python} (it lies where that user cannot enter?): name "
                        f"an interpreter it can run with python= or ${VAULT_PYTHON_ENV} (see {path}.log)")
                raise MpcError(f"the vault of party {party} exited with status {proc.returncode} (see {path}.log)")
            try:
                client.call("ping")
                return vault
            except PartyUnavailable:  # not listening yet; any other answer is final
                if time.monotonic() > deadline:
                    vault.stop()
                    raise
                time.sleep(0.05)
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
