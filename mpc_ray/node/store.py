"""What a share holder keeps on its node's disk: an encrypted key-value store, a ledger of consumed one-time ids,
and a vault of single-use secrets built from the two.

- `EncryptedStore`: every entry is a file encrypted with nacl SecretBox under a key derived (Argon2id) from the
  node secret and a per-store salt. Each entry's plaintext starts with its own name, so swapping or renaming files
  is detected. Writes are atomic and durable (temp file, fsync, os.replace, fsync of the directory).
- `ConsumedLedger`: an append-only file of fixed-length, checksummed records, fsync'd before `consume` returns.
  Records are written in batches (one write + one fsync per batch); a batch counts only when all of its records are
  on disk, so a crash mid-write loses at most the unacknowledged batch, never an acknowledged one.
- `SecretVault`: single-use secrets (presignature shares, FROST nonces). `take` records the consumption in the
  ledger before it deletes the file and returns the secret, so neither a crash nor a restored backup can hand the
  same secret out twice.

Nothing secret (keys, node secret, plaintexts) appears in a repr, an exception or a log line. Python cannot wipe
`bytes` from memory; secrets live as long as their objects do.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import struct
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, Self

import nacl.encoding
import nacl.exceptions
import nacl.hash
import nacl.secret
import nacl.utils
from nacl.pwhash import argon2id

from ..errors import InvalidInput
from ..errors import StoreCorrupted, StoreLocked, AlreadyConsumed, SecretNotFound  # noqa: F401  (old import path)

__all__ = [
    "ID_BYTES",
    "AlreadyConsumed",
    "ConsumedLedger",
    "EncryptedStore",
    "SecretNotFound",
    "SecretVault",
    "StoreCorrupted",
    "StoreLocked",
    "derive_store_key",
]

log = logging.getLogger(__name__)

ID_BYTES = 32  # one-time ids (presignature ids, nonce ids)
MIN_NODE_SECRET_BYTES = 16
_KEY_BYTES = nacl.secret.SecretBox.KEY_SIZE
_SALT_BYTES = argon2id.SALTBYTES
# bounds for parameters read back from disk: keeps a tampered metadata file from asking for absurd work
_MAX_OPSLIMIT = 32
_MAX_MEMLIMIT = argon2id.MEMLIMIT_SENSITIVE
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_TMP_PREFIX = ".tmp-"
_TMP_STALE_S = 60.0  # a temp file older than this is a crash leftover, not a write in progress  # never a valid entry name (names start with [A-Za-z0-9])


# ------------------------------------------------------------------------------------------------------------
# helpers


def fsync_dir(path: Path) -> None:
    # a rename or unlink is durable only once the directory entry itself is on disk
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _write_file_durably(path: Path, data: bytes) -> None:
    """Create `path` (must not exist), write `data`, fsync. Mode 0600: entries are nobody else's business."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _tmp_path(directory: Path) -> Path:
    return directory / (_TMP_PREFIX + nacl.utils.random(12).hex())


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _create_once(path: Path, data: bytes) -> bool:
    """Atomically create `path` with `data` unless it exists (os.link never clobbers). True if we created it."""
    tmp = _tmp_path(path.parent)
    try:
        _write_file_durably(tmp, data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        fsync_dir(path.parent)
        return True
    finally:
        _unlink_quietly(tmp)


def _check_bytes(value: object, what: str) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise InvalidInput(f"{what} must be bytes")
    return bytes(value)


def _check_id(value: object) -> bytes:
    data = _check_bytes(value, "one-time id")
    if len(data) != ID_BYTES:
        raise InvalidInput(f"one-time ids are {ID_BYTES} bytes")
    return data


def _checksum(data: bytes, size: int, person: bytes) -> bytes:
    return nacl.hash.blake2b(data, digest_size=size, person=person, encoder=nacl.encoding.RawEncoder)


# ------------------------------------------------------------------------------------------------------------
# key derivation


def _check_node_secret(node_secret: object) -> bytes:
    secret = _check_bytes(node_secret, "node secret")
    if len(secret) < MIN_NODE_SECRET_BYTES:
        raise InvalidInput(f"node secret must be at least {MIN_NODE_SECRET_BYTES} bytes")
    return secret


def derive_store_key(
    node_secret: bytes,
    salt: bytes,
    *,
    opslimit: int = argon2id.OPSLIMIT_INTERACTIVE,
    memlimit: int = argon2id.MEMLIMIT_INTERACTIVE,
) -> bytes:
    """Argon2id(node_secret, salt) -> 32-byte SecretBox key. Tests may pass argon2id.OPSLIMIT_MIN/MEMLIMIT_MIN."""
    secret = _check_node_secret(node_secret)
    salt = _check_bytes(salt, "salt")
    if len(salt) != _SALT_BYTES:
        raise InvalidInput(f"salt must be {_SALT_BYTES} bytes")
    if not isinstance(opslimit, int) or not argon2id.OPSLIMIT_MIN <= opslimit <= _MAX_OPSLIMIT:
        raise InvalidInput(f"opslimit must be in [{argon2id.OPSLIMIT_MIN}, {_MAX_OPSLIMIT}]")
    if not isinstance(memlimit, int) or not argon2id.MEMLIMIT_MIN <= memlimit <= _MAX_MEMLIMIT:
        raise InvalidInput(f"memlimit must be in [{argon2id.MEMLIMIT_MIN}, {_MAX_MEMLIMIT}]")
    return argon2id.kdf(_KEY_BYTES, secret, salt, opslimit=opslimit, memlimit=memlimit)


# ------------------------------------------------------------------------------------------------------------
# encrypted store

_META_NAME = "store.meta"
_OBJECTS_DIR = "objects"
_META_MAGIC = b"mpc-ray store\x00\x01"
_META_FMT = ">IQ"  # opslimit, memlimit: recorded so a store reopens with the parameters it was created with
_CHECK_PLAINTEXT = b"mpc-ray store key check v1"
_META_LEN = (
    len(_META_MAGIC)
    + struct.calcsize(_META_FMT)
    + _SALT_BYTES
    + nacl.secret.SecretBox.NONCE_SIZE
    + len(_CHECK_PLAINTEXT)
    + nacl.secret.SecretBox.MACBYTES
)
_ENTRY_MAGIC = b"MRS\x01"
_ENTRY_MIN_LEN = len(_ENTRY_MAGIC) + nacl.secret.SecretBox.NONCE_SIZE + nacl.secret.SecretBox.MACBYTES + 2


def _check_name(name: object) -> str:
    if not isinstance(name, str) or _NAME_RE.fullmatch(name) is None:
        raise InvalidInput("store names are 1-200 characters of [A-Za-z0-9._-], starting with a letter or digit")
    return name


class EncryptedStore:
    """Encrypted, atomically written named blobs in `directory` (created 0700 if missing).

    Layout: `store.meta` (magic, Argon2id parameters, salt, an encrypted key-check value) and `objects/<name>`
    (magic || SecretBox(len(name) || name || data)). A wrong node secret fails at open with StoreCorrupted.
    I/O failures (disk full, permissions) propagate as OSError. Names are case-sensitive: use lowercase on
    case-insensitive filesystems.
    """

    def __init__(
        self,
        directory: Path | str,
        node_secret: bytes,
        *,
        opslimit: int = argon2id.OPSLIMIT_INTERACTIVE,
        memlimit: int = argon2id.MEMLIMIT_INTERACTIVE,
    ) -> None:
        # validate before touching the disk, so a bad secret never creates a store
        _check_node_secret(node_secret)
        self._dir = Path(directory)
        self._objects = self._dir / _OBJECTS_DIR
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._objects.mkdir(mode=0o700, exist_ok=True)
        meta_path = self._dir / _META_NAME
        if not meta_path.exists():
            if any(_NAME_RE.fullmatch(n) for n in os.listdir(self._objects)):
                # a fresh salt would silently orphan every entry: refuse instead
                raise StoreCorrupted("store metadata is missing but the store has entries")
            salt = nacl.utils.random(_SALT_BYTES)
            key = derive_store_key(node_secret, salt, opslimit=opslimit, memlimit=memlimit)
            check = nacl.secret.SecretBox(key).encrypt(_CHECK_PLAINTEXT)
            meta = _META_MAGIC + struct.pack(_META_FMT, opslimit, memlimit) + salt + bytes(check)
            if _create_once(meta_path, meta):
                self._box = nacl.secret.SecretBox(key)
                self._cleanup_temp_files()
                return
            # another opener created it first: fall through and read theirs
        self._box = self._open_meta(meta_path, node_secret)
        self._cleanup_temp_files()

    @staticmethod
    def _open_meta(meta_path: Path, node_secret: bytes) -> nacl.secret.SecretBox:
        meta = meta_path.read_bytes()
        if len(meta) != _META_LEN or not meta.startswith(_META_MAGIC):
            raise StoreCorrupted("store metadata is malformed")
        off = len(_META_MAGIC)
        opslimit, memlimit = struct.unpack_from(_META_FMT, meta, off)
        off += struct.calcsize(_META_FMT)
        salt, check = meta[off : off + _SALT_BYTES], meta[off + _SALT_BYTES :]
        if not (
            argon2id.OPSLIMIT_MIN <= opslimit <= _MAX_OPSLIMIT and argon2id.MEMLIMIT_MIN <= memlimit <= _MAX_MEMLIMIT
        ):
            raise StoreCorrupted("store metadata holds out-of-range KDF parameters")
        key = derive_store_key(node_secret, salt, opslimit=opslimit, memlimit=memlimit)
        box = nacl.secret.SecretBox(key)
        try:
            ok = box.decrypt(check) == _CHECK_PLAINTEXT
        except nacl.exceptions.CryptoError:
            ok = False
        if not ok:
            raise StoreCorrupted("wrong node secret, or the store metadata was altered")
        return box

    def _cleanup_temp_files(self) -> None:
        # leftovers of writes interrupted by a crash; never valid entries. Only old ones: another process on this
        # node (the holder, a presign worker) may be writing a fresh one right now.
        cutoff = time.time() - _TMP_STALE_S
        for n in os.listdir(self._objects):
            if n.startswith(_TMP_PREFIX):
                try:
                    if os.stat(self._objects / n).st_mtime < cutoff:
                        _unlink_quietly(self._objects / n)
                except FileNotFoundError:
                    pass

    @property
    def directory(self) -> Path:
        return self._dir

    def _path(self, name: str) -> Path:
        return self._objects / _check_name(name)

    def put(self, name: str, data: bytes) -> None:
        """Store `data` under `name`, replacing any previous value atomically and durably."""
        path = self._path(name)
        data = _check_bytes(data, "data")
        encoded = name.encode("ascii")
        # the name inside the ciphertext binds the entry to its file name (no swapping files)
        sealed = _ENTRY_MAGIC + bytes(self._box.encrypt(struct.pack(">H", len(encoded)) + encoded + data))
        tmp = _tmp_path(self._objects)
        try:
            _write_file_durably(tmp, sealed)
            os.replace(tmp, path)
        except BaseException:
            _unlink_quietly(tmp)
            raise
        fsync_dir(self._objects)

    def get(self, name: str) -> bytes | None:
        """The stored bytes, None if absent; StoreCorrupted if the file fails authentication."""
        path = self._path(name)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        if len(raw) < _ENTRY_MIN_LEN or not raw.startswith(_ENTRY_MAGIC):
            raise StoreCorrupted(f"store entry {name!r} is malformed")
        try:
            plain = self._box.decrypt(raw[len(_ENTRY_MAGIC) :])
        except nacl.exceptions.CryptoError:
            raise StoreCorrupted(f"store entry {name!r} failed authentication") from None
        n = int.from_bytes(plain[:2], "big") if len(plain) >= 2 else -1
        if n < 0 or plain[2 : 2 + n] != name.encode("ascii"):
            raise StoreCorrupted(f"store entry {name!r} holds another entry's data")
        return plain[2 + n :]

    def exists(self, name: str) -> bool:
        return self._path(name).exists()

    def delete(self, name: str) -> bool:
        """Remove `name` durably; True if it existed."""
        return self.delete_many([name]) == 1

    def delete_many(self, names: Iterable[str]) -> int:
        """Remove several entries with one directory fsync; returns how many existed."""
        paths = [self._path(n) for n in names]
        removed = 0
        for path in paths:
            try:
                os.unlink(path)
                removed += 1
            except FileNotFoundError:
                pass
        if removed:
            fsync_dir(self._objects)
        return removed

    def names(self, prefix: str = "") -> list[str]:
        """Sorted entry names starting with `prefix`."""
        if not isinstance(prefix, str):
            raise InvalidInput("prefix must be a str")
        return sorted(n for n in os.listdir(self._objects) if n.startswith(prefix) and _NAME_RE.fullmatch(n))

    def __repr__(self) -> str:
        return f"EncryptedStore({str(self._dir)!r})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("EncryptedStore holds a key and cannot be pickled")


# ------------------------------------------------------------------------------------------------------------
# ledger of consumed one-time ids

_LEDGER_MAGIC = b"mpc-ray ledger\x00\x01"  # 16-byte file header
_REC_MAGIC = b"MRL\x01"
_REC_FMT = ">4sQII32s"  # magic, batch sequence number, index in batch, batch size, id
_REC_BODY = struct.calcsize(_REC_FMT)
_REC_SUM = 16
_REC_BYTES = _REC_BODY + _REC_SUM
_REC_PERSON = b"mpcray-ledger"


@dataclass(frozen=True)
class _Record:
    seq: int
    index: int
    count: int
    id: bytes


def _encode_record(seq: int, index: int, count: int, id_: bytes) -> bytes:
    body = struct.pack(_REC_FMT, _REC_MAGIC, seq, index, count, id_)
    return body + _checksum(body, _REC_SUM, _REC_PERSON)


def _decode_record(raw: bytes) -> _Record | None:
    body, digest = raw[:_REC_BODY], raw[_REC_BODY:]
    if _checksum(body, _REC_SUM, _REC_PERSON) != digest:
        return None
    magic, seq, index, count, id_ = struct.unpack(_REC_FMT, body)
    if magic != _REC_MAGIC or count < 1 or index >= count:
        return None
    return _Record(seq, index, count, id_)


class FileOwner:
    """An object that owns one open file descriptor `_fd` (guarded by `_lock`): close, context manager, and a
    finaliser that closes it if the owner is dropped."""

    _fd: int | None
    _lock: threading.RLock

    def close(self) -> None:
        """Release the file (and any lock on it). Idempotent."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass


class ConsumedLedger(FileOwner):
    """Append-only, fsync'd set of consumed 32-byte one-time ids, reloaded from `path` on open.

    Each `consume`/`consume_many` call appends one batch (records numbered seq, index, count) with one write and one
    fsync. On load, complete batches count; an incomplete batch at the end of the file is a write torn by a crash
    (never acknowledged) and is dropped and truncated away. Anything else that fails its checksum raises
    StoreCorrupted: losing an acknowledged id could let a presignature be used twice. The file is locked (flock)
    while open; a second opener gets StoreLocked. Thread-safe.
    """

    def __init__(self, path: Path | str) -> None:
        self._path = Path(path)
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._ids: dict[bytes, None] = {}  # insertion-ordered set
        self._pending: list[bytes] = []  # consumed in memory, journaled elsewhere, not yet written here
        self._next_seq = 1
        self._broken = False
        self.recovered_torn_bytes = 0  # how much of a torn tail the last open dropped (0 normally)
        self._path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not self._path.exists():
            _create_once(self._path, _LEDGER_MAGIC)
        fd = os.open(self._path, os.O_RDWR | os.O_APPEND | getattr(os, "O_CLOEXEC", 0))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreLocked(f"ledger {str(self._path)!r} is open elsewhere") from None
        try:
            self._load(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def _load(self, fd: int) -> None:
        size = os.fstat(fd).st_size
        data = os.pread(fd, size, 0) if size else b""
        if len(data) < len(_LEDGER_MAGIC) or not data.startswith(_LEDGER_MAGIC):
            raise StoreCorrupted("ledger header is malformed")
        body = data[len(_LEDGER_MAGIC) :]
        n_full = len(body) // _REC_BYTES
        recs = [_decode_record(body[i * _REC_BYTES : (i + 1) * _REC_BYTES]) for i in range(n_full)]
        i, seq = 0, 1
        while i < n_full:
            first = recs[i]
            if first is None or first.seq != seq or first.index != 0 or i + first.count > n_full:
                break
            batch = recs[i : i + first.count]
            if not all(
                r is not None and r.seq == seq and r.count == first.count and r.index == j for j, r in enumerate(batch)
            ):
                break
            for r in batch:
                self._ids[r.id] = None  # type: ignore[union-attr]
            i += first.count
            seq += 1
        # what follows the last complete batch may only be the one batch whose write was torn
        for r in recs[i:]:
            if r is not None and r.seq != seq:
                raise StoreCorrupted(f"ledger is corrupt before batch {r.seq} (acknowledged records damaged)")
        good = len(_LEDGER_MAGIC) + i * _REC_BYTES
        if good < len(data):
            self.recovered_torn_bytes = len(data) - good
            log.warning("ledger %s: dropping %d bytes of a torn final write", self._path, len(data) - good)
            os.ftruncate(fd, good)
            os.fsync(fd)
        self._next_seq = seq

    def _check_open(self) -> int:
        if self._fd is None:
            raise InvalidInput("ledger is closed")
        if self._broken:
            raise StoreCorrupted("an earlier ledger write failed; reopen the ledger")
        return self._fd

    def consume(self, id: bytes) -> None:
        """Record `id` as consumed, durably; AlreadyConsumed if it was consumed before."""
        self.consume_many([id])

    def consume_many(self, ids: Sequence[bytes], *, durable: bool = True) -> None:
        """Consume all `ids` with one write and one fsync, or none of them (AlreadyConsumed names the first).

        durable=False consumes them in memory only (a second consume of the same id fails at once) and leaves the
        write to the next `flush` or durable call. Only for a caller that has already made the consumption durable
        in a journal of its own (the holder's audit log) and replays that journal into the ledger after a crash."""
        batch = [_check_id(i) for i in ids]
        if not batch:
            return
        if len(batch) >= 2**32:
            raise InvalidInput("batch too large")
        with self._lock:
            self._check_open()
            seen: set[bytes] = set()
            for id_ in batch:
                if id_ in self._ids or id_ in seen:
                    raise AlreadyConsumed(id_)
                seen.add(id_)
            if not durable:
                self._pending.extend(batch)
                for id_ in batch:
                    self._ids[id_] = None
                return
            self._write_batch(self._pending + batch)
            self._pending = []
            for id_ in batch:
                self._ids[id_] = None

    def flush(self) -> int:
        """Write and fsync the ids consumed with durable=False since the last flush; returns how many."""
        with self._lock:
            self._check_open()
            pending, n = self._pending, len(self._pending)
            if n:
                self._write_batch(pending)
                self._pending = []
            return n

    def close(self) -> None:
        """Flush ids consumed with durable=False, then release the file. Idempotent."""
        with self._lock:
            if self._fd is not None and self._pending and not self._broken:
                try:
                    self._write_batch(self._pending)
                    self._pending = []
                except OSError:  # the owner's journal still holds them; its replay restores them
                    pass
        super().close()

    def _write_batch(self, batch: list[bytes]) -> None:
        fd = self._check_open()
        seq = self._next_seq
        data = b"".join(_encode_record(seq, j, len(batch), id_) for j, id_ in enumerate(batch))
        try:
            write_all(fd, data)
            os.fsync(fd)
        except BaseException:
            # the file may now end in a partial batch; the next open drops it. Until then refuse writes.
            self._broken = True
            raise
        self._next_seq = seq + 1

    def contains(self, id: bytes) -> bool:
        id_ = _check_id(id)
        with self._lock:
            return id_ in self._ids

    __contains__ = contains

    def __len__(self) -> int:
        with self._lock:
            return len(self._ids)

    def all_ids(self) -> list[bytes]:
        """Every consumed id, in consumption order."""
        with self._lock:
            return list(self._ids)

    @property
    def path(self) -> Path:
        return self._path

    def __repr__(self) -> str:
        state = "closed" if self._fd is None else f"{len(self._ids)} consumed"
        return f"ConsumedLedger({str(self._path)!r}, {state})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("ConsumedLedger owns an open, locked file and cannot be pickled")


# ------------------------------------------------------------------------------------------------------------
# vault of single-use secrets

_KIND_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


def _check_kind(kind: object) -> str:
    if not isinstance(kind, str) or _KIND_RE.fullmatch(kind) is None:
        raise InvalidInput("kind must be 1-32 characters of [a-z0-9_-], starting with a letter or digit")
    return kind


class SecretVault:
    """Single-use secrets keyed by (kind, 32-byte id), stored in `store`, consumption recorded in `ledger`.

    Ids form one namespace across kinds: consuming id X under any kind consumes it for all (fail-safe; use random
    ids). Once taken, an id can never be put or taken again, even if its file comes back from a backup.
    """

    def __init__(self, store: EncryptedStore, ledger: ConsumedLedger) -> None:
        self._store = store
        self._ledger = ledger
        self._lock = threading.RLock()

    @staticmethod
    def entry_name(kind: str, id_: bytes) -> str:
        """The store entry of (kind, id): presign workers on the same node write fresh secrets under it."""
        return f"{_check_kind(kind)}.{_check_id(id_).hex()}"

    def put(self, kind: str, id: bytes, secret: bytes) -> None:
        """Store a new single-use secret. AlreadyConsumed if `id` was consumed; InvalidInput if already stored."""
        kind, id_ = _check_kind(kind), _check_id(id)
        secret = _check_bytes(secret, "secret")
        with self._lock:
            if self._ledger.contains(id_):
                raise AlreadyConsumed(id_)
            name = self.entry_name(kind, id_)
            if self._store.exists(name):
                raise InvalidInput(f"a {kind} secret with id {id_.hex()[:16]}.. is already stored")
            self._store.put(name, secret)

    def take(self, kind: str, id: bytes) -> bytes:
        """Return the secret once: consumed in the ledger (fsync'd) before the file is deleted and bytes returned."""
        return self.take_many(kind, [id])[0]

    def take_many(
        self, kind: str, ids: Sequence[bytes], *, delete: bool = True, durable: bool = True
    ) -> list[bytes]:
        """`take` for several ids with one ledger fsync; all or nothing. Results in the order of `ids`.

        With delete=False the (already consumed, so unusable) files stay until `delete_consumed` removes them:
        a holder does that after answering, keeping the unlinks off the signing path. durable=False: see
        `ConsumedLedger.consume_many` (the caller journals the consumption before releasing anything)."""
        kind = _check_kind(kind)
        batch = [_check_id(i) for i in ids]
        with self._lock:
            seen: set[bytes] = set()
            for id_ in batch:
                if id_ in seen:
                    raise AlreadyConsumed(id_, "the same one-time id appears twice in one take")
                seen.add(id_)
                if self._ledger.contains(id_):
                    # a file may be back from a backup or a crash between consume and delete: remove it
                    self._store.delete(self.entry_name(kind, id_))
                    raise AlreadyConsumed(id_)
            # read and authenticate everything before consuming anything: a corrupt entry consumes nothing
            secrets: list[bytes] = []
            for id_ in batch:
                data = self._store.get(self.entry_name(kind, id_))
                if data is None:
                    raise SecretNotFound(f"no {kind} secret with id {id_.hex()[:16]}..")
                secrets.append(data)
            self._ledger.consume_many(batch, durable=durable)  # point of no return
            if delete:
                self._store.delete_many([self.entry_name(kind, id_) for id_ in batch])
            return secrets

    def delete_consumed(self, kind: str, ids: Sequence[bytes]) -> int:
        """Delete the files of `ids` that the ledger already holds as consumed (others are left alone)."""
        kind = _check_kind(kind)
        with self._lock:
            names = [self.entry_name(kind, i) for i in (_check_id(x) for x in ids) if self._ledger.contains(i)]
            return self._store.delete_many(names)

    def ids(self, kind: str) -> list[bytes]:
        """Ids of stored, unconsumed secrets of `kind`, sorted."""
        kind = _check_kind(kind)
        prefix = kind + "."
        out = []
        for name in self._store.names(prefix):
            hex_id = name[len(prefix) :]
            if len(hex_id) != 2 * ID_BYTES:
                continue
            try:
                id_ = bytes.fromhex(hex_id)
            except ValueError:
                continue
            if not self._ledger.contains(id_):
                out.append(id_)
        return out

    def count(self, kind: str) -> int:
        return len(self.ids(kind))

    def purge_consumed(self) -> int:
        """Delete stored files whose id is already consumed (crash leftovers, restored backups)."""
        with self._lock:
            stale = []
            for name in self._store.names():
                kind, _, hex_id = name.partition(".")
                if _KIND_RE.fullmatch(kind) and len(hex_id) == 2 * ID_BYTES:
                    try:
                        id_ = bytes.fromhex(hex_id)
                    except ValueError:
                        continue
                    if self._ledger.contains(id_):
                        stale.append(name)
            return self._store.delete_many(stale)

    def __repr__(self) -> str:
        return f"SecretVault({self._store!r}, {self._ledger!r})"
