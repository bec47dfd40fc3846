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
- never lowers the version of the principal registry or of a policy (keep-current): where the holder has the entry
  at the backup's version or a higher one, its own is kept (a holder accepts only ever higher versions, so its
  entries are the highest it has seen), so an older backup cannot bring back a revoked principal or undo a stricter
  policy; the count of entries kept is returned as ``kept_current``;
- then writes the entries and reloads the holder's caches (identity, directory, keys, aux info).
"""

from __future__ import annotations

import re
import struct
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

import nacl.exceptions
import nacl.secret
import nacl.utils
from nacl.pwhash import argon2id

from ..errors import InvalidInput, PolicyDenied, Unauthorized
from ..errors import BackupError  # noqa: F401  (old import path)
from ..protocols.wire import WireError, decode, encode
from ..requests.admin import restore_params  # noqa: F401 - moved there; holder.py and tests import it from here
from .identity import NodeIdentity
from .lifecycle import _lifecycle_lock, _state, consume_and_delete, current_epoch
from .principals import parse_strict_json
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
            try:
                out[name[len("epoch-"):]] = int(parse_strict_json(data, max_bytes=None)["epoch"])  # bounded depth
            except (KeyError, IndexError, TypeError, ValueError, OverflowError):  # InvalidInput is a ValueError
                raise BackupError(f"backup entry {name[:80]!r} is not an epoch record") from None
    return out


def _admin_version(name: str, data: bytes | None) -> int | None:
    """The version of a stored principal registry or policy (None: not one, absent or unreadable)."""
    from .policy import Policy
    from .principals import PrincipalRegistry

    if data is None:
        return None
    try:
        if name == "principals":
            return PrincipalRegistry.from_bytes(data).version
        if name.startswith("policy."):
            return Policy.from_bytes(data).version
    except InvalidInput:
        return None
    return None


def _keep_current(holder: "ShareHolder", entries: dict[str, bytes]) -> list[str]:
    """Drop from `entries` the registry and policies the holder has at the same or a higher version; their names."""
    kept = []
    for name in [n for n in entries if n == "principals" or n.startswith("policy.")]:
        mine = _admin_version(name, holder.store.get(name))
        if mine is None:
            continue  # none here (a new disk) or an unreadable one: the backup's is restored
        theirs = _admin_version(name, entries[name])
        if theirs is None or theirs <= mine:
            kept.append(name)
            del entries[name]
    return kept


def restore_backup(holder: "ShareHolder", blob: bytes, passphrase: str) -> dict:
    """Restore `blob` into `holder` (see the module docstring). Returns counts: entries written, discarded, merged
    ids, and kept_current (registry and policies the holder had at the backup's version or a newer one)."""
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
    auth = holder.__dict__.get("_auth")
    # the authorization lock too: no set_policy / set_principals between the version comparison and the write
    with _lifecycle_lock(holder, exclusive=True), (auth.lock if auth is not None else nullcontext()):
        discarded = consume_and_delete(holder, [n for n in holder.store.names() if _VAULT_ENTRY.fullmatch(n)])
        fresh = [i for i in dict.fromkeys(payload.consumed) if len(i) == 32 and not holder.ledger.contains(i)]
        holder.ledger.consume_many(fresh)
        _merge_request_nonces(holder, payload.request_nonces)
        kept = _keep_current(holder, entries)
        for name, data in entries.items():
            holder.store.put(name, data)
    _reload(holder)
    return {"entries": len(entries), "discarded": discarded, "merged_ids": len(fresh), "kept_current": len(kept)}


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


def approve_fresh_restore(holder: "ShareHolder", request: object, blob: bytes, passphrase: str, params: dict) -> None:
    """A node with no principals yet (a fresh store) checks the restore request against the admins of the registry
    inside the backup: only someone holding the passphrase and that registry's admin quorum restores it. Nothing is
    audited here: the node's identity is about to change, and its audit log with it (`audit_fresh_restore`)."""
    import time

    from .principals import PrincipalRegistry, RequestFormat, RequestKind, RequestVerifier, SignedRequest
    from .store import ConsumedLedger

    if not isinstance(request, SignedRequest):
        raise Unauthorized("auth.unsigned", "restore needs a request signed by the admin quorum")
    raw = {e.name: e.data for e in open_backup(blob, passphrase).entries}.get("principals")
    if raw is None:
        raise Unauthorized("auth.unknown_principal", "no principals on this node or in the backup")
    auth = holder.__dict__.get("_auth")
    ledger = auth.nonces if auth is not None else ConsumedLedger(holder.dir / "request-nonces.ledger")
    try:
        RequestVerifier.from_registry(PrincipalRegistry.from_bytes(raw), ledger).verify(
            request, time.time(), kinds=(RequestKind.RESTORE,))
    finally:
        if auth is None:
            ledger.close()
    if request.format is not RequestFormat.JSON or request.body_json() != params:
        raise PolicyDenied("admin.params", "the approved restore names another party or backup")


def audit_fresh_restore(holder: "ShareHolder", request: object, had_audit_log: bool) -> None:
    """After a fresh node took its restored identity: set aside an audit log signed by the identity it replaced,
    and record the restore and its approval in the log of the restored one."""
    import time

    from .audit import AuditEntry

    log = holder.dir / "audit.jsonl"
    if had_audit_log:
        stamp = int(time.time())
        for path in (log, log.with_name(log.name + ".head")):
            if path.exists():
                path.rename(path.with_name(f"{path.name}.replaced-{stamp}"))
    holder._authorized().audit.append(AuditEntry(
        decision="allow", request_digest=request.digest(), principal=request.principal_id, kind="restore",
        reason="backup restored onto a fresh node, approved by the backup's admins"), now=time.time())
