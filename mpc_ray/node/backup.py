"""Backup and restore of a share holder: an encrypted export of its shares and state under a passphrase.

Format: MAGIC || opslimit (4 bytes) || memlimit (8 bytes) || salt (16 bytes) || SecretBox(payload) with the key
Argon2id(passphrase, salt). The payload repeats the header, so a header changed on disk (weaker KDF costs, another
salt) fails the restore; the KDF costs read back are bounded, so a tampered header cannot ask for absurd work.

What is exported: every store entry (identity, directory, aux info, key shares, per-key epochs and aux info,
pending epochs, principals and policies) except single-use secrets (vault entries: pooled presignatures, FROST
nonce pairs) and DKLs23 setups, plus every id of the consumed ledger and of the request-nonce ledger. A DKLs23
setup must never meet an OT-extension id twice, and the records of the ids used with it (the holder's ids after the
backup, every presign worker's own ledger) are not in a backup: a restore onto a new disk leaves the key without a
setup until its next one (node/dkls23_holder.py), and a restore onto the same disk keeps the node's own.

Restore (onto the same node after a loss, or onto a fresh store of the same party):
- ignores DKLs23 setups in the backup (an older one may carry them) and keeps the node's own;
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
- then writes the entries; the holder then reads its state back from the store (`HolderState.reload`) and reopens
  its authorization part.
"""

from __future__ import annotations

import re
import struct
import time
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
from .audit import AuditEntry
from .authorized import AUDIT_LOG, REQUEST_NONCES
from .dkls23_holder import setup_entry
from .holder_state import ecdsa_key_entry, epoch_entry, frost_key_entry
from .policy import Policy
from .principals import PrincipalRegistry, RequestFormat, RequestKind, RequestVerifier, SignedRequest, parse_strict_json
from .store import ConsumedLedger

if TYPE_CHECKING:
    from .authorized import Authorization
    from .holder_state import HolderState

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
_EPOCH_PREFIX = epoch_entry("")  # "epoch-"
_VAULT_ENTRY = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}\.[0-9a-f]{64}")  # SecretVault.entry_name: single-use secrets
_DKLS23_SETUP = setup_entry("")  # "dkls23-setup-": never backed up (module docstring)


def _exported(name: str) -> bool:
    return not _VAULT_ENTRY.fullmatch(name) and not name.startswith(_DKLS23_SETUP)


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
        if name.startswith(_EPOCH_PREFIX):
            try:
                out[name[len(_EPOCH_PREFIX):]] = int(parse_strict_json(data, max_bytes=None)["epoch"])  # bounded depth
            except (KeyError, IndexError, TypeError, ValueError, OverflowError):  # InvalidInput is a ValueError
                raise BackupError(f"backup entry {name[:80]!r} is not an epoch record") from None
    return out


def _admin_version(name: str, data: bytes | None) -> int | None:
    """The version of a stored principal registry or policy (None: not one, absent or unreadable)."""
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


