"""The vault as a real process (node/vault.py): its socket refuses bad input and other uids and serves on, it reads
the node secret only from where it is told, and a holder behind it answers as the same holder in process does."""

from __future__ import annotations

import functools
import hashlib
import os
import pwd
import shutil
import socket
import stat
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import coincurve
import msgpack
import pytest

from mpc_ray.coordinator.sessions import finished, new_sid, route
from mpc_ray.crypto.secp256k1 import Point
from mpc_ray.errors import AlreadyConsumed, InvalidInput, MpcError, PartyUnavailable, Unauthorized
from mpc_ray.node import vault_codec as vc
from mpc_ray.node.holder import BeginRequest, ShareHolder
from mpc_ray.node.vault import PEER_RULE, start_vault, vault_socket_path
from mpc_ray.node.vault_proxy import VaultClient
from mpc_ray.protocols.ecdsa.presign import PresignaturePublic
from mpc_ray.protocols.ecdsa.sign import combine, rerandomize_for
from mpc_ray.protocols.wire import decode
from tests.support.authz import TestPrincipals
from tests.support.isolation import OTHER_CLIENT

DIGEST = hashlib.sha256(b"vault test").digest()


@pytest.fixture
def root():
    path = Path(tempfile.mkdtemp(prefix="mv-"))  # short: a socket path holds 107 bytes
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def vault(root):
    v = start_vault(1, root / "party-1", kdf="min")
    yield v
    v.stop()


