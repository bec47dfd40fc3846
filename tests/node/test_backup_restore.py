"""Backup and restore of a share holder (node/backup.py): an encrypted export under a passphrase; a restore never
revives a consumed presignature or nonce (every pooled one is discarded, the ledger only grows), refuses another
party's or an older epoch's backup, and brings a lost node back with the same identity and shares."""

from __future__ import annotations

import shutil

import coincurve
import pytest

from mpc_ray.crypto.secp256k1 import Point
from mpc_ray.errors import InvalidInput
from mpc_ray.node.backup import MAGIC, BackupError, open_backup, restore_params
from mpc_ray.node.principals import RequestKind
from mpc_ray.node.store import AlreadyConsumed, SecretNotFound
from mpc_ray.protocols.ecdsa import aux_info
from tests.support.committee import DIGEST, Committee, FixturePrimes

PASS = "correct horse battery staple"


@pytest.fixture(scope="module")
def c(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        primes = FixturePrimes()
        mp.setattr(aux_info, "generate_keypair", primes)
        c = Committee(tmp_path_factory.mktemp("backup"))
        c.primes = primes
        c.run("aux", [1, 2, 3], {"level": "112"})
        out = c.run("keygen", [1, 2, 3], {"key_id": "k1", "threshold": 2})  # the Committee adds the approvals
        c.public_key = Point.from_bytes(next(iter(out.values()))[1]["public_key"])
        c.frost = next(iter(c.run("frost-dkg", [1, 2, 3], {"key_id": "f1", "scheme": "eddsa-ed25519",
                                                             "threshold": 2}).values()))[1]["public_package"]
        c.allow_operator("k1")
        c.allow_operator("f1")
        yield c


def backup(c, party: int, passphrase: str = PASS) -> bytes:
    """`party`'s backup, as the admin quorum approves it."""
    return c.holders[party].backup(c.principals.approval(RequestKind.BACKUP, party=party), passphrase, "min")


def restore(c, party: int, blob: bytes, passphrase: str = PASS) -> dict:
    """Restore `blob` onto `party`'s holder, as the admin quorum approves it (that party, that blob)."""
    approval = c.principals.approval(RequestKind.RESTORE, **restore_params(party, blob))
    return c.holders[party].restore(approval, blob, passphrase)


def raw_sign(c, h, presig) -> list[int]:
    """The holder's partial for DIGEST with `presig`, for a fresh operator request."""
    return h.partial_sign(c.principals.raw("k1", [DIGEST]), [(0, presig.presignature_id)])


def verify(c, sig) -> None:
    assert coincurve.PublicKey(c.public_key.to_bytes()).verify(sig.der(), DIGEST, hasher=None)


def test_restore_after_signing_never_reuses_a_presignature(c):
    pool = c.presign("k1", [1, 2], count=3)
    verify(c, c.sign("k1", c.public_key, [1, 2], presig=pool[0]))  # spent before the backup
    nonces = c.principals.commit(c.holders[1], "f1", 2)
    peer = c.principals.commit(c.holders[2], "f1", 1)[0]
    blob = backup(c, 1)
    verify(c, c.sign("k1", c.public_key, [1, 2], presig=pool[1]))  # spent after the backup
    out = restore(c, 1, blob)
    assert out["discarded"] == 1 + 2  # pool[2] and both nonce pairs were still unspent: all discarded
    h = c.holders[1]
    assert h.presignature_count("k1") == 0 and h.frost_signer.nonce_count("f1") == 0
    for presig in pool:  # spent before, spent after, pooled: none signs again
        with pytest.raises(AlreadyConsumed):
            raw_sign(c, h, presig)
    with pytest.raises(AlreadyConsumed):
        h.frost_sign(c.principals.raw("f1", [b"m"]), [(0, nonces[0][0], nonces[0][1] + peer[1])])
    c.restart(1)  # and the consumption is durable
    with pytest.raises(AlreadyConsumed):
        raw_sign(c, c.holders[1], pool[2])
    verify(c, c.sign("k1", c.public_key, [1, 2]))  # fresh presignatures work
    c.frost_sign("f1", c.frost, [1, 3])


def test_restore_onto_a_new_disk_brings_the_party_back(c, tmp_path):
    blob = backup(c, 3)
    ident = c.holders[3].public_identity()
    x = c.holders[3].key("k1").x
    consumed = set(c.holders[3].consumed_ids())
    c.holders[3].close()
    shutil.rmtree(c.root / "party-3")  # the node's disk is lost
    c.holders[3] = c._open(3)  # a fresh holder: new node secret, new identity, no principals
    assert c.holders[3].public_identity() != ident
    restore(c, 3, blob)  # approved by the admins of the registry in the backup
    assert c.holders[3].public_identity() == ident and c.holders[3].key("k1").x == x
    assert consumed <= set(c.holders[3].consumed_ids())
    c.restart(3)
    verify(c, c.sign("k1", c.public_key, [2, 3]))
    c.frost_sign("f1", c.frost, [2, 3])


def test_backup_is_encrypted_and_tamper_evident(c):
    h = c.holders[2]
    blob = backup(c, 2)
    assert blob.startswith(MAGIC)
    secret = h.key("k1").x.to_bytes(32, "big")
    assert secret not in blob and h.identity.to_secret_bytes()[1:33] not in blob
    with pytest.raises(BackupError):
        open_backup(blob, "not the passphrase")
    for i in (len(MAGIC), len(MAGIC) + 13, len(blob) - 1):  # KDF costs, salt, ciphertext
        bad = bytearray(blob)
        bad[i] ^= 1
        with pytest.raises(BackupError):
            open_backup(bytes(bad), PASS)
    with pytest.raises(BackupError):
        open_backup(blob[:-20], PASS)
    with pytest.raises(InvalidInput):
        backup(c, 2, "short")
    with pytest.raises(BackupError):  # party 2's backup does not go into party 1
        restore(c, 1, blob)
    payload = open_backup(blob, PASS)
    assert "identity" in {e.name for e in payload.entries}
    assert not any(e.name.startswith("presig-") for e in payload.entries)
    assert "redacted" in repr(payload)


def test_a_backup_from_before_a_refresh_is_refused(c):
    old = backup(c, 2)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(aux_info, "generate_keypair", c.primes)
        c.lifecycle.refresh("k1", "ecdsa-secp256k1", [1, 2, 3])
    with pytest.raises(BackupError):
        restore(c, 2, old)
    assert c.holders[2].key_epoch("k1") == 1
    fresh = backup(c, 2)
    restore(c, 2, fresh)
    verify(c, c.sign("k1", c.public_key, [2, 3]))


def test_restore_discards_a_presignature_file_that_comes_back(c):
    h = c.holders[1]
    pub = c.presign("k1", [1, 3])[0]
    name = next(n for n in h.store.names("presig-k1."))
    raw = (h.store.directory / "objects" / name).read_bytes()
    blob = backup(c, 1)
    restore(c, 1, blob)
    (h.store.directory / "objects" / name).write_bytes(raw)  # e.g. a file-level snapshot restored beside it
    with pytest.raises(AlreadyConsumed):
        raw_sign(c, h, pub)
    with pytest.raises((AlreadyConsumed, SecretNotFound)):
        raw_sign(c, h, pub)
