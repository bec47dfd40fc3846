"""Encrypted store, consumed-id ledger and single-use secret vault (Argon2id at MIN limits for speed)."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nacl.utils
import pytest
from nacl.pwhash import argon2id

from mpc_ray.errors import InvalidInput, MpcError
from mpc_ray.node import store as store_mod
from mpc_ray.node.store import (
    AlreadyConsumed,
    ConsumedLedger,
    EncryptedStore,
    SecretNotFound,
    SecretVault,
    StoreCorrupted,
    StoreLocked,
    derive_store_key,
)

FAST = {"opslimit": argon2id.OPSLIMIT_MIN, "memlimit": argon2id.MEMLIMIT_MIN}
NODE_SECRET = b"node-secret-0123456789abcdef-XYZ"
PLAINTEXT = b"PLAINTEXT-MARKER-" + bytes(range(48))


def _store(path: Path, secret: bytes = NODE_SECRET) -> EncryptedStore:
    return EncryptedStore(path, secret, **FAST)


def _entry(store: EncryptedStore, name: str) -> Path:
    return store.directory / "objects" / name


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _all_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def _id(i: int) -> bytes:
    return i.to_bytes(32, "big")


# key derivation ---------------------------------------------------------------------------------------------


def test_derive_store_key() -> None:
    salt = b"s" * 16
    key = derive_store_key(NODE_SECRET, salt, **FAST)
    assert len(key) == 32 and key == derive_store_key(NODE_SECRET, salt, **FAST)
    assert key != derive_store_key(NODE_SECRET, b"t" * 16, **FAST)
    assert key != derive_store_key(NODE_SECRET + b"!", salt, **FAST)
    for args in ((NODE_SECRET, b"short"), (b"tiny", salt), ("str", salt)):
        with pytest.raises(InvalidInput):
            derive_store_key(*args, **FAST)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        derive_store_key(NODE_SECRET, salt, opslimit=0, memlimit=argon2id.MEMLIMIT_MIN)
    assert derive_store_key(NODE_SECRET, salt) != key  # the INTERACTIVE defaults are other parameters


# encrypted store --------------------------------------------------------------------------------------------


def test_store_round_trip_and_reopen(tmp_path: Path) -> None:
    s = _store(tmp_path / "st")
    assert s.get("missing") is None
    s.put("key.share-1", PLAINTEXT)
    s.put("key.share-2", b"")
    s.put("other", b"x")
    assert s.get("key.share-1") == PLAINTEXT and s.get("key.share-2") == b""
    assert s.names("key.") == ["key.share-1", "key.share-2"] and s.names() == ["key.share-1", "key.share-2", "other"]
    s.put("key.share-1", b"replaced")
    assert s.get("key.share-1") == b"replaced"
    assert s.delete("other") is True and s.delete("other") is False and s.get("other") is None
    meta = (tmp_path / "st" / "store.meta").read_bytes()
    s2 = _store(tmp_path / "st")  # the salt file is created once and reused
    assert (tmp_path / "st" / "store.meta").read_bytes() == meta
    assert s2.get("key.share-1") == b"replaced" and s2.names() == ["key.share-1", "key.share-2"]
    # a store reopens with the KDF parameters recorded at creation, whatever the opener's defaults
    assert EncryptedStore(tmp_path / "st", NODE_SECRET).get("key.share-2") == b""


def test_store_wrong_secret(tmp_path: Path) -> None:
    s = _store(tmp_path / "a")
    s.put("x", PLAINTEXT)
    with pytest.raises(StoreCorrupted) as info:
        _store(tmp_path / "a", b"another-node-secret-0123456789ab")
    assert PLAINTEXT not in str(info.value).encode()
    # an entry copied from a store with another secret does not decrypt either
    other = _store(tmp_path / "b", b"another-node-secret-0123456789ab")
    shutil.copy(_entry(s, "x"), _entry(other, "x"))
    with pytest.raises(StoreCorrupted):
        other.get("x")


@pytest.mark.parametrize("offset", [0, 4, 10, 40, -1])
def test_store_flipped_byte(tmp_path: Path, offset: int) -> None:
    s = _store(tmp_path)
    s.put("x", PLAINTEXT)
    path = _entry(s, "x")
    _flip(path, offset % path.stat().st_size)
    with pytest.raises(StoreCorrupted) as info:
        s.get("x")
    assert PLAINTEXT.hex() not in str(info.value) and "PLAINTEXT" not in str(info.value)


def test_store_truncated_swapped_and_meta_tampering(tmp_path: Path) -> None:
    s = _store(tmp_path / "st")
    s.put("a", b"value of a")
    s.put("b", b"value of b")
    # swapping files between names is detected (the name is inside the ciphertext)
    shutil.copy(_entry(s, "a"), _entry(s, "b"))
    with pytest.raises(StoreCorrupted):
        s.get("b")
    _entry(s, "a").write_bytes(_entry(s, "a").read_bytes()[:20])
    with pytest.raises(StoreCorrupted):
        s.get("a")
    meta = tmp_path / "st" / "store.meta"
    _flip(meta, 30)  # in the salt
    with pytest.raises(StoreCorrupted):
        _store(tmp_path / "st")
    _flip(meta, 30)
    _store(tmp_path / "st")  # restored: opens again
    meta.unlink()  # losing the salt must not silently start a new store over old entries
    with pytest.raises(StoreCorrupted):
        _store(tmp_path / "st")


def test_store_no_plaintext_on_disk(tmp_path: Path) -> None:
    s = _store(tmp_path)
    secret = nacl.utils.random(64)
    s.put("presig.abc", PLAINTEXT + secret)
    s.put("presig.abc", secret + PLAINTEXT)  # overwritten values leave nothing either
    raw = _all_bytes(tmp_path)
    for needle in (secret, secret[:16], PLAINTEXT[:16], NODE_SECRET, NODE_SECRET.hex().encode(), secret.hex().encode()):
        assert needle not in raw
    assert NODE_SECRET.decode() not in repr(s)
    with pytest.raises(TypeError):
        pickle.dumps(s)
    # entries and directories are private to the node's user
    assert _entry(s, "presig.abc").stat().st_mode & 0o077 == 0


def test_store_names_validated(tmp_path: Path) -> None:
    s = _store(tmp_path)
    for bad in ("", "../x", "a/b", "a\\b", ".hidden", "-dash", "x" * 201, "sp ace", "é", None, b"bytes"):
        with pytest.raises(InvalidInput):
            s.put(bad, b"x")  # type: ignore[arg-type]
        with pytest.raises(InvalidInput):
            s.get(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        s.put("ok", "not bytes")  # type: ignore[arg-type]
    assert not list((tmp_path / "objects").iterdir())
    with pytest.raises(InvalidInput):
        EncryptedStore(tmp_path / "new", b"short", **FAST)


def test_store_atomic_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = _store(tmp_path)
    s.put("k", b"old value")
    fsynced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        fsynced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    s.put("k", b"new value")
    assert len(fsynced) == 2  # the temp file's data, then the directory entry
    fsynced.clear()

    def crash(src: Any, dst: Any) -> None:
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        s.put("k", b"lost value")
    monkeypatch.undo()
    assert s.get("k") == b"new value"  # the old value is intact, never half-written
    assert sorted(p.name for p in (tmp_path / "objects").iterdir()) == ["k"]  # the temp file was removed
    # a temp file left by a hard crash is ignored and cleaned on open
    leftover = tmp_path / "objects" / ".tmp-deadbeef"
    leftover.write_bytes(b"partial")
    in_progress = tmp_path / "objects" / ".tmp-cafebabe"  # another process on the node is writing it right now
    in_progress.write_bytes(b"partial")
    old = time.time() - 3600
    os.utime(leftover, (old, old))
    assert s.names() == ["k"]
    _store(tmp_path)
    assert not leftover.exists()
    assert in_progress.exists()


# ledger -----------------------------------------------------------------------------------------------------


def test_ledger_consume_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    with ConsumedLedger(path) as led:
        led.consume(_id(1))
        with pytest.raises(AlreadyConsumed) as info:
            led.consume(_id(1))
        assert info.value.id == _id(1)
        led.consume_many([_id(2), _id(3)])
        assert len(led) == 3 and led.contains(_id(2)) and _id(3) in led and not led.contains(_id(4))
    with ConsumedLedger(path) as led:
        assert led.all_ids() == [_id(1), _id(2), _id(3)]
        with pytest.raises(AlreadyConsumed):
            led.consume(_id(3))
        for bad in (b"short", "x" * 32, _id(1) + b"\x00"):
            with pytest.raises(InvalidInput):
                led.consume(bad)  # type: ignore[arg-type]
    assert path.stat().st_size == 16 + 3 * store_mod._REC_BYTES


def test_ledger_survives_process_crash(tmp_path: Path) -> None:
    # a child process consumes and dies without closing anything; the id stays consumed
    path = tmp_path / "ledger"
    code = (
        "import os, sys\n"
        "from mpc_ray.node.store import ConsumedLedger\n"
        "led = ConsumedLedger(sys.argv[1])\n"
        "led.consume(bytes([7]) * 32)\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, cwd=Path(__file__).parents[2])
    with ConsumedLedger(path) as led:
        assert led.contains(bytes([7]) * 32)
        with pytest.raises(AlreadyConsumed):
            led.consume(bytes([7]) * 32)


def test_ledger_group_commit_all_or_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ledger"
    with ConsumedLedger(path) as led:
        led.consume(_id(5))
        size = path.stat().st_size
        with pytest.raises(AlreadyConsumed):
            led.consume_many([_id(10), _id(11), _id(5), _id(12)])
        with pytest.raises(AlreadyConsumed):  # the same id twice in one batch
            led.consume_many([_id(20), _id(21), _id(20)])
        assert len(led) == 1 and path.stat().st_size == size
        assert not any(led.contains(_id(i)) for i in (10, 11, 12, 20, 21))
        calls: list[int] = []
        real_fsync = os.fsync
        me = threading.get_ident()

        def counting_fsync(fd: int) -> None:
            if threading.get_ident() == me:  # not a background thread another test's holder left running
                calls.append(fd)
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", counting_fsync)
        led.consume_many([_id(100 + i) for i in range(200)])
        assert len(calls) == 1  # one fsync for the whole batch
        monkeypatch.undo()
    with ConsumedLedger(path) as led:
        assert len(led) == 201 and not led.contains(_id(10))


def test_ledger_torn_tail_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    with ConsumedLedger(path) as led:
        led.consume(_id(1))
        led.consume_many([_id(2), _id(3)])
    good = path.read_bytes()
    batch = b"".join(store_mod._encode_record(3, j, 3, _id(40 + j)) for j in range(3))
    torn_tails = [
        batch[:10],  # a partial record
        batch[: store_mod._REC_BYTES],  # one complete record of an incomplete batch
        batch[: 2 * store_mod._REC_BYTES + 5],
        b"\x00" * store_mod._REC_BYTES,  # zeros where the filesystem extended the file
        b"\x00" * store_mod._REC_BYTES + batch[store_mod._REC_BYTES :],  # pages persisted out of order
    ]
    for tail in torn_tails:
        path.write_bytes(good + tail)
        with ConsumedLedger(path) as led:
            assert led.all_ids() == [_id(1), _id(2), _id(3)] and led.recovered_torn_bytes == len(tail)
            assert not led.contains(_id(40))  # an unacknowledged batch does not count, not even in part
        assert path.read_bytes() == good  # truncated back to the last complete batch
        with ConsumedLedger(path) as led:  # appending after recovery keeps the file consistent
            led.consume(_id(9))
        with ConsumedLedger(path) as led:
            assert led.contains(_id(9)) and led.recovered_torn_bytes == 0
        path.write_bytes(good)


def test_ledger_corruption_before_tail_fails_closed(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    with ConsumedLedger(path) as led:
        for i in range(4):
            led.consume(_id(i))
    _flip(path, 16 + store_mod._REC_BYTES + 20)  # damage batch 2 of 4: acknowledged ids would be lost
    with pytest.raises(StoreCorrupted):
        ConsumedLedger(path)
    path.write_bytes(b"not a ledger at all")
    with pytest.raises(StoreCorrupted):
        ConsumedLedger(path)


def test_ledger_single_opener(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    led = ConsumedLedger(path)
    with pytest.raises(StoreLocked):
        ConsumedLedger(path)
    led.close()
    ConsumedLedger(path).close()
    with pytest.raises(InvalidInput):
        led.consume(_id(1))


# vault ------------------------------------------------------------------------------------------------------


def _vault(root: Path) -> tuple[SecretVault, ConsumedLedger]:
    ledger = ConsumedLedger(root / "consumed.ledger")
    return SecretVault(_store(root / "store"), ledger), ledger


def test_vault_take_is_single_use_across_reopen(tmp_path: Path) -> None:
    vault, ledger = _vault(tmp_path)
    vault.put("presig", _id(1), b"presig share 1")
    vault.put("presig", _id(2), b"presig share 2")
    vault.put("nonce", _id(3), b"nonce 3")
    assert vault.count("presig") == 2 and vault.ids("presig") == [_id(1), _id(2)] and vault.ids("nonce") == [_id(3)]
    assert vault.take("presig", _id(1)) == b"presig share 1"
    with pytest.raises(AlreadyConsumed):
        vault.take("presig", _id(1))
    with pytest.raises(AlreadyConsumed):  # a consumed id cannot be filled again
        vault.put("presig", _id(1), b"again")
    with pytest.raises(InvalidInput):  # nor overwritten while unconsumed
        vault.put("presig", _id(2), b"other")
    with pytest.raises(SecretNotFound):
        vault.take("presig", _id(99))
    assert ledger.contains(_id(1)) and vault.count("presig") == 1
    ledger.close()
    vault, ledger = _vault(tmp_path)  # a restart
    with pytest.raises(AlreadyConsumed):
        vault.take("presig", _id(1))
    assert vault.take("presig", _id(2)) == b"presig share 2" and vault.count("presig") == 0
    ledger.close()


def test_vault_restored_backup_does_not_revive(tmp_path: Path) -> None:
    vault, ledger = _vault(tmp_path)
    vault.put("presig", _id(7), b"share 7")
    objects = tmp_path / "store" / "objects"
    backup = {p.name: p.read_bytes() for p in objects.iterdir()}
    assert vault.take("presig", _id(7)) == b"share 7"
    assert not list(objects.iterdir())
    for name, data in backup.items():  # an operator restores last night's backup
        (objects / name).write_bytes(data)
    ledger.close()
    vault, ledger = _vault(tmp_path)
    assert vault.ids("presig") == [] and vault.count("presig") == 0
    with pytest.raises(AlreadyConsumed):
        vault.take("presig", _id(7))
    assert not list(objects.iterdir())  # and the revived file is gone
    for name, data in backup.items():
        (objects / name).write_bytes(data)
    assert vault.purge_consumed() == 1
    ledger.close()


def test_vault_crash_between_consume_and_delete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vault, ledger = _vault(tmp_path)
    vault.put("nonce", _id(1), b"nonce one")

    def crash(self: EncryptedStore, names: Any) -> int:
        raise OSError("simulated crash after the ledger write")

    monkeypatch.setattr(EncryptedStore, "delete_many", crash)
    with pytest.raises(OSError):
        vault.take("nonce", _id(1))
    monkeypatch.undo()
    ledger.close()
    vault, ledger = _vault(tmp_path)
    assert vault.ids("nonce") == []
    with pytest.raises(AlreadyConsumed):
        vault.take("nonce", _id(1))
    ledger.close()


def test_vault_take_many(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vault, ledger = _vault(tmp_path)
    for i in range(1, 6):
        vault.put("presig", _id(i), b"share %d" % i)
    assert vault.take_many("presig", [_id(3), _id(1)]) == [b"share 3", b"share 1"]
    # all or nothing: one consumed, one missing, or one corrupt id spoils the batch and consumes nothing
    with pytest.raises(AlreadyConsumed):
        vault.take_many("presig", [_id(2), _id(3)])
    with pytest.raises(SecretNotFound):
        vault.take_many("presig", [_id(2), _id(50)])
    _flip(tmp_path / "store" / "objects" / f"presig.{_id(5).hex()}", 30)
    with pytest.raises(StoreCorrupted):
        vault.take_many("presig", [_id(2), _id(5)])
    with pytest.raises(AlreadyConsumed):
        vault.take_many("presig", [_id(2), _id(2)])
    assert not ledger.contains(_id(2)) and not ledger.contains(_id(5)) and len(ledger) == 2
    calls: list[int] = []
    real = ConsumedLedger.consume_many

    def counting(self: ConsumedLedger, ids: Sequence[bytes], *, durable: bool = True) -> None:
        calls.append(len(ids))
        real(self, ids, durable=durable)

    monkeypatch.setattr(ConsumedLedger, "consume_many", counting)
    assert vault.take_many("presig", [_id(2), _id(4)]) == [b"share 2", b"share 4"]
    assert calls == [2]  # one group commit
    assert vault.ids("presig") == [_id(5)]
    ledger.close()


def test_vault_validation_and_errors_are_typed(tmp_path: Path) -> None:
    vault, ledger = _vault(tmp_path)
    for kind, id_ in (("Presig", _id(1)), ("a.b", _id(1)), ("", _id(1)), ("presig", b"short")):
        with pytest.raises(InvalidInput):
            vault.put(kind, id_, b"x")
    assert issubclass(StoreCorrupted, MpcError) and issubclass(AlreadyConsumed, MpcError)
    assert "share" not in repr(vault)
    ledger.close()


def test_ledger_deferred_consumption_is_exclusive_at_once_and_written_by_flush(tmp_path: Path) -> None:
    """durable=False: a second consume fails immediately; the ids reach the file at flush (or close), not before."""
    path = tmp_path / "l.ledger"
    led = ConsumedLedger(path)
    led.consume_many([_id(1), _id(2)], durable=False)
    with pytest.raises(AlreadyConsumed):
        led.consume(_id(2))
    assert _id(1) in led
    size_before = path.stat().st_size
    led.consume_many([_id(3)])  # a durable batch carries the pending ids with it
    assert path.stat().st_size > size_before
    led.consume_many([_id(4)], durable=False)
    assert led.flush() == 1 and led.flush() == 0
    led.consume_many([_id(5)], durable=False)
    led.close()
    reopened = ConsumedLedger(path)
    assert [reopened.contains(_id(i)) for i in range(1, 6)] == [True] * 5


def test_ledger_deferred_ids_are_lost_without_flush_if_the_process_dies(tmp_path: Path) -> None:
    """What durable=False means: without flush, a crash forgets them (the caller's journal must restore them)."""
    path = tmp_path / "l.ledger"
    led = ConsumedLedger(path)
    led.consume_many([_id(7)], durable=False)
    data = path.read_bytes()  # what a crash right now would leave on disk
    led.close()
    path.write_bytes(data)
    assert _id(7) not in ConsumedLedger(path)


def test_already_consumed_survives_pickling_with_its_id() -> None:
    """Ray ships a holder's exception to the caller by pickling it: the type and the id must arrive intact."""
    import pickle

    e = pickle.loads(pickle.dumps(AlreadyConsumed(_id(9))))
    assert isinstance(e, AlreadyConsumed) and e.id == _id(9) and _id(9).hex()[:16] in str(e)