class HolderBackup:
    """Backup and restore of the holder on `state` (the holder role: it owns the ledger). `authorization` checks the
    restore of a fresh node and records it; its ledger and lock are used while it is open."""

    def __init__(self, state: HolderState, authorization: Authorization | None) -> None:
        self.state = state
        self._auth = authorization

    def _open_signing(self):
        return self._auth.opened if self._auth is not None else None

    def _request_nonce_ids(self) -> list[bytes]:
        signing = self._open_signing()
        if signing is not None:
            return signing.nonces.all_ids()
        path = self.state.dir / REQUEST_NONCES
        if not path.exists():
            return []
        with ConsumedLedger(path) as own:
            return own.all_ids()

    def _merge_request_nonces(self, ids: list[bytes]) -> None:
        if not ids:
            return
        signing = self._open_signing()
        if signing is not None:
            signing.nonces.consume_many([i for i in dict.fromkeys(ids) if not signing.nonces.contains(i)])
            return
        with ConsumedLedger(self.state.dir / REQUEST_NONCES) as own:
            own.consume_many([i for i in dict.fromkeys(ids) if not own.contains(i)])

    def export(self, passphrase: str, *, kdf: str = "moderate") -> bytes:
        """The encrypted backup blob (see the module docstring). Only the holder role has the ledger."""
        st = self.state
        if st.role != "holder":
            raise InvalidInput("back up the holder, not a presign worker")
        if kdf not in KDF_LIMITS:
            raise InvalidInput(f"kdf must be one of {sorted(KDF_LIMITS)}")
        pw = _passphrase(passphrase)
        ops, mem = KDF_LIMITS[kdf]
        salt = nacl.utils.random(_SALT)
        header = MAGIC + _HEADER.pack(ops, mem) + salt
        with st.lifecycle_lock(exclusive=True):  # no epoch switch half way through the export
            entries = [_Entry(n, st.store.get(n) or b"") for n in st.store.names() if _exported(n)]
            payload = BackupPayload(header, st.party, entries, st.ledger.all_ids(), self._request_nonce_ids())
        box = nacl.secret.SecretBox(_key(pw, salt, ops, mem))
        return header + bytes(box.encrypt(encode(payload)))

    def _keep_current(self, entries: dict[str, bytes]) -> list[str]:
        """Drop from `entries` the registry and policies the holder has at the same or a higher version; their
        names."""
        kept = []
        for name in [n for n in entries if n == "principals" or n.startswith("policy.")]:
            mine = _admin_version(name, self.state.store.get(name))
            if mine is None:
                continue  # none here (a new disk) or an unreadable one: the backup's is restored
            theirs = _admin_version(name, entries[name])
            if theirs is None or theirs <= mine:
                kept.append(name)
                del entries[name]
        return kept

    def restore(self, blob: bytes, passphrase: str) -> dict:
        """Restore `blob` into the store and ledgers (see the module docstring); the caller reloads the holder's
        state. Returns counts: entries written, discarded, merged ids, and kept_current (registry and policies the
        holder had at the backup's version or a newer one)."""
        st = self.state
        if st.role != "holder":
            raise InvalidInput("restore into the holder, not a presign worker")
        payload = open_backup(blob, passphrase)
        if payload.party != st.party:
            raise BackupError(f"this is a backup of party {payload.party}, not of party {st.party}")
        entries = {e.name: e.data for e in payload.entries if not e.name.startswith(_DKLS23_SETUP)}
        if "identity" not in entries or any(_VAULT_ENTRY.fullmatch(n) for n in entries):
            raise BackupError("backup lacks the node identity or carries single-use secrets")
        epochs = _epochs(entries)
        for key_id, epoch in epochs.items():
            now = st.epoch(key_id)
            if epoch < now:
                raise BackupError(f"the backup holds key {key_id!r} at epoch {epoch}, older than this holder's "
                                  f"{now}: restoring it would bring back retired shares")
        # keys this holder moved past epoch 0 but the backup knows only at epoch 0
        for name in st.store.names(_EPOCH_PREFIX):
            key_id = name[len(_EPOCH_PREFIX):]
            if key_id not in epochs and st.epoch(key_id) > 0 and (
                    ecdsa_key_entry(key_id) in entries or frost_key_entry(key_id) in entries):
                raise BackupError(f"the backup holds key {key_id!r} from before its current epoch")
        signing = self._open_signing()
        # the authorization lock too: no set_policy / set_principals between the version comparison and the write
        with st.lifecycle_lock(exclusive=True), (signing.lock if signing is not None else nullcontext()):
            discarded = st.consume_and_delete([n for n in st.store.names() if _VAULT_ENTRY.fullmatch(n)])
            fresh = [i for i in dict.fromkeys(payload.consumed) if len(i) == 32 and not st.ledger.contains(i)]
            st.ledger.consume_many(fresh)
            self._merge_request_nonces(payload.request_nonces)
            kept = self._keep_current(entries)
            for name, data in entries.items():
                st.store.put(name, data)
        return {"entries": len(entries), "discarded": discarded, "merged_ids": len(fresh), "kept_current": len(kept)}

    def approve_fresh_restore(self, request: object, blob: bytes, passphrase: str, params: dict) -> None:
        """A node with no principals yet (a fresh store) checks the restore request against the admins of the
        registry inside the backup: only someone holding the passphrase and that registry's admin quorum restores
        it. Nothing is audited here: the node's identity is about to change, and its audit log with it
        (`audit_fresh_restore`)."""
        if not isinstance(request, SignedRequest):
            raise Unauthorized("auth.unsigned", "restore needs a request signed by the admin quorum")
        raw = {e.name: e.data for e in open_backup(blob, passphrase).entries}.get("principals")
        if raw is None:
            raise Unauthorized("auth.unknown_principal", "no principals on this node or in the backup")
        signing = self._open_signing()
        ledger = signing.nonces if signing is not None else ConsumedLedger(self.state.dir / REQUEST_NONCES)
        try:
            RequestVerifier.from_registry(PrincipalRegistry.from_bytes(raw), ledger).verify(
                request, time.time(), kinds=(RequestKind.RESTORE,))
        finally:
            if signing is None:
                ledger.close()
        if request.format is not RequestFormat.JSON or request.body_json() != params:
            raise PolicyDenied("admin.params", "the approved restore names another party or backup")

    def has_audit_log(self) -> bool:
        return (self.state.dir / AUDIT_LOG).exists()

    def audit_fresh_restore(self, request: object, had_audit_log: bool) -> None:
        """After a fresh node took its restored identity: set aside an audit log signed by the identity it
        replaced, and record the restore and its approval in the log of the restored one."""
        log = self.state.dir / AUDIT_LOG
        if had_audit_log:
            stamp = int(time.time())
            for path in (log, log.with_name(log.name + ".head")):
                if path.exists():
                    path.rename(path.with_name(f"{path.name}.replaced-{stamp}"))
        self._auth.signing.audit.append(AuditEntry(
            decision="allow", request_digest=request.digest(), principal=request.principal_id, kind="restore",
            reason="backup restored onto a fresh node, approved by the backup's admins"), now=time.time())
