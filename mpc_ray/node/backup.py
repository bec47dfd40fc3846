"""Backup and restore of a share holder: an encrypted export of its shares and state under a passphrase.

Format: MAGIC || opslimit (4 bytes) || memlimit (8 bytes) || salt (16 bytes) || SecretBox(payload) with the key
Argon2id(passphrase, salt). The payload repeats the header, so a header changed on disk (weaker KDF costs, another
salt) fails the restore; the KDF costs read back are bounded, so a tampered header cannot ask for absurd work.

What is exported: every store entry (identity, directory, aux info, key shares, per-key epochs and aux info,
pending epochs, principals and policies) except single-use secrets (vault entries: pooled presignatures, FROST
nonce pairs), plus every id of the consumed ledger and of the request-nonce ledger.

Restore (onto the same node after a loss, or onto a fresh store of the same party):
- refuses a backup of another party, and a backup whose key epoch is older than the one the holder has now (it
  would bring back shares that a refresh or resharing retired);
- discards every pooled presignature and nonce pair on the node: they are consumed in the ledger and deleted,
  since the coordinator's pools and this node's may no longer agree, and a restored secret must never sign twice;
- merges the backup's consumed ids into the ledger: the ledger only ever grows, so nothing consumed before the
  backup or since can be revived;
- then writes the entries and reloads the holder's caches (identity, directory, keys, aux info).
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

import nacl.exceptions
import nacl.secret
import nacl.utils
from nacl.pwhash import argon2id

from ..errors import InvalidInput, MpcError
from ..protocols.wire import WireError, decode, encode
from .identity import NodeIdentity
from .lifecycle import _lifecycle_lock, _state, consume_and_delete, current_epoch, epoch_entry
from .store import ConsumedLedger

if TYPE_CHECKING:
    from .holder import ShareHolder

MAGIC = b"mpc-ray holder backup\x00\x01"
_HEADER = struct.Struct(">IQ")
_SALT = argon2id.SALTBYTES
KDF_LIMITS = {
    "sensitive": (argon2id.OPSLIMIT_SENSITIVE, argon2id.MEMLIMIT_SENSITIVE),
    "moderate": (argon2id.OPSLIMIT_MODERATE, argon2id.MEMLIMIT_MODERATE),
    "min": (argon2id.OPSLIMIT_MIN, argon2id.MEMLIMIT_MIN),  # tests only
}
MIN_PASSPHRASE = 12
_MAX_OPS = argon2id.OPSLIMIT_SENSITIVE
_MAX_MEM = argon2id.MEMLIMIT_SENSITIVE
_VAULT_ENTRY = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}\.[0-9a-f]{64}")  # SecretVault.entry_name: single-use secrets
_REQUEST_NONCES = "request-nonces.ledger"


class BackupError(MpcError):
    """A backup that does not open (wrong passphrase, tampering, truncation) or does not fit this holder."""


@dataclass(frozen=True)
class _Entry:
    name: str
    data: bytes


@dataclass(frozen=True)
class BackupPayload:
    header: bytes
    party: int
    entries: list[_Entry]
    consumed: list[bytes]
    request_nonces: list[bytes]

    def __repr__(self) -> str:
        return f"BackupPayload(party={self.party}, {len(self.entries)} entries, <redacted>)"


def _passphrase(passphrase: object) -> bytes:
    if not isinstance(passphrase, str) or len(passphrase) < MIN_PASSPHRASE:
        raise InvalidInput(f"the backup passphrase must be a string of at least {MIN_PASSPHRASE} characters")
    return passphrase.encode()


def _key(passphrase: bytes, salt: bytes, ops: int, mem: int) -> bytes:
    return argon2id.kdf(nacl.secret.SecretBox.KEY_SIZE, passphrase, salt, opslimit=ops, memlimit=mem)


def _request_nonce_ids(holder: "ShareHolder") -> list[bytes]:
    auth = holder.__dict__.get("_auth")
    ledger = getattr(auth, "nonces", None)
    if ledger is not None:
        return ledger.all_ids()
    path = holder.dir / _REQUEST_NONCES
    if not path.exists():
        return []
    with ConsumedLedger(path) as own:
        return own.all_ids()


def _merge_request_nonces(holder: "ShareHolder", ids: list[bytes]) -> None:
    if not ids:
        return
    auth = holder.__dict__.get("_auth")
    ledger = getattr(auth, "nonces", None)
    if ledger is not None:
        ledger.consume_many([i for i in dict.fromkeys(ids) if not ledger.contains(i)])
        return
    with ConsumedLedger(holder.dir / _REQUEST_NONCES) as own:
        own.consume_many([i for i in dict.fromkeys(ids) if not own.contains(i)])


def export_backup(holder: "ShareHolder", passphrase: str, *, kdf: str = "moderate") -> bytes:
    """The encrypted backup blob of `holder` (see the module docstring). Only the holder role has the ledger."""
    if holder.role != "holder":
        raise InvalidInput("back up the holder, not a presign worker")
    if kdf not in KDF_LIMITS:
        raise InvalidInput(f"kdf must be one of {sorted(KDF_LIMITS)}")
    pw = _passphrase(passphrase)
    ops, mem = KDF_LIMITS[kdf]
    salt = nacl.utils.random(_SALT)
    header = MAGIC + _HEADER.pack(ops, mem) + salt
    with _lifecycle_lock(holder, exclusive=True):  # no epoch switch half way through the export
        entries = [_Entry(n, holder.store.get(n) or b"") for n in holder.store.names() if not _VAULT_ENTRY.fullmatch(n)]
        payload = BackupPayload(header, holder.party, entries, holder.ledger.all_ids(), _request_nonce_ids(holder))
    box = nacl.secret.SecretBox(_key(pw, salt, ops, mem))
    return header + bytes(box.encrypt(encode(payload)))


def open_backup(blob: bytes, passphrase: str) -> BackupPayload:
    """Decrypt and check a backup; BackupError on a wrong passphrase or any change to the blob."""
    pw = _passphrase(passphrase)
    hlen = len(MAGIC) + _HEADER.size + _SALT
    if not isinstance(blob, (bytes, bytearray)) or len(blob) <= hlen or not bytes(blob).startswith(MAGIC):
        raise BackupError("not an mpc-ray holder backup")
    blob = bytes(blob)
    ops, mem = _HEADER.unpack(blob[len(MAGIC) : len(MAGIC) + _HEADER.size])
    if not (argon2id.OPSLIMIT_MIN <= ops <= _MAX_OPS and argon2id.MEMLIMIT_MIN <= mem <= _MAX_MEM):
        raise BackupError("backup header asks for out-of-range key derivation costs")
    salt = blob[hlen - _SALT : hlen]
    try:
        plain = nacl.secret.SecretBox(_key(pw, salt, ops, mem)).decrypt(blob[hlen:])
    except nacl.exceptions.CryptoError:
        raise BackupError("the backup does not open: wrong passphrase or a damaged or altered blob") from None
    try:
        payload = decode(plain, BackupPayload)
    except WireError:
        raise BackupError("backup payload is malformed") from None
    if payload.header != blob[:hlen]:
        raise BackupError("backup header was altered")
    return payload


def _epochs(entries: dict[str, bytes]) -> dict[str, int]:
    out = {}
    for name, data in entries.items():
        if name.startswith("epoch-"):
            out[name[len("epoch-"):]] = int(json.loads(data)["epoch"])
    return out


def restore_backup(holder: "ShareHolder", blob: bytes, passphrase: str) -> dict:
    """Restore `blob` into `holder` (see the module docstring). Returns counts: entries, discarded, merged ids."""
    if holder.role != "holder":
        raise InvalidInput("restore into the holder, not a presign worker")
    payload = open_backup(blob, passphrase)
    if payload.party != holder.party:
        raise BackupError(f"this is a backup of party {payload.party}, not of party {holder.party}")
    entries = {e.name: e.data for e in payload.entries}
    if "identity" not in entries or any(_VAULT_ENTRY.fullmatch(n) for n in entries):
        raise BackupError("backup lacks the node identity or carries single-use secrets")
    for key_id, epoch in _epochs(entries).items():
        now = current_epoch(holder, key_id)
        if epoch < now:
            raise BackupError(f"the backup holds key {key_id!r} at epoch {epoch}, older than this holder's {now}: "
                              "restoring it would bring back retired shares")
    # keys this holder moved past epoch 0 but the backup knows only at epoch 0
    for name in holder.store.names("epoch-"):
        key_id = name[len("epoch-"):]
        if key_id not in _epochs(entries) and current_epoch(holder, key_id) > 0 and (
                f"key-{key_id}" in entries or f"frost-{key_id}" in entries):
            raise BackupError(f"the backup holds key {key_id!r} from before its current epoch")
    with _lifecycle_lock(holder, exclusive=True):
        discarded = consume_and_delete(holder, [n for n in holder.store.names() if _VAULT_ENTRY.fullmatch(n)])
        fresh = [i for i in dict.fromkeys(payload.consumed) if len(i) == 32 and not holder.ledger.contains(i)]
        holder.ledger.consume_many(fresh)
        _merge_request_nonces(holder, payload.request_nonces)
        for name, data in entries.items():
            holder.store.put(name, data)
    _reload(holder)
    return {"entries": len(entries), "discarded": discarded, "merged_ids": len(fresh)}


def _reload(holder: "ShareHolder") -> None:
    """Drop every cache so the holder reads its restored state back from the store."""
    holder.identity = NodeIdentity.from_secret_bytes(holder.party, holder.store.get("identity"))
    holder.directory = {}
    holder._load_directory()
    holder._keys.clear()
    holder._aux = None
    holder.sessions.clear()
    holder.__dict__.pop("_frost_state", None)
    holder.__dict__.pop("_lifecycle_state", None)
    _state(holder)
    auth = holder.__dict__.get("_auth")
    if auth is not None:  # principals, policies and spend state come back from the store on next use
        close = getattr(auth, "close", None)
        if close is not None:
            close()
        holder._auth = None
