"""The share holder: one per party, a long-lived Ray actor pinned to its party's node.

It owns everything secret of its party — node identity, aux info, key shares, presignature shares — in an
encrypted store on its node, and runs protocol rounds for the coordinator, which only ever sees signed envelopes
(direct ones encrypted to their recipient) and public results. A presignature share is consumed durably in the
ledger before its partial signature leaves this process.

`ShareHolder` is a plain class, so it can be tested without Ray; `mpc_ray.coordinator` wraps it with `ray.remote`.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nacl.pwhash import argon2id

from ..crypto.params import level as as_level
from ..errors import InvalidInput
from ..errors import HolderNotReady  # noqa: F401  (old import path)
from ..protocols.base import RoundParty
from ..protocols.ecdsa.aux_info import AuxInfo, AuxInfoParty
from ..protocols.ecdsa.keygen import KeygenParty, KeyShare
from ..protocols.ecdsa.presign import MessageAttestor, PresignParty
from ..protocols.wire import encode
from .actor_runtime import settle_gc_for_latency
from .envelope import SealedEnvelope, SessionKeys, open_envelope, seal
from .identity import NodeIdentity, NodeIdentityPublic
from .principals import RequestKind
from .records import (
    aux_from_bytes,
    aux_to_bytes,
    key_from_bytes,
    key_to_bytes,
    presignature_to_bytes,
)
from .store import ConsumedLedger, EncryptedStore, SecretVault

# Argon2id cost for the store key: "interactive" in production, "min" for fast tests
_KDF_LIMITS = {
    "interactive": {},
    "min": {"opslimit": argon2id.OPSLIMIT_MIN, "memlimit": argon2id.MEMLIMIT_MIN},
}
_KEY_ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def check_key_id(key_id: str) -> str:
    if not isinstance(key_id, str) or not 1 <= len(key_id) <= 64 or not set(key_id) <= _KEY_ID_CHARS:
        raise InvalidInput("key_id must be 1-64 characters of [A-Za-z0-9_-]")
    return key_id


class SpentFileDeleter:
    """Unlinks the files of consumed one-time secrets once signing has been quiet for a moment.

    The ledger already makes them unusable; deleting them during a burst of signatures would only take CPU from
    the signing path (an unlink costs more than a whole partial signature here)."""

    QUIET_S = 0.5
    MAX_PENDING = 20_000

    def __init__(self, vault: SecretVault) -> None:
        self._vault = vault
        self._pending: dict[str, list[bytes]] = {}
        self._count = 0
        self._last = 0.0
        self._cv = threading.Condition()
        threading.Thread(target=self._run, daemon=True, name="spent-file-deleter").start()

    def submit(self, fn, kind: str, ids: list[bytes]) -> None:
        """Same shape as Executor.submit(vault.delete_consumed, kind, ids); `fn` is always that method."""
        with self._cv:
            idle = not self._pending
            self._pending.setdefault(kind, []).extend(ids)
            self._count += len(ids)
            self._last = time.monotonic()
            if idle or self._count >= self.MAX_PENDING:  # otherwise the thread is in a timed wait already: waking it
                self._cv.notify()                      # on every signature would take the GIL from the signing path

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._pending:
                    self._cv.wait()
                quiet = time.monotonic() - self._last
                if quiet < self.QUIET_S and self._count < self.MAX_PENDING:
                    self._cv.wait(self.QUIET_S - quiet)
                    continue
                batch, self._pending, self._count = self._pending, {}, 0
            for kind, ids in batch.items():
                try:
                    self._vault.delete_consumed(kind, ids)
                except Exception:  # noqa: BLE001 - a leftover consumed file is harmless; purge_consumed retries
                    pass


@dataclass
class BeginRequest:
    """Start one protocol session on this holder. `params` holds only public values."""

    protocol: str  # "aux" | "keygen" | "presign" | "identify" | ...
    sid: bytes
    parties: list[int]
    params: dict[str, Any] = field(default_factory=dict)


MAX_SID_BYTES = 128
MAX_OPEN_SESSIONS = 1024
MAX_SESSION_PARTIES = 256


def check_begin_request(req: Any) -> BeginRequest:
    """Shape checks on a `BeginRequest` from the coordinator. It arrives unpickled, so its dataclass constructor never
    ran: without these, a malformed one would fail later with an untyped error (or hash a list). InvalidInput."""
    if not isinstance(req, BeginRequest):
        raise InvalidInput("expected a BeginRequest")
    check_sid(req.sid)
    if not isinstance(req.protocol, str) or not 0 < len(req.protocol) <= 32:
        raise InvalidInput("protocol must be a short string")
    parties = req.parties
    if (not isinstance(parties, (list, tuple)) or not 1 <= len(parties) <= MAX_SESSION_PARTIES
            or not all(type(p) is int and p >= 1 for p in parties) or len(set(parties)) != len(parties)):
        raise InvalidInput("parties must be a list of distinct party numbers (integers >= 1)")
    if not isinstance(req.params, dict) or not all(isinstance(k, str) for k in req.params):
        raise InvalidInput("params must be a dict with string keys")
    return req


def check_sid(sid: Any) -> bytes:
    if not isinstance(sid, bytes) or not 0 < len(sid) <= MAX_SID_BYTES:
        raise InvalidInput(f"a session id is 1 to {MAX_SID_BYTES} bytes")
    return sid


@dataclass
class StepResult:
    sid: bytes
    envelopes: list[SealedEnvelope]
    done: bool = False
    result: Any = None  # public output when done


@dataclass
class _Session:
    protocol: str
    machine: RoundParty
    params: dict[str, Any]
    keys: SessionKeys | None = None  # ephemeral keys of a FORWARD_SECURE session; erased by _drop


# Sessions whose direct messages carry shares or sub-shares: sealed under per-session ephemeral keys, so that a
# later break-in cannot open their recorded transcript and undo a refresh (node/envelope.py, "Forward secrecy").
# Each has a broadcast-only round 1, which announces the keys.
FORWARD_SECURE = frozenset({"keygen", "frost-dkg", "refresh", "reshare", "reshare-aux"})
COORDINATOR_ENTRY = "coordinator"  # store entry: the coordinator's verify key (beside the directory; backed up)


class ShareHolder:
    """One party's share holder. Its state directory stands for the party's own node disk."""

    def __init__(
        self, party: int, state_dir: str, *, allow_test_keys: bool = False, kdf: str = "interactive", role: str = "holder"
    ) -> None:
        if role not in ("holder", "worker"):
            raise InvalidInput("role must be 'holder' or 'worker'")
        self.party, self.role = party, role
        self.dir = Path(state_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.store = EncryptedStore(self.dir / "store", self._node_secret(), **_KDF_LIMITS[kdf])
        # Only the holder owns the consumption ledger (one writer); presign workers on the same node share the
        # encrypted store and add fresh presignatures to it, which the holder alone can consume.
        if role == "holder":
            self.ledger = ConsumedLedger(self.dir / "consumed.ledger")
            self.vault = SecretVault(self.store, self.ledger)
            self._deleter = SpentFileDeleter(self.vault)
        raw = self.store.get("identity")
        if raw is None and role == "worker":
            raise HolderNotReady("the holder of this node has not created its identity yet")
        if raw is None:
            self.identity = NodeIdentity.generate(party)
            self.store.put("identity", self.identity.to_secret_bytes())
        else:
            self.identity = NodeIdentity.from_secret_bytes(party, raw)
        self.directory: dict[int, NodeIdentityPublic] = {}
        self.coordinator_key: bytes | None = None  # the coordinator's verify key: its grants start sessions
        self._load_directory()
        self.allow_test_keys = allow_test_keys
        self.sessions: dict[bytes, _Session] = {}
        self._aux: AuxInfo | None = None
        self._keys: dict[str, KeyShare] = {}
        settle_gc_for_latency()  # in a Ray actor only: start-up state out of the collector's scans

    def _node_secret(self) -> bytes:
        """The node's own secret (a file beside the store stands in for the node's secret manager)."""
        env = os.environ.get(f"MPC_RAY_NODE_SECRET_{self.party}")
        if env:
            return bytes.fromhex(env)
        path = self.dir / "node.secret"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(32))
                f.flush()
                os.fsync(f.fileno())
        return path.read_bytes()

    # identity and committee ---------------------------------------------------------------------------
    def public_identity(self) -> NodeIdentityPublic:
        return self.identity.public()

    def set_directory(self, entries: list[NodeIdentityPublic], coordinator: bytes | None = None) -> None:
        """Trust on first use: the committee directory is fixed once set; a different one is refused. `coordinator`:
        the coordinator's verify key, announced with it (its grants start presigning, aux-info and identification
        sessions and FROST nonce commitments: node/session_gate.py); also taken on first use, and replaced only by
        an admin-quorum ``set_coordinator`` request."""
        from ..requests.grants import check_verify_key

        new = {p.party: p for p in entries}
        if self.party not in new or new[self.party] != self.identity.public():
            raise InvalidInput("directory does not contain this holder's identity")
        if self.directory and self.directory != new:
            raise InvalidInput("a different committee directory is already set")
        if coordinator is not None:
            coordinator = check_verify_key(coordinator)
            if self.role != "holder":
                raise InvalidInput("the holder of this node takes the coordinator key")
            if self.coordinator_key not in (None, coordinator):
                raise InvalidInput("a different coordinator key is set: replacing it takes an admin-quorum "
                                   "set_coordinator request")
        if not self.directory:
            self.store.put("directory", _encode_directory(list(new.values())))
            self.directory = new
        if coordinator is not None and self.coordinator_key is None:
            self.store.put(COORDINATOR_ENTRY, coordinator)
            self.coordinator_key = coordinator

    def set_coordinator(self, request: Any, verify_key: bytes) -> None:
        """Replace the coordinator's verify key, as an admin-quorum ``set_coordinator`` request naming it approves
        (audited); grants of the old key are refused from then on."""
        from ..requests.grants import check_verify_key

        verify_key = check_verify_key(verify_key)
        self._authorized().approve(request, RequestKind.SET_COORDINATOR, {"verify_key": verify_key.hex()})
        self.store.put(COORDINATOR_ENTRY, verify_key)
        self.coordinator_key = verify_key

    def reload_coordinator_key(self) -> bool:
        """Read the coordinator key again from the store (a worker: its holder may have replaced it); True if it
        changed."""
        before = self.coordinator_key
        self.coordinator_key = self.store.get(COORDINATOR_ENTRY)
        return self.coordinator_key != before

    def _load_directory(self) -> None:
        raw_dir = self.store.get("directory")
        if raw_dir is not None:
            self.directory = {p.party: p for p in _decode_directory(raw_dir)}
        self.coordinator_key = self.store.get(COORDINATOR_ENTRY)

    def ping(self) -> int:
        return self.party

    def node_labels(self) -> dict[str, str]:
        """Labels of the Ray node this holder runs on (empty outside Ray): shows where it is pinned."""
        try:
            import ray

            node_id = ray.get_runtime_context().get_node_id()
            return next(dict(n.get("Labels", {})) for n in ray.nodes() if n["NodeID"] == node_id)
        except Exception:  # noqa: BLE001 - not inside Ray
            return {}

    # protocol sessions --------------------------------------------------------------------------------
    def begin(self, requests: list[BeginRequest], grant: Any = None) -> list[StepResult]:
        """Start sessions. Presigning, aux-info and identification need `grant`, the coordinator's signed
        `SessionGrant` covering each of them, and are rate-limited per key (node/session_gate.py); a refused grant
        starts nothing and consumes nothing."""
        if not isinstance(requests, (list, tuple)) or len(requests) > MAX_OPEN_SESSIONS:
            raise InvalidInput(f"begin takes a list of at most {MAX_OPEN_SESSIONS} requests")
        self._gate().admit_begin([check_begin_request(r) for r in requests], grant)
        return [self._begin_one(r) for r in requests]

    def _gate(self):
        if getattr(self, "_session_gate", None) is None:
            from .session_gate import SessionGate

            self._session_gate = SessionGate(self)
        return self._session_gate

    def step(self, batches: list[tuple[bytes, list[SealedEnvelope]]]) -> list[StepResult]:
        return [self._step_one(sid, envs) for sid, envs in batches]

    def _begin_one(self, req: BeginRequest) -> StepResult:
        check_begin_request(req)
        if self.role == "worker" and not set(req.parties) <= set(self.directory):
            self._load_directory()  # the holder may have set it, or added members, after this worker started
        if not self.directory:
            raise HolderNotReady("committee directory not set")
        if self.role == "worker" and req.protocol not in ("presign", "identify"):
            raise InvalidInput("presign workers run presigning (and identify their failed runs) only")
        if req.sid in self.sessions:
            raise InvalidInput("session id already in use")
        if len(self.sessions) >= MAX_OPEN_SESSIONS:  # whoever can call the actor cannot exhaust this node's memory
            raise InvalidInput(f"{MAX_OPEN_SESSIONS} sessions are open on this holder: finish or drop some first")
        if not set(req.parties) <= set(self.directory) or self.party not in req.parties:
            raise InvalidInput("session parties must be committee members including this holder")
        machine = self._machine(req)
        keys = SessionKeys() if req.protocol in FORWARD_SECURE else None
        self.sessions[req.sid] = _Session(req.protocol, machine, dict(req.params), keys)
        return StepResult(req.sid, self._seal(req.protocol, machine.start(), keys))

    def _machine(self, req: BeginRequest) -> RoundParty:
        if req.protocol == "aux":
            if self.has_aux():  # set up once per committee; again only for members an admin quorum added
                self._authorized().check_approved(req.params.get("approval"), RequestKind.EXTEND_DIRECTORY,
                                                  lambda params: {m[0] for m in params["members"]} <= set(req.parties))
            return AuxInfoParty(req.sid, self.party, req.parties, as_level(req.params.get("level", "128")),
                                allow_test_keys=self.allow_test_keys)
        if req.protocol == "keygen":
            key_id, threshold = check_key_id(req.params.get("key_id")), req.params.get("threshold")
            if type(threshold) is not int:
                raise InvalidInput("threshold must be an integer")
            self._authorized().approve(req.params.get("approval"), RequestKind.CREATE_KEY, {
                "key_id": key_id, "scheme": "ecdsa-secp256k1", "threshold": threshold, "parties": sorted(req.parties)})
            if self.store.get(f"key-{key_id}") is not None:
                raise InvalidInput("key id exists")
            return KeygenParty(req.sid, self.party, req.parties, threshold)
        if req.protocol == "presign":
            from .lifecycle import presign_inputs  # key lifecycle hook: the current epoch's share and aux info
            key, aux = presign_inputs(self, req.params["key_id"])
            return PresignParty(req.sid, key, aux, req.parties, attestor=self._attestor())
        if req.protocol == "identify":  # identification hook: node/identify.py
            from .identify import identify_machine
            return identify_machine(self, req)
        if req.protocol == "frost-dkg":  # FROST hook: frost_holder.py
            from .frost_holder import dkg_machine
            return dkg_machine(self, req)
        if req.protocol in ("refresh", "reshare", "reshare-aux"):  # key lifecycle hook: lifecycle.py
            from .lifecycle import lifecycle_machine
            return lifecycle_machine(self, req)
        raise InvalidInput(f"unknown protocol {req.protocol!r}")

    def _attestor(self) -> MessageAttestor:
        """Signs this party's MtA messages with its node identity and checks peers' against the directory, so that
        identification can tell who sent what (protocols/ecdsa/presign.py)."""
        def verify(party: int, data: bytes, signature: bytes) -> bool:
            peer = self.directory.get(party)
            return peer is not None and peer.verify(data, signature)

        return MessageAttestor(self.identity.sign, verify)

    def _seal(self, protocol: str, envelopes, keys: SessionKeys | None = None) -> list[SealedEnvelope]:
        return [
            seal(self.identity, e, protocol, None if e.recipient is None else self.directory[e.recipient], keys)
            for e in envelopes
        ]

    def _step_one(self, sid: bytes, sealed: list[SealedEnvelope]) -> StepResult:
        if not isinstance(sealed, (list, tuple)):
            raise InvalidInput("a step carries a list of sealed envelopes")
        session = self.sessions.get(check_sid(sid))
        if session is None:
            raise HolderNotReady("unknown or expired session (the holder may have restarted)")
        try:
            envs = [open_envelope(s, me=self.identity, directory=self.directory, expected_protocol=session.protocol,
                                  session=session.keys) for s in sealed]
            out = session.machine.receive(envs)
            if not session.machine.done:
                return StepResult(sid, self._seal(session.protocol, out, session.keys))
            result = self._finish(session)
        except BaseException as exc:
            from .identify import after_failure  # identification hook: keeps a failed presigning (node/identify.py)
            answer = after_failure(self, sid, session, exc)
            if answer is None:
                self._drop(sid)
                raise
            return answer
        self._drop(sid)
        return StepResult(sid, [], done=True, result=result)

    def drop_sessions(self, sids: list[bytes]) -> None:
        """Forget (and wipe) sessions the coordinator abandoned."""
        for sid in sids:
            self._drop(sid)

    def _drop(self, sid: bytes) -> None:
        session = self.sessions.pop(sid, None)
        if session is not None and hasattr(session.machine, "wipe"):  # presigning, and identification's kept runs
            session.machine.wipe()
        if session is not None and session.keys is not None:
            session.keys.erase()  # forward secrecy: nothing left here opens the session's direct messages

    def _finish(self, session: _Session) -> Any:
        out = session.machine.output
        if session.protocol == "aux":
            self.store.put("aux", aux_to_bytes(out))
            self._aux = out
            return {"parties": list(out.parties), "level": out.level.name}
        if session.protocol == "keygen":
            key_id = session.params["key_id"]
            self.store.put(f"key-{key_id}", key_to_bytes(out))
            self._keys[key_id] = out
            return {"public_key": out.public_key.to_bytes(), "threshold": out.threshold, "parties": list(out.parties),
                    "chain_code": out.chain_code}
        if session.protocol == "presign":
            kind = f"presig-{session.params['key_id']}"
            from .lifecycle import presignature_guard  # key lifecycle hook: never store an old epoch's presignature
            with presignature_guard(self, session.params["key_id"], session.machine.key):
                if self.role == "holder":
                    self.vault.put(kind, out.public.presignature_id, presignature_to_bytes(out))
                else:  # a fresh random id: never consumed, so no ledger check is needed
                    self.store.put(SecretVault.entry_name(kind, out.public.presignature_id), presignature_to_bytes(out))
            return encode(out.public)
        if session.protocol == "identify":  # identification hook: node/identify.py
            from .identify import finish_identify
            return finish_identify(self, session)
        if session.protocol == "frost-dkg":  # FROST hook: frost_holder.py
            from .frost_holder import finish_dkg
            return finish_dkg(self, session)
        if session.protocol in ("refresh", "reshare", "reshare-aux"):  # key lifecycle hook: lifecycle.py
            from .lifecycle import finish_lifecycle
            return finish_lifecycle(self, session)
        raise AssertionError(session.protocol)

    # state --------------------------------------------------------------------------------------------
    def aux(self) -> AuxInfo:
        if self._aux is None:
            raw = self.store.get("aux")  # workers read what their holder wrote
            if raw is None:
                raise HolderNotReady("aux info not set up")
            self._aux = aux_from_bytes(raw)
        return self._aux

    def key(self, key_id: str) -> KeyShare:
        check_key_id(key_id)
        if key_id not in self._keys:
            raw = self.store.get(f"key-{key_id}")
            if raw is None:
                raise HolderNotReady(f"no share of key {key_id!r}")
            self._keys[key_id] = key_from_bytes(raw)
        return self._keys[key_id]

    def has_aux(self) -> bool:
        return self._aux is not None or self.store.get("aux") is not None

    # policy-enforced signing (see node/authorized.py) ------------------------------------------------------
    def _authorized(self):
        if self.role != "holder":
            raise InvalidInput("only the holder signs")
        if getattr(self, "_auth", None) is None:
            from .authorized import AuthorizedSigning

            self._auth = AuthorizedSigning(self)
        return self._auth

    def bootstrap_principals(self, registry: bytes) -> None:
        self._authorized().bootstrap_principals(registry)

    def set_policy(self, request) -> None:
        self._authorized().set_policy(request)

    def set_principals(self, request) -> None:
        self._authorized().set_principals(request)

    def frost_sign_request(self, request, nonce_id: bytes, commitment_list: bytes) -> tuple:
        """(z_i, R) for a principal-signed request on a FROST key, after this node's policy check."""
        return self._authorized().frost_sign(request, nonce_id, commitment_list)

    def sign_request(self, request, presignature_id: bytes) -> tuple[int, bytes]:
        """(sigma_i, the digest this node computed) for a principal-signed request, after this node's own policy
        check (see node/authorized.py)."""
        return self._authorized().sign(request, presignature_id)

    def sign_requests(self, items: list[tuple[Any, bytes]]) -> list:
        """`sign_request` for a batch of (request, presignature id): one audit fsync for all; each item answered with
        (sigma_i, digest) or the error that refused it (node/authorized.py `sign_many`)."""
        return self._authorized().sign_many(items)

    def key_views(self) -> dict[str, dict]:
        """Public views of every key held here, for a restarted coordinator (node/inventory.py)."""
        from .inventory import key_views
        return key_views(self)

    def consumed_ids(self) -> list[bytes]:
        """Every one-time id this holder has consumed, in order (public: ids, not secrets)."""
        self._journal_replayed()
        return self.ledger.all_ids()

    def presignature_count(self, key_id: str) -> int:
        self._journal_replayed()
        return self.vault.count(f"presig-{check_key_id(key_id)}")

    def _journal_replayed(self) -> None:
        """Ids that decisions consumed reach the ledger's file in a background flush; after a stop before that
        flush, opening the authorization part replays them from the audit journal (authorized.py). The public views
        of the ledger open it first, so a reopened holder never shows a consumed id as unused."""
        if self.role == "holder":
            self._authorized()

    # signing ------------------------------------------------------------------------------------------
    def partial_sign(self, request: Any, items: list[tuple[int, bytes]]) -> list[int]:
        """sigma_i for each (message index, presignature id) of an operator-signed ``raw_batch`` request, after this
        node's own checks (principal, policy, each message once) and audit record (node/authorized.py `sign_raw`).
        Every partial is re-randomised (node/hd.py); presignatures are consumed before any partial is computed."""
        return self._authorized().sign_raw(request, items)

    # key lifecycle hooks: the logic lives in lifecycle.py and backup.py ---------------------------------
    def key_epoch(self, key_id: str) -> int:
        from .lifecycle import current_epoch
        return current_epoch(self, check_key_id(key_id))

    def lifecycle_public(self, key_id: str) -> dict:
        """The key's public package and epoch (relayed to new holders of a resharing)."""
        from .lifecycle import public_view
        return public_view(self, key_id)

    def lifecycle_confirm(self, key_id: str, epoch: int) -> dict:
        """Signed confirmation that this new member holds everything of the pending epoch."""
        from .lifecycle import confirm
        return confirm(self, key_id, epoch)

    def lifecycle_commit(self, key_id: str, epoch: int, digest: bytes, confirmations: dict) -> dict:
        """Switch to the pending epoch once every new member confirmed; destroys the old epoch's secrets."""
        from .lifecycle import commit
        return commit(self, key_id, epoch, digest, confirmations)

    def lifecycle_discard(self, key_id: str, epoch: int) -> bool:
        from .lifecycle import discard
        return discard(self, key_id, epoch)

    def extend_directory(self, request: Any, entries: list[NodeIdentityPublic]) -> None:
        """Add new committee members (existing entries never change), as an admin-quorum request approves."""
        from .lifecycle import extend_directory
        extend_directory(self, request, entries)

    def backup(self, request: Any, passphrase: str, kdf: str = "moderate") -> bytes:
        """Encrypted export of this holder's shares and state (no pooled presignatures or nonces), for an
        admin-quorum ``backup`` request naming this party."""
        from .backup import export_backup
        self._authorized().approve(request, RequestKind.BACKUP, {"party": self.party})
        return export_backup(self, passphrase, kdf=kdf)

    def restore(self, request: Any, blob: bytes, passphrase: str) -> dict:
        """Restore a backup, for an admin-quorum ``restore`` request naming this party and the blob's SHA-256;
        every pooled presignature and nonce is discarded, the consumed ledger only grows."""
        from .backup import approve_fresh_restore, audit_fresh_restore, restore_backup, restore_params
        params = restore_params(self.party, blob)
        if self.store.get("principals") is not None:
            self._authorized().approve(request, RequestKind.RESTORE, params)
            return restore_backup(self, blob, passphrase)
        approve_fresh_restore(self, request, blob, passphrase, params)  # the backup's own admins decide
        had_log = (self.dir / "audit.jsonl").exists()  # signed by the identity the restore replaces
        out = restore_backup(self, blob, passphrase)
        audit_fresh_restore(self, request, had_log)
        return out

    # FROST hooks: the logic lives in frost_holder.py ---------------------------------------------------
    def frost_commit(self, key_id: str, count: int, grant: Any = None) -> list[tuple[bytes, bytes]]:
        """`count` fresh nonce pairs of a FROST key, each stored in the vault first: [(nonce id, commitment)]. Needs
        the coordinator's `SessionGrant` naming this party, key and count; rate-limited per key."""
        from .frost_holder import commit
        return commit(self, key_id, count, grant)

    def frost_sign(self, request: Any, items: list[tuple[int, bytes, bytes]]) -> list[tuple[int, bytes]]:
        """(z_i, R) for each (message index, nonce id, commitment list) of an operator-signed ``raw_batch`` request on
        a FROST key, after this node's own checks and audit record (node/authorized.py `frost_raw`)."""
        return self._authorized().frost_raw(request, items)


def _encode_directory(entries: list[NodeIdentityPublic]) -> bytes:
    import json

    return json.dumps([{"party": e.party, "verify_key": e.verify_key.hex(), "box_key": e.box_key.hex()}
                       for e in sorted(entries, key=lambda e: e.party)]).encode()


def _decode_directory(data: bytes) -> list[NodeIdentityPublic]:
    import json

    return [NodeIdentityPublic(party=d["party"], verify_key=bytes.fromhex(d["verify_key"]),
                               box_key=bytes.fromhex(d["box_key"])) for d in json.loads(data)]