def _connect(path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.connect(str(path))
    return sock


def _ask(sock, body: bytes, call_id: int, method: str = "ping"):
    vc.send_frame(sock, body)
    return vc.decode_response(vc.recv_frame(sock), call_id, method)


def _ping(sock, call_id: int = 1) -> int:
    ok, value = _ask(sock, vc.encode_request(call_id, "ping", []), call_id)
    assert ok
    return value


def _closed(sock) -> bool:
    return sock.recv(1) == b""


def test_state_dir_socket_and_secret_are_the_vaults_alone(vault, root):
    assert stat.S_IMODE((root / "party-1").stat().st_mode) == 0o700
    assert stat.S_IMODE((root / "party-1" / "node.secret").stat().st_mode) == 0o600
    st = vault.socket_path.lstat()
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert vault.socket_path == vault_socket_path(root / "party-1") and vault.socket_path.parent == root


def test_bad_input_gets_a_typed_answer_and_the_vault_serves_on(vault):
    with _connect(vault.socket_path) as a, _connect(vault.socket_path) as b:  # a second client, served alongside
        assert _ping(a) == 1 and _ping(b) == 1
        ok, err = _ask(a, vc.encode_request(2, "key", ["k1"]), 2)  # not an entry point: hands out a share
        assert not ok and isinstance(err, InvalidInput) and "unknown vault method" in str(err)
        ok, err = _ask(a, vc.encode_request(3, "presignature_count", [b"k1"]), 3)
        assert not ok and isinstance(err, InvalidInput) and "presignature_count.key_id" in str(err)
        ok, err = _ask(a, msgpack.packb([4, "ping", msgpack.packb([msgpack.ExtType(3, msgpack.packb(["Evil"]))])]), 4)
        assert not ok and isinstance(err, InvalidInput) and "unknown type" in str(err)
        ok, err = _ask(a, b"\xc1garbage", 0)
        assert not ok and isinstance(err, InvalidInput)
        ok, err = _ask(a, vc.encode_request(5, "sign_request", [None, b"p" * 32]), 5)
        assert not ok and isinstance(err, InvalidInput) and "sign_request.request" in str(err)
        ok, err = _ask(a, vc.encode_request(6, "presignature_count", ["no-such-key"]), 6)
        assert ok and err == 0  # refusals are per request: the same connection serves on
        assert _ping(a, 7) == 1 and _ping(b, 2) == 1

        a.sendall(struct.pack(">I", vc.MAX_FRAME + 1))  # over the limit: answered, then hung up (no resync)
        ok, err = vc.decode_response(vc.recv_frame(a), 8, "ping")
        assert not ok and isinstance(err, InvalidInput) and "over the limit" in str(err) and _closed(a)
        assert _ping(b, 3) == 1

    with _connect(vault.socket_path) as c:
        c.sendall(struct.pack(">I", 100) + b"\x93" * 10)  # a body cut short
        c.shutdown(socket.SHUT_WR)
        ok, err = vc.decode_response(vc.recv_frame(c), 9, "ping")
        assert not ok and isinstance(err, InvalidInput) and "truncated" in str(err) and _closed(c)
    client = VaultClient(str(vault.socket_path), 1)
    assert client.call("ping") == 1 and client.call("has_aux") is False
    with pytest.raises(InvalidInput):
        client.call("presignature_count", 5)
    client.close()


def test_a_client_stalled_mid_frame_holds_up_nobody_else(vault):
    """A frame's header and part of its body, then nothing (the connection kept open): that connection waits alone
    for the rest (BODY_TIMEOUT_S), while other clients are served at once."""
    with _connect(vault.socket_path) as stalled:
        stalled.sendall(struct.pack(">I", 100) + b"\x93" * 10)
        with _connect(vault.socket_path) as other:
            other.settimeout(5)
            assert _ping(other) == 1 and _ping(other, 2) == 1
        assert VaultClient(str(vault.socket_path), 1, timeout_s=5).call("ping") == 1


def test_a_client_reconnects_after_the_vault_restarts_and_never_resends(root):
    v = start_vault(1, root / "party-1", kdf="min")
    client = VaultClient(str(v.socket_path), 1, connect_wait_s=0.5)
    ident = client.call("public_identity")
    v.stop()
    with pytest.raises(PartyUnavailable):
        client.call("ping")
    v = start_vault(1, root / "party-1", kdf="min")
    try:
        assert client.call("public_identity") == ident  # the same store, a new connection
        with pytest.raises(InvalidInput, match="serves party 1"):
            VaultClient(str(v.socket_path), 2).call("ping")  # a path that leads to another party's vault
        with pytest.raises(MpcError, match="is serving"):  # a second vault on the same socket refuses to start
            start_vault(1, root / "party-1", kdf="min", timeout_s=30)
    finally:
        v.stop()


# -- another uid -----------------------------------------------------------------------------------------------


def _as_nobody(args: list[str]) -> str:
    out = subprocess.run(["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups", "/usr/bin/python3",
                          "-c", OTHER_CLIENT, *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def _other_uid_or_skip() -> int:
    if os.geteuid() != 0 or shutil.which("setpriv") is None or not Path("/usr/bin/python3").exists():
        pytest.skip("needs root, setpriv and /usr/bin/python3 to run a client as another uid (CI has them)")
    try:
        return pwd.getpwnam("nobody").pw_uid
    except KeyError:
        pytest.skip("no 'nobody' user to connect as")


def test_another_uid_is_refused_by_the_socket_mode_then_by_its_peer_uid(root):
    nobody = _other_uid_or_skip()
    os.chmod(root, 0o711)  # others may pass through to the socket, never list or read the state directory
    ping = vc.encode_request(1, "ping", []).hex()
    v = start_vault(1, root / "party-1", kdf="min")
    try:  # mode 0600: another uid cannot even connect
        assert _as_nobody([str(v.socket_path), ping]) == "EACCES"
    finally:
        v.stop()
    v = start_vault(1, root / "party-1", kdf="min", args=["--socket-group", "nogroup"])
    try:  # mode 0660 for the Ray user's group: it connects, and its uid is not allowed
        assert stat.S_IMODE(v.socket_path.stat().st_mode) == 0o660
        answer = bytes.fromhex(_as_nobody([str(v.socket_path), ping]))
        ok, err = vc.decode_response(answer[4:], 1, "ping")
        assert not ok and isinstance(err, Unauthorized) and err.rule == PEER_RULE and str(nobody) in str(err)
        assert VaultClient(str(v.socket_path), 1).call("ping") == 1  # and the vault serves its own user on
    finally:
        v.stop()
    v = start_vault(1, root / "party-1", kdf="min",
                    args=["--socket-group", "nogroup", "--allow-uid", str(os.geteuid()), "--allow-uid", str(nobody)])
    try:  # a uid the vault is told to allow is served
        answer = bytes.fromhex(_as_nobody([str(v.socket_path), ping]))
        assert vc.decode_response(answer[4:], 1, "ping") == (True, 1)
    finally:
        v.stop()


# -- the node secret ----------------------------------------------------------------------------------------------


def _run_vault(state_dir: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """A vault that must refuse to start (it would otherwise serve until the timeout)."""
    return subprocess.run([sys.executable, "-m", "mpc_ray.node.vault", "--party", "1", "--state-dir", str(state_dir),
                           "--kdf", "min", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_node_secret_from_a_command_or_the_environment_only(root):
    secret = os.urandom(32).hex()
    state = root / "party-1"
    v = start_vault(1, state, kdf="min", args=["--secret-command", f"printf {secret}"])
    try:
        ident = VaultClient(str(v.socket_path), 1).call("public_identity")
    finally:
        v.stop()
    assert not (state / "node.secret").exists()  # nothing of the secret was written beside the store
    os.environ["MPC_VAULT_TEST_SECRET"] = secret  # given at its start: the child takes it from this environment
    try:
        v = start_vault(1, state, kdf="min", args=["--secret-env", "MPC_VAULT_TEST_SECRET"])
        try:
            assert VaultClient(str(v.socket_path), 1).call("public_identity") == ident  # the same store opened
        finally:
            v.stop()
    finally:
        del os.environ["MPC_VAULT_TEST_SECRET"]
    wrong = _run_vault(state, "--secret-env", "OTHER", env={"OTHER": os.urandom(32).hex()})
    assert wrong.returncode == 2 and "StoreCorrupted" in wrong.stderr
    failing = _run_vault(state, "--secret-command", f"sh -c 'echo {secret}; exit 3'")
    assert failing.returncode == 2 and "exited with status 3" in failing.stderr and secret not in failing.stderr
    missing = _run_vault(state, "--secret-env", "MPC_VAULT_NOT_SET")
    assert missing.returncode == 2 and "not set" in missing.stderr


def test_a_secret_file_others_can_read_is_refused(root):
    path = root / "secret"
    path.write_bytes(os.urandom(32))
    os.chmod(path, 0o644)
    out = _run_vault(root / "party-1", "--secret-file", str(path))
    assert out.returncode == 2 and "mode 0600" in out.stderr
    os.chmod(path, 0o600)
    (root / "party-1").mkdir(mode=0o700)
    (root / "party-1" / "node.secret").write_bytes(os.urandom(32))
    os.chmod(root / "party-1" / "node.secret", 0o640)  # the holder's own file, too
    out = _run_vault(root / "party-1")
    assert out.returncode == 2 and "mode 0600" in out.stderr


# -- the same holder in process and behind a vault -----------------------------------------------------------------


class _Remote:
    """A holder's entry points on a VaultClient, called as the in-process holder's methods are."""

    def __init__(self, client: VaultClient) -> None:
        self.client, self.party = client, client.party

    def __getattr__(self, name: str):
        return functools.partial(self.client.call, name)


def _shape(value):
    """What must match between two holders' answers to the same call: types, sids, envelope routing, result keys."""
    if isinstance(value, list):
        return [_shape(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_shape(v) for v in value)
    if isinstance(value, dict):
        return {k: type(v).__name__ for k, v in value.items()}
    if hasattr(value, "envelopes"):  # StepResult
        return ("StepResult", value.sid, value.done, [(e.round, e.recipient != 0) for e in value.envelopes],
                _shape(value.result))
    return type(value).__name__


def test_in_process_and_vault_holders_answer_the_same(root):
    """Party 1 in this process, party 2 behind its vault, driven as the coordinator drives them: every answer of
    the vault has the shape of party 1's to the same call; the key signs; afterwards the vault's state, opened in
    process, answers exactly what the vault answered; and a refusal comes back as the same typed error."""
    principals = TestPrincipals()
    local = ShareHolder(1, str(root / "party-1"), kdf="min")
    vault = start_vault(2, root / "party-2", kdf="min")
    remote = _Remote(VaultClient(str(vault.socket_path), 2))
    holders = {1: local, 2: remote}
    try:
        ids = [local.public_identity(), remote.public_identity()]
        for h in holders.values():
            h.set_directory(ids, principals.coordinator.verify_key)
            h.bootstrap_principals(principals.creds.registry().to_bytes())

        def run(protocol, params, count=1):
            sids = [new_sid(protocol) for _ in range(count)]
            reqs = [BeginRequest(protocol, s, [1, 2], params) for s in sids]
            grant = principals.grant(reqs)
            res = {i: h.begin(reqs, grant) for i, h in holders.items()}
            while True:
                assert _shape(res[1]) == _shape(res[2])
                if (done := finished([1, 2], sids, res)) is not None:
                    return done
                inputs = route([1, 2], sids, res)
                res = {i: h.step(inputs[i]) for i, h in holders.items()}

        run("aux", {"level": "112"})
        out = run("keygen", principals.keygen_params("k1", 2, [1, 2]))
        public_key = Point.from_bytes(next(iter(out.values()))[1]["public_key"])
        principals.allow_operator(holders.values(), "k1")
        pubs = [decode(next(iter(r.values())), PresignaturePublic) for r in run("presign", {"key_id": "k1"}, 2).values()]
        assert local.presignature_count("k1") == remote.presignature_count("k1") == 2
        request = principals.raw("k1", [DIGEST])
        partials = {i: h.partial_sign(request, [(0, pubs[0].presignature_id)]) for i, h in holders.items()}
        assert _shape(partials[1]) == _shape(partials[2]) == ["int"]
        child = rerandomize_for(pubs[0], public_key, 0, DIGEST)
        sig = combine(pubs[0], public_key, DIGEST, {i: p[0] for i, p in partials.items()}, child)
        assert coincurve.PublicKey(public_key.to_bytes()).verify(sig.der(), DIGEST, hasher=None)

        refusals = {}
        for i, h in holders.items():  # the same presignature again: refused, by the same typed error
            with pytest.raises(MpcError) as info:
                h.partial_sign(principals.raw("k1", [DIGEST]), [(0, pubs[0].presignature_id)])
            refusals[i] = info.value
        assert type(refusals[1]) is type(refusals[2]) and isinstance(refusals[2], (AlreadyConsumed, Unauthorized))
        assert getattr(refusals[1], "rule", None) == getattr(refusals[2], "rule", None)

        public = ["public_identity", "has_aux", "key_views", "consumed_ids", ("presignature_count", "k1"),
                  ("key_epoch", "k1"), ("lifecycle_public", "k1")]
        seen = {}
        for call in public:
            name, *args = (call,) if isinstance(call, str) else call
            seen[name] = getattr(remote, name)(*args)
            assert _shape(seen[name]) == _shape(getattr(local, name)(*args)), name
    finally:
        vault.stop()
        local.ledger.close()
    reopened = ShareHolder(2, str(root / "party-2"), kdf="min")  # the vault's state, now in this process
    try:
        for call in public:
            name, *args = (call,) if isinstance(call, str) else call
            assert getattr(reopened, name)(*args) == seen[name], name
    finally:
        reopened.ledger.close()
