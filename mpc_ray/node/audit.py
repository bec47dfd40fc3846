"""The audit log of a share holder: append-only, hash-chained, every record signed by the node identity.

One JSON Lines file per holder. Each line is the canonical JSON (sorted keys, no spaces, ASCII only) of::

    {v, index, node, time, prev_hash, request_digest, principal, kind, key_id, intent, decision, rule, reason,
     nonce_id, presignature_id, signature, record_hash, node_signature}

``nonce_id`` (the request nonce's ledger id) and ``presignature_id`` make the log the holder's journal: the record
is fsync'd before the partial signature leaves, and the holder replays records after its last checkpoint into its
ledgers and spend state when it opens, so those need no fsync of their own on the signing path.

``record_hash = SHA-256("mpc-ray/audit-record/v1" || canonical JSON of every other field but node_signature)``,
``prev_hash`` is the previous record's ``record_hash`` (the first record's is a genesis value bound to the node's
public key), and ``node_signature`` is the node's Ed25519 signature of ``"mpc-ray/audit-sig/v1" || record_hash``.
A line must be byte-for-byte the canonical serialisation of what it parses to, so every byte matters: an edit
anywhere in record i breaks record i (its hash, its signature, its canonical form or its JSON), a deleted or moved
record breaks the ``index`` / ``prev_hash`` chain at the first position that differs.

Cutting records off the end leaves a valid chain, so a signed head checkpoint sits beside the log in
``<path>.head``: ``count`` and ``last_hash`` of the log, signed by the node. It is written after every append (or
group of appends), or with ``checkpoint=False`` right after it by the caller (`write_checkpoint`, off the signing
path): the log line is fsync'd first, then the checkpoint is written to a temporary file, fsync'd and renamed over
the old one. A crash leaves the checkpoint at most one group behind the log, never ahead, so the log
may be longer than the checkpoint (those records are reported as not yet anchored) but never shorter. What this
cannot catch on its own: an attacker who deletes the log and its checkpoint together, or rolls both back to a copy
taken earlier. Ship the signed checkpoint off the node now and then (`read_head`; e.g. a monitor or the
coordinator collects them) to close that.

Opening an `AuditLog` checks the tail (the last record's hash and signature, and the checkpoint against it), drops a
torn final line that was never acknowledged (a crash mid-write), and refuses (`StoreCorrupted`) a log whose
acknowledged records are damaged or missing. `verify_chain` checks everything and names the first broken record.

Integration (the holder, later): open ``AuditLog(<node dir>/audit.jsonl, identity)`` beside the store and append
one record per request it decides on, *before* it releases anything: ``AuditEntry.for_decision(verified, decision,
presignature_id=..., signature=partial)`` after computing the partial signature and before returning it, or
``AuditEntry.for_denial(request, exc)`` for any PolicyDenied (auth failures included), then re-raise. Use
``append_many`` for a ``sign_many`` batch (one fsync). A coordinator that later reports the combined signature may
be logged as a ``result`` entry. The operator's CLI calls ``verify_chain(path, node_public.verify_key)`` and
``export_jsonl``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import math
import os
import re
import struct
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NoReturn

import nacl.exceptions
import nacl.signing

from ..errors import InvalidInput, PolicyDenied
from .identity import NodeIdentity, NodeIdentityPublic
from .policy import Decision, Intent
from .principals import SignedRequest, VerifiedRequest
from .store import FileOwner, StoreCorrupted, StoreLocked, write_all

__all__ = [
    "DECISIONS",
    "AuditEntry",
    "AuditHead",
    "AuditLog",
    "AuditReport",
    "export_jsonl",
    "genesis_hash",
    "iter_records",
    "read_head",
    "verify_chain",
]

log = logging.getLogger(__name__)

_VERSION = 2  # v2 added nonce_id
_REC_DOMAIN = b"mpc-ray/audit-record/v1"
_SIG_DOMAIN = b"mpc-ray/audit-sig/v1"
_HEAD_DOMAIN = b"mpc-ray/audit-head/v1"
_GENESIS_DOMAIN = b"mpc-ray/audit-genesis/v1"
_HEAD_MAGIC = b"MRAHEAD1"
_HEAD_FMT = ">8sQ32s64s"  # magic, count, last record hash, node signature
_HEAD_LEN = struct.calcsize(_HEAD_FMT)
_HEAD_SUFFIX = ".head"
_TMP_SUFFIX = ".tmp"
_TAIL_BLOCK = 64 * 1024
_MAX_LINE = 8 << 20

DECISIONS = frozenset({"allow", "deny", "error", "result", "system"})
_FIELDS = (
    "v",
    "index",
    "node",
    "time",
    "prev_hash",
    "request_digest",
    "principal",
    "kind",
    "key_id",
    "intent",
    "decision",
    "rule",
    "reason",
    "nonce_id",
    "presignature_id",
    "signature",
    "record_hash",
    "node_signature",
)
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX128 = re.compile(r"[0-9a-f]{128}")


def _canonical(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def _record_hash(body: Mapping[str, Any]) -> bytes:
    return hashlib.sha256(_REC_DOMAIN + _canonical(body)).digest()


def genesis_hash(node_verify_key: bytes) -> bytes:
    """``prev_hash`` of a node's first record: binds the chain to that node's key."""
    return hashlib.sha256(_GENESIS_DOMAIN + bytes(node_verify_key)).digest()


def _head_message(node_verify_key: bytes, count: int, last_hash: bytes) -> bytes:
    return _HEAD_DOMAIN + bytes(node_verify_key) + struct.pack(">Q", count) + last_hash


def _verify_sig(verify_key: bytes, data: bytes, sig: bytes) -> bool:
    try:
        nacl.signing.VerifyKey(verify_key).verify(data, sig)
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
        return False
    return True


def _key_bytes(node_verify_key: bytes | NodeIdentityPublic) -> bytes:
    if isinstance(node_verify_key, NodeIdentityPublic):
        return node_verify_key.verify_key
    if isinstance(node_verify_key, (bytes, bytearray)) and len(node_verify_key) == 32:
        return bytes(node_verify_key)
    raise InvalidInput("node_verify_key must be 32 bytes or a NodeIdentityPublic")



# ------------------------------------------------------------------------------------------------------------
# entries and records


def _hex_or_none(value: bytes | None, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (bytes, bytearray)):
        raise InvalidInput(f"{what} must be bytes")
    return bytes(value).hex()


@dataclass(frozen=True)
class AuditEntry:
    """What the holder logs about one request; `AuditLog.append` adds index, time, chain hash and signature."""

    decision: str  # allow | deny | error | result | system
    request_digest: bytes | None = None
    principal: str | None = None
    kind: str | None = None
    key_id: str | None = None
    intent: Intent | Mapping[str, Any] | None = None
    rule: str | None = None
    reason: str = ""
    nonce_id: bytes | None = None  # the request nonce's ledger id, once this node consumed it
    presignature_id: bytes | None = None
    signature: bytes | None = None  # the partial signature this node released (or a final one, for "result")

    @classmethod
    def for_decision(
        cls,
        verified: VerifiedRequest,
        decision: Decision,
        *,
        presignature_id: bytes | None = None,
        signature: bytes | None = None,
    ) -> AuditEntry:
        req = verified.request
        return cls(
            decision="allow" if decision.allowed else "deny",
            request_digest=verified.request_digest,
            principal=verified.principal.id,
            kind=req.kind.value,
            key_id=req.key_id or None,
            intent=decision.intent,
            rule=decision.rule,
            reason=decision.detail or decision.message,
            nonce_id=verified.nonce_id,
            presignature_id=presignature_id,
            signature=signature,
        )

    @classmethod
    def for_denial(
        cls,
        request: SignedRequest,
        error: PolicyDenied,
        intent: Intent | None = None,
        *,
        nonce_id: bytes | None = None,
    ) -> AuditEntry:
        """A request refused before or by the policy (auth.* included). `principal` is the *claimed* one;
        `nonce_id` is set when the refusal came after the nonce was consumed."""
        return cls(
            decision="deny",
            request_digest=request.digest(),
            principal=request.principal_id,
            kind=request.kind.value,
            key_id=request.key_id or None,
            intent=intent,
            rule=error.rule,
            reason=error.message,
            nonce_id=nonce_id,
        )

    def _body(self) -> dict[str, Any]:
        if self.decision not in DECISIONS:
            raise InvalidInput(f"decision must be one of {sorted(DECISIONS)}")
        intent: Any = self.intent
        if isinstance(intent, Intent):
            intent = intent.to_json_dict()
        elif intent is not None:
            intent = json.loads(_canonical(dict(intent)))  # JSON-safe copy; raises on NaN / odd types
        for name in ("principal", "kind", "key_id", "rule"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, str):
                raise InvalidInput(f"{name} must be a string")
        if not isinstance(self.reason, str):
            raise InvalidInput("reason must be a string")
        return {
            "request_digest": _hex_or_none(self.request_digest, "request_digest"),
            "principal": self.principal,
            "kind": self.kind,
            "key_id": self.key_id,
            "intent": intent,
            "decision": self.decision,
            "rule": self.rule,
            "reason": self.reason[:4096],
            "nonce_id": _hex_or_none(self.nonce_id, "nonce_id"),
            "presignature_id": _hex_or_none(self.presignature_id, "presignature_id"),
            "signature": _hex_or_none(self.signature, "signature"),
        }


@dataclass(frozen=True)
class AuditHead:
    """A signed checkpoint: the log had `count` records, the last with hash `last_hash`."""

    count: int
    last_hash: bytes
    signature: bytes

    def to_bytes(self) -> bytes:
        return struct.pack(_HEAD_FMT, _HEAD_MAGIC, self.count, self.last_hash, self.signature)

    @classmethod
    def from_bytes(cls, data: bytes) -> AuditHead | None:
        if len(data) != _HEAD_LEN:
            return None
        magic, count, last_hash, sig = struct.unpack(_HEAD_FMT, data)
        if magic != _HEAD_MAGIC:
            return None
        return cls(count, last_hash, sig)

    def verify(self, node_verify_key: bytes) -> bool:
        return _verify_sig(node_verify_key, _head_message(node_verify_key, self.count, self.last_hash), self.signature)

    def to_json_dict(self) -> dict[str, Any]:
        return {"count": self.count, "last_hash": self.last_hash.hex(), "signature": self.signature.hex()}


def _head_path(path: Path) -> Path:
    return path.with_name(path.name + _HEAD_SUFFIX)


def read_head(path: Path | str) -> AuditHead | None:
    """The signed checkpoint beside the log at `path` (None if missing or malformed). Not verified here."""
    try:
        data = _head_path(Path(path)).read_bytes()
    except FileNotFoundError:
        return None
    return AuditHead.from_bytes(data)


def _check_record(line: bytes, verify_key: bytes, expect_index: int, expect_prev: bytes) -> tuple[dict, str | None]:
    """Parse and check one line (without its newline). Returns (record, problem or None)."""
    try:
        rec = json.loads(line.decode("ascii"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return {}, "not valid JSON"
    if not isinstance(rec, dict) or tuple(sorted(rec)) != tuple(sorted(_FIELDS)):
        return {}, "wrong set of fields"
    try:
        canonical = _canonical(rec)
    except ValueError:
        return {}, "not canonical JSON"
    if canonical != line:
        return rec, "not in canonical form (bytes altered)"
    if rec["v"] != _VERSION:
        return rec, f"unknown record version {rec['v']!r}"
    idx = rec["index"]
    if type(idx) is not int or idx != expect_index:
        return rec, f"index {idx!r} at position {expect_index} (record deleted, duplicated or reordered)"
    if not isinstance(rec["prev_hash"], str) or rec["prev_hash"] != expect_prev.hex():
        return rec, "prev_hash does not match the previous record (chain broken)"
    rh, sig = rec["record_hash"], rec["node_signature"]
    if not isinstance(rh, str) or not _HEX64.fullmatch(rh) or not isinstance(sig, str) or not _HEX128.fullmatch(sig):
        return rec, "malformed record_hash or node_signature"
    body = {k: v for k, v in rec.items() if k not in ("record_hash", "node_signature")}
    if _record_hash(body).hex() != rh:
        return rec, "record_hash does not match the record's contents"
    if not _verify_sig(verify_key, _SIG_DOMAIN + bytes.fromhex(rh), bytes.fromhex(sig)):
        return rec, "node_signature does not verify"
    if not isinstance(rec["time"], (int, float)) or isinstance(rec["time"], bool):
        return rec, "malformed time"
    return rec, None


# ------------------------------------------------------------------------------------------------------------
# the log


class AuditLog(FileOwner):
    """Append-only, hash-chained, signed JSON Lines log of one holder, at `path` (checkpoint at `path`.head).

    One writer at a time (flock); a second opener gets StoreLocked. Thread-safe. `repair_head=True` accepts a
    missing or unreadable checkpoint on a non-empty log (operator decision) and logs a ``system`` record saying so
    (at `now`, default the wall clock).
    """

    def __init__(
        self, path: Path | str, identity: NodeIdentity, *, repair_head: bool = False, now: float | None = None
    ) -> None:
        if not isinstance(identity, NodeIdentity):
            raise InvalidInput("identity must be a NodeIdentity")
        self._path = Path(path)
        self._head = _head_path(self._path)
        self._identity = identity
        self._vk = identity.public().verify_key
        self._party = identity.party
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._broken = False
        self.recovered_torn_bytes = 0
        self._path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self._path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreLocked(f"audit log {str(self._path)!r} is open elsewhere") from None
        try:
            repaired = self._recover(fd, repair_head)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        if repaired:
            # the repair itself goes into the chain, so it cannot pass unnoticed
            self.append(AuditEntry(decision="system", reason=repaired), now=time.time() if now is None else now)

    # ---------------------------------------------------------------------------------------------------
    def _read_tail(self, fd: int, size: int) -> tuple[int, bytes | None]:
        """(offset just past the last newline, last complete line or None). Reads backwards in blocks."""
        buf = b""
        pos = size
        end_nl = None
        while pos > 0:
            step = min(_TAIL_BLOCK, pos)
            pos -= step
            buf = os.pread(fd, step, pos) + buf
            if end_nl is None:
                i = buf.rfind(b"\n")
                if i >= 0:
                    end_nl = pos + i
            if end_nl is not None:
                j = buf.rfind(b"\n", 0, end_nl - pos)
                if j >= 0 or pos == 0:
                    start = pos + j + 1 if j >= 0 else 0
                    return end_nl + 1, buf[start - pos : end_nl - pos]
            if size - pos > _MAX_LINE:
                raise StoreCorrupted("audit log tail has an oversized record")
        return 0, None

    def _recover(self, fd: int, repair_head: bool) -> str:
        size = os.fstat(fd).st_size
        good_end, last = self._read_tail(fd, size) if size else (0, None)
        if last is None:
            count, last_hash = 0, genesis_hash(self._vk)
        else:
            rec, problem = self._check_last(last)
            if problem is not None:
                raise StoreCorrupted(f"audit log's last complete record is damaged ({problem}); run verify_chain")
            count, last_hash = rec["index"] + 1, bytes.fromhex(rec["record_hash"])
        head = read_head(self._path)
        repaired = ""
        if head is None or not head.verify(self._vk):
            if count > 0 or size > 0:
                if not repair_head:
                    raise StoreCorrupted("audit head checkpoint is missing or invalid while the log is not empty")
                repaired = "audit head checkpoint was missing or invalid at open; rebuilt from the log (operator)"
                log.warning("audit log %s: %s", self._path, repaired)
            hc = 0
        else:
            hc = head.count
        if good_end < size:
            # a torn final line: only acceptable if the checkpoint never acknowledged it
            if hc > count:
                raise StoreCorrupted("audit log has a torn record that the checkpoint acknowledged")
            self.recovered_torn_bytes = size - good_end
            log.warning("audit log %s: dropping %d bytes of a torn final write", self._path, size - good_end)
            os.ftruncate(fd, good_end)
            os.fsync(fd)
        if hc > count:
            raise StoreCorrupted(f"audit log truncated: the checkpoint says {hc} records, the log has {count}")
        if head is not None and hc == count and hc > 0 and head.last_hash != last_hash and not repaired:
            raise StoreCorrupted("audit checkpoint does not match the log's last record")
        self._count, self._last_hash = count, last_hash
        self._size, self._anchored = os.fstat(fd).st_size, count
        if head is None or hc != count or repaired:
            self._write_head(count, last_hash)
        return repaired

    def _check_last(self, line: bytes) -> tuple[dict, str | None]:
        try:
            rec = json.loads(line.decode("ascii"))
            idx = rec["index"]
            prev = bytes.fromhex(rec["prev_hash"])
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError):
            return {}, "unparseable"
        if type(idx) is not int or idx < 0:
            return {}, "bad index"
        return _check_record(line, self._vk, idx, prev)

    def _write_head(self, count: int, last_hash: bytes) -> None:
        sig = self._identity.sign(_head_message(self._vk, count, last_hash))
        data = AuditHead(count, last_hash, sig).to_bytes()
        tmp = self._head.with_name(self._head.name + _TMP_SUFFIX)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self._head)
        # no directory fsync: if the rename is lost in a crash the old checkpoint stays, which is only behind

    # ---------------------------------------------------------------------------------------------------
    @property
    def path(self) -> Path:
        return self._path

    @property
    def count(self) -> int:
        with self._lock:
            return self._count

    @property
    def last_hash(self) -> bytes:
        with self._lock:
            return self._last_hash

    def position(self) -> tuple[int, int]:
        """(record count, file size in bytes) after the last append: where the next record will start."""
        with self._lock:
            return self._count, self._size

    def records_since(self, offset: int, index: int) -> list[dict[str, Any]]:
        """The records from byte `offset` on, which must start with record `index` (as `position` gave them), for a
        journal replay. Parsed, not re-verified (this writer checked the tail at open); a record out of sequence
        raises StoreCorrupted."""
        with self._lock:
            if self._fd is None:
                raise InvalidInput("audit log is closed")
            if not 0 <= offset <= self._size:
                raise StoreCorrupted("journal offset is beyond the end of the audit log")
            data = os.pread(self._fd, self._size - offset, offset) if self._size > offset else b""
        out = []
        for i, line in enumerate(data.splitlines()):
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                raise StoreCorrupted(f"audit record {index + i} is not valid JSON") from None
            if not isinstance(rec, dict) or rec.get("index") != index + i:
                raise StoreCorrupted(f"audit record at position {index + i} is out of sequence")
            out.append(rec)
        return out

    def write_checkpoint(self) -> bool:
        """Bring the signed head checkpoint up to the last append, if it lags; True if it wrote one."""
        with self._lock:
            if self._fd is None or self._broken or self._anchored == self._count:
                return False
            self._write_head(self._count, self._last_hash)
            self._anchored = self._count
            return True

    def append(self, entry: AuditEntry, *, now: float, checkpoint: bool = True) -> dict[str, Any]:
        """Append one record (fsync'd; checkpoint updated unless checkpoint=False) and return it as written."""
        return self.append_many([entry], now=now, checkpoint=checkpoint)[0]

    def append_many(
        self, entries: Sequence[AuditEntry], *, now: float, checkpoint: bool = True
    ) -> list[dict[str, Any]]:
        """Append several records with one write, one fsync and one checkpoint update (group commit).

        checkpoint=False leaves the checkpoint behind the log (still durable: the records are fsync'd) for the
        caller to bring up with `write_checkpoint` off its latency path."""
        if not isinstance(now, (int, float)) or isinstance(now, bool) or not math.isfinite(now):
            raise InvalidInput("now must be a finite number of unix seconds")
        bodies = []
        for e in entries:
            if not isinstance(e, AuditEntry):
                raise InvalidInput("expected AuditEntry objects")
            bodies.append(e._body())
        if not bodies:
            return []
        with self._lock:
            if self._fd is None:
                raise InvalidInput("audit log is closed")
            if self._broken:
                raise StoreCorrupted("an earlier audit write failed; reopen the log")
            count, prev = self._count, self._last_hash
            records, lines = [], []
            for body in bodies:
                rec: dict[str, Any] = {
                    "v": _VERSION,
                    "index": count,
                    "node": self._party,
                    "time": float(now),
                    "prev_hash": prev.hex(),
                    **body,
                }
                rh = _record_hash(rec)
                rec["record_hash"] = rh.hex()
                rec["node_signature"] = self._identity.sign(_SIG_DOMAIN + rh).hex()
                records.append(rec)
                lines.append(_canonical(rec) + b"\n")
                count, prev = count + 1, rh
            data = b"".join(lines)
            try:
                write_all(self._fd, data)
                os.fsync(self._fd)
                if checkpoint:
                    self._write_head(count, prev)
            except BaseException:
                self._broken = True  # the file may end in a partial line; the next open drops it
                raise
            self._count, self._last_hash, self._size = count, prev, self._size + len(data)
            if checkpoint:
                self._anchored = count
            return records

    def __repr__(self) -> str:
        return f"AuditLog({str(self._path)!r}, {'closed' if self._fd is None else f'{self._count} records'})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("AuditLog owns an open, locked file and a node identity; it cannot be pickled")


# ------------------------------------------------------------------------------------------------------------
# verification and export


@dataclass(frozen=True)
class AuditReport:
    """Result of `verify_chain`. `records`: how many records verified from the start; `first_break_index`: the
    index of the first bad or missing record (None if none, or if only the checkpoint itself is bad); `anchored`:
    how many records the signed checkpoint covers (the rest were appended after it: crash window)."""

    ok: bool
    records: int
    first_break_index: int | None
    problem: str | None
    anchored: int = 0


def _iter_lines(path: Path) -> Iterator[tuple[bytes, bool]]:
    """(line without newline, terminated?) for each line of the file."""
    with open(path, "rb") as f:
        for raw in f:
            if raw.endswith(b"\n"):
                yield raw[:-1], True
            else:
                yield raw, False


def _verify(path: Path, vk: bytes, sink: IO[str] | None) -> AuditReport:
    if not path.exists():
        return AuditReport(False, 0, 0, "audit log file is missing")
    prev = genesis_hash(vk)
    hashes: dict[int, bytes] = {}
    head = read_head(path)
    want = head.count if head is not None else None
    n = 0
    for line, terminated in _iter_lines(path):
        if not terminated:
            return AuditReport(False, n, n, "record is truncated (no end of line)")
        rec, problem = _check_record(line, vk, n, prev)
        if problem is not None:
            return AuditReport(False, n, n, problem)
        prev = bytes.fromhex(rec["record_hash"])
        if want is not None and n == want - 1:
            hashes[n] = prev
        if sink is not None:
            sink.write(line.decode("ascii") + "\n")
        n += 1
    if head is None:
        if n == 0:
            return AuditReport(True, 0, None, None)
        return AuditReport(False, n, None, "head checkpoint is missing or malformed (tail truncation undetectable)")
    if not head.verify(vk):
        return AuditReport(False, n, None, "head checkpoint signature does not verify")
    if head.count > n:
        return AuditReport(False, n, n, f"log truncated: the checkpoint says {head.count} records, found {n}", n)
    expect = hashes.get(head.count - 1) if head.count > 0 else genesis_hash(vk)
    if expect != head.last_hash:
        return AuditReport(False, n, None, "head checkpoint does not match the log", head.count)
    return AuditReport(True, n, None, None, head.count)


def verify_chain(path: Path | str, node_verify_key: bytes | NodeIdentityPublic) -> AuditReport:
    """Check every record of the log at `path` (and its checkpoint) against the node's Ed25519 public key.

    Reports the first break: the record index and what broke (bad JSON, altered bytes, hash, signature, index or
    prev_hash mismatch, a torn line, or records missing from the end according to the signed checkpoint).
    """
    return _verify(Path(path), _key_bytes(node_verify_key), None)


def export_jsonl(
    path: Path | str, out: Path | str | IO[str], node_verify_key: bytes | NodeIdentityPublic
) -> AuditReport:
    """Verify the log and write its verified records (up to the first break) as JSON Lines to `out`.

    The exported lines are the log's own canonical lines, so anyone with the node's public key can re-check them.
    """
    vk = _key_bytes(node_verify_key)
    if isinstance(out, (str, Path)):
        with open(out, "w", encoding="ascii", newline="\n") as f:
            return _verify(Path(path), vk, f)
    return _verify(Path(path), vk, out)


def iter_records(path: Path | str) -> Iterator[dict[str, Any]]:
    """Parse the records of a log without verifying them (use `verify_chain` first)."""
    for line, _ in _iter_lines(Path(path)):
        yield json.loads(line)
