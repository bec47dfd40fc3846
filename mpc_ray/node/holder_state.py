"""What every part of a share holder shares: its node's disk (store, ledger, vault), its identity, the committee
directory, the caches of its key shares, its open protocol sessions and the node's lifecycle lock.

The parts (node/ecdsa_holder.py, frost_holder.py, lifecycle.py, authorized.py, backup.py, identify.py) each take a
`HolderState` and change it only through its methods; `ShareHolder` (node/holder.py) builds the state and the parts.
Nothing here knows a protocol.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from nacl.pwhash import argon2id

from ..errors import HolderNotReady, InvalidInput
from ..protocols.base import RoundParty
from ..protocols.ecdsa.aux_info import AuxInfo
from ..protocols.ecdsa.keygen import KeyShare
from ..protocols.frost import KeyPackage
from .envelope import SessionKeys
from .frost_records import key_package_from_bytes
from .identity import NodeIdentity, NodeIdentityPublic
from .records import aux_from_bytes, key_from_bytes
from .store import ConsumedLedger, EncryptedStore, SecretVault

# Argon2id cost for the store key: "interactive" in production, "min" for fast tests
KDF_LIMITS = {
    "interactive": {},
    "min": {"opslimit": argon2id.OPSLIMIT_MIN, "memlimit": argon2id.MEMLIMIT_MIN},
}
COORDINATOR_ENTRY = "coordinator"  # store entry: the coordinator's verify key (beside the directory; backed up)
_LOCK_FILE = "lifecycle.lock"
_KEY_ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
MAX_SID_BYTES = 128


def check_key_id(key_id: str) -> str:
    if not isinstance(key_id, str) or not 1 <= len(key_id) <= 64 or not set(key_id) <= _KEY_ID_CHARS:
        raise InvalidInput("key_id must be 1-64 characters of [A-Za-z0-9_-]")
    return key_id


def check_sid(sid: Any) -> bytes:
    if not isinstance(sid, bytes) or not 0 < len(sid) <= MAX_SID_BYTES:
        raise InvalidInput(f"a session id is 1 to {MAX_SID_BYTES} bytes")
    return sid


# store entries every part reads ------------------------------------------------------------------------------
def ecdsa_key_entry(key_id: str) -> str:
    return f"key-{key_id}"


def frost_key_entry(key_id: str) -> str:
    return f"frost-{key_id}"


def epoch_entry(key_id: str) -> str:
    return f"epoch-{key_id}"


def key_aux_entry(key_id: str) -> str:
    """Per-key aux info: a refresh or resharing gives the key aux info of its own, apart from the committee's."""
    return f"aux-{key_id}"


def executor_name(worker: int | None) -> str:
    """The name of an executor of a node: "holder", or "worker-<k>" for its presign worker k."""
    if worker is None:
        return "holder"
    if type(worker) is not int or not 0 <= worker < 2**16:
        raise InvalidInput("a presign worker's index is an integer in [0, 65536)")
    return f"worker-{worker}"


def presig_kind(key_id: str) -> str:
    return f"presig-{key_id}"


def key_protocol_entry(key_id: str) -> str:
    """The ECDSA protocol a key signs with ("cggmp21" or "dkls23"), fixed at key generation; none: "cggmp21"."""
    return f"protocol-{key_id}"


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


class KeyCache:
    """Parsed key shares and aux info, read from the store on first use. Workers read what their holder wrote."""

    def __init__(self, store: EncryptedStore) -> None:
        self._store = store
        self._keys: dict[str, KeyShare] = {}
        self._frost: dict[str, KeyPackage] = {}
        self._aux: AuxInfo | None = None  # the committee's
        self._key_aux: dict[str, AuxInfo] = {}  # a key's own, after a refresh or resharing
        self._protocols: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"KeyCache({len(self._keys)} ECDSA, {len(self._frost)} FROST, <redacted>)"

    def key(self, key_id: str) -> KeyShare:
        check_key_id(key_id)
        if key_id not in self._keys:
            raw = self._store.get(ecdsa_key_entry(key_id))
            if raw is None:
                raise HolderNotReady(f"no share of key {key_id!r}")
            self._keys[key_id] = key_from_bytes(raw)
        return self._keys[key_id]

    def protocol(self, key_id: str) -> str:
        """The ECDSA protocol of the key (`key_protocol_entry`); keys made before there was a choice: "cggmp21"."""
        got = self._protocols.get(key_id)
        if got is None:
            raw = self._store.get(key_protocol_entry(check_key_id(key_id)))
            got = self._protocols[key_id] = raw.decode() if raw is not None else "cggmp21"
        return got

    def frost(self, key_id: str) -> KeyPackage:
        check_key_id(key_id)
        kp = self._frost.get(key_id)
        if kp is None:
            raw = self._store.get(frost_key_entry(key_id))
            if raw is None:
                raise HolderNotReady(f"no FROST share of key {key_id!r}")
            kp = self._frost[key_id] = key_package_from_bytes(raw)
        return kp

    def aux(self) -> AuxInfo:
        if self._aux is None:
            raw = self._store.get("aux")  # workers read what their holder wrote
            if raw is None:
                raise HolderNotReady("aux info not set up")
            self._aux = aux_from_bytes(raw)
        return self._aux

    def has_aux(self) -> bool:
        return self._aux is not None or self._store.get("aux") is not None

    def key_aux(self, key_id: str) -> AuxInfo:
        """The aux info presigning for this key uses: the key's own after a refresh or resharing, else the
        committee's."""
        aux = self._key_aux.get(key_id)
        if aux is None:
            raw = self._store.get(key_aux_entry(key_id))
            if raw is None:
                return self.aux()
            aux = self._key_aux[key_id] = aux_from_bytes(raw)
        return aux

    # what a part that wrote the store tells the cache ------------------------------------------------------
    def set_key(self, key_id: str, key: KeyShare) -> None:
        self._keys[key_id] = key

    def set_frost(self, key_id: str, kp: KeyPackage) -> None:
        self._frost[key_id] = kp

    def set_aux(self, aux: AuxInfo) -> None:
        self._aux = aux

    def forget(self, key_id: str) -> None:
        """Drop the key's share and aux info (ECDSA and FROST): read again from the store on next use."""
        self._keys.pop(key_id, None)
        self._frost.pop(key_id, None)
        self._key_aux.pop(key_id, None)
        self._protocols.pop(key_id, None)

    def forget_aux(self) -> None:
        self._aux = None

    def clear(self) -> None:
        self._keys.clear()
        self._frost.clear()
        self._key_aux.clear()
        self._protocols.clear()
        self._aux = None


@dataclass
class Session:
    protocol: str
    machine: RoundParty
    params: dict[str, Any]
    keys: SessionKeys | None = None  # ephemeral keys of a forward-secure session; erased by `SessionTable.drop`


class SessionTable(dict):
    """Open protocol sessions by id (a dict of `Session`); `drop` wipes what a session leaves behind."""

    def drop(self, sid: bytes) -> None:
        session = self.pop(sid, None)
        if session is not None and hasattr(session.machine, "wipe"):  # presigning, and identification's kept runs
            session.machine.wipe()
        if session is not None and session.keys is not None:
            session.keys.erase()  # forward secrecy: nothing left here opens the session's direct messages

    def drop_where(self, match: Callable[[Session], bool]) -> None:
        for sid in [sid for sid, s in list(self.items()) if match(s)]:
            self.drop(sid)


class HolderState:
    """One party's node: its disk, identity, committee, key caches, sessions. Shared by the holder's parts."""

    def __init__(self, party: int, state_dir: Path, node_secret: bytes, *, kdf: str, role: str,
                 allow_test_keys: bool, worker: int | None = None) -> None:
        self.party, self.role, self.dir, self.allow_test_keys = party, role, state_dir, allow_test_keys
        # which executor of the node this is: "holder", or "worker-<k>" for presign worker k (None: a worker started
        # without its index, which runs nothing that needs a record of its own)
        self.executor = executor_name(worker) if role == "holder" or worker is not None else None
        if role == "holder" and worker is not None:
            raise InvalidInput("the holder is no presign worker")
        self.store = EncryptedStore(self.dir / "store", node_secret, **KDF_LIMITS[kdf])
        # Only the holder owns the consumption ledger (one writer); presign workers on the same node share the
        # encrypted store and add fresh presignatures to it, which the holder alone can consume.
        self.ledger: ConsumedLedger | None = None
        self._worker_ledger: ConsumedLedger | None = None  # a worker's own record (`executor_ledger`), opened on use
        self.vault: SecretVault | None = None
        self.deleter: SpentFileDeleter | None = None
        if role == "holder":
            self.ledger = ConsumedLedger(self.dir / "consumed.ledger")
            self.vault = SecretVault(self.store, self.ledger)
            self.deleter = SpentFileDeleter(self.vault)
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
        self.load_directory()
        self.keys = KeyCache(self.store)
        self.sessions = SessionTable()

    def __repr__(self) -> str:
        return f"HolderState(party={self.party}, role={self.role}, <redacted>)"

    def executor_ledger(self) -> ConsumedLedger:
        """This executor's own durable record of ids it must never use twice that are not vault secrets (DKLs23's
        OT-extension ids, node/dkls23_holder.py): the holder's ledger on the holder; on presign worker k the file
        ``worker-k.ledger`` beside it, which only that worker writes (a second process opening it gets StoreLocked).
        Ids consumed with durable=False are written by `flush_ledgers`."""
        if self.role == "holder":
            return self.ledger
        if self.executor is None:
            raise InvalidInput("this presign worker was started without its index: it keeps no record of its own")
        if self._worker_ledger is None:
            self._worker_ledger = ConsumedLedger(self.dir / f"{self.executor}.ledger")
        return self._worker_ledger

    def flush_ledgers(self) -> None:
        """Write and fsync what this executor consumed with durable=False (before any first-round message leaves)."""
        for ledger in (self.ledger, self._worker_ledger):
            if ledger is not None:
                ledger.flush()

    def close_ledgers(self) -> None:
        for ledger in (self.ledger, self._worker_ledger):
            if ledger is not None:
                ledger.close()
        self._worker_ledger = None

    def require_holder(self, refusal: str) -> None:
        """InvalidInput(`refusal`) on a presign worker: it has no ledger, so it never spends or serves a secret."""
        if self.role != "holder":
            raise InvalidInput(refusal)

    # identity and committee --------------------------------------------------------------------------------
    def load_directory(self) -> None:
        raw_dir = self.store.get("directory")
        if raw_dir is not None:
            self.directory = {p.party: p for p in decode_directory(raw_dir)}
        self.coordinator_key = self.store.get(COORDINATOR_ENTRY)

    def put_directory(self, new: dict[int, NodeIdentityPublic]) -> None:
        self.store.put("directory", encode_directory(list(new.values())))
        self.directory = new

    def put_coordinator_key(self, verify_key: bytes) -> None:
        self.store.put(COORDINATOR_ENTRY, verify_key)
        self.coordinator_key = verify_key

    def reload_coordinator_key(self) -> bool:
        """Read the coordinator key again from the store (a worker: its holder may have replaced it); True if it
        changed."""
        before = self.coordinator_key
        self.coordinator_key = self.store.get(COORDINATOR_ENTRY)
        return self.coordinator_key != before

    def reload(self) -> None:
        """Read identity and directory back from the store and drop every cache and session (after a restore)."""
        self.identity = NodeIdentity.from_secret_bytes(self.party, self.store.get("identity"))
        self.directory = {}
        self.load_directory()
        self.keys.clear()
        self.sessions.drop_where(lambda s: True)

    # epochs and one-time secrets ---------------------------------------------------------------------------
    def epoch_record(self, key_id: str) -> dict:
        raw = self.store.get(epoch_entry(key_id))
        return json.loads(raw) if raw is not None else {"epoch": 0}

    def epoch(self, key_id: str) -> int:
        """The key's epoch at this holder: 0 from key generation, +1 per refresh or resharing."""
        return int(self.epoch_record(key_id)["epoch"])

    @contextmanager
    def lifecycle_lock(self, exclusive: bool) -> Iterator[None]:
        """The node's lifecycle lock (a file beside the store): exclusive to switch epochs, shared to store a
        presignature. Workers are separate processes on the same node, so this is an OS lock."""
        fd = os.open(self.dir / _LOCK_FILE, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def consume_and_delete(self, names: Sequence[str]) -> int:
        """Vault entries `names` (<kind>.<id hex>) consumed durably in the ledger (those not already), then deleted.
        Returns how many were still unspent."""
        ids = []
        for name in names:
            try:
                ids.append(bytes.fromhex(name.rsplit(".", 1)[1]))
            except (IndexError, ValueError):
                continue
        fresh = [i for i in dict.fromkeys(ids) if len(i) == 32 and not self.ledger.contains(i)]
        self.ledger.consume_many(fresh)  # point of no return: a restored file with these ids is refused and deleted
        self.store.delete_many(names)
        return len(fresh)

    def spent(self, kind: str, ids: list[bytes]) -> None:
        """Consumed one-time secrets whose files may go: unlinked by the deleter thread off the signing path."""
        self.deleter.submit(self.vault.delete_consumed, kind, ids)


def encode_directory(entries: list[NodeIdentityPublic]) -> bytes:
    return json.dumps([{"party": e.party, "verify_key": e.verify_key.hex(), "box_key": e.box_key.hex()}
                       for e in sorted(entries, key=lambda e: e.party)]).encode()


def decode_directory(data: bytes) -> list[NodeIdentityPublic]:
    return [NodeIdentityPublic(party=d["party"], verify_key=bytes.fromhex(d["verify_key"]),
                               box_key=bytes.fromhex(d["box_key"])) for d in json.loads(data)]
