"""The key lifecycle on share holders, in one process, driven as the coordinator drives them: epochs, two-phase
commit with signed confirmations, destruction of the old epoch's shares, presignatures and nonces."""

from __future__ import annotations

import coincurve
import pytest

from mpc_ray.coordinator.sessions import SessionSpec
from mpc_ray.crypto.secp256k1 import Point
from mpc_ray.errors import InvalidInput
from mpc_ray.node.holder import HolderNotReady
from mpc_ray.node.lifecycle import StaleEpoch
from mpc_ray.node.store import AlreadyConsumed
from mpc_ray.protocols.frost import verify_signature
from mpc_ray.node.frost_records import public_package_from_bytes
from mpc_ray.node.holder import BeginRequest
from mpc_ray.protocols.ecdsa import aux_info
from tests.support.committee import DIGEST, Committee, FixturePrimes


def verify(public_key: Point, sig) -> None:
    assert coincurve.PublicKey(public_key.to_bytes()).verify(sig.der(), DIGEST, hasher=None)


@pytest.fixture(scope="module")
def ecdsa(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(aux_info, "generate_keypair", FixturePrimes())
        c = Committee(tmp_path_factory.mktemp("lifecycle-ecdsa"))
        c.run("aux", [1, 2, 3], {"level": "112"})
        out = c.run("keygen", [1, 2, 3], {"key_id": "k1", "threshold": 2})
        c.public_key = Point.from_bytes(next(iter(out.values()))[1]["public_key"])
        yield c


def test_refresh_destroys_the_old_epoch_and_keeps_the_key(ecdsa):
    c = ecdsa
    pooled = c.presign("k1", [1, 2], count=2) + c.presign("k1", [1, 3])
    verify(c.public_key, c.sign("k1", c.public_key, [1, 2], presig=pooled[0]))  # one spent, two pooled
    old_x = {p: c.holders[p].key("k1").x for p in (1, 2, 3)}
    old_n = c.holders[1].aux().paillier.public.n
    result = c.lifecycle.refresh("k1", "ecdsa-secp256k1", [1, 2, 3])
    assert result.epoch == 1 and all(c.holders[p].key_epoch("k1") == 1 for p in (1, 2, 3))
    assert result.destroyed == {1: 2, 2: 1, 3: 1}  # every unspent one
    for p in (1, 2, 3):
        h = c.holders[p]
        assert h.presignature_count("k1") == 0
        assert h.key("k1").x != old_x[p] and h.key("k1").public_key == c.public_key
    assert c.holders[1].store.get("aux-k1") is not None

    assert c.holders[1].state.keys.key_aux("k1").paillier.public.n != old_n
    for presig in pooled[1:]:  # the pooled presignatures of the old epoch are consumed for good
        with pytest.raises(AlreadyConsumed):
            c.holders[1].partial_sign(c.principals.raw("k1", [DIGEST]), [(0, presig.presignature_id)])
    c.restart(1)  # durable: the new epoch comes back from the store
    assert c.holders[1].key_epoch("k1") == 1
    verify(c.public_key, c.sign("k1", c.public_key, [1, 3]))
    verify(c.public_key, c.sign("k1", c.public_key, [2, 3]))


def test_presignature_in_flight_across_an_epoch_switch_is_not_stored(ecdsa, tmp_path):
    c = ecdsa
    from mpc_ray.coordinator.sessions import finished, new_sid, route

    sid, parties = new_sid("presign"), [1, 2]
    res = {i: c.principals.begin(c.holders[i], [BeginRequest("presign", sid, parties, {"key_id": "k1"})])
           for i in parties}
    epoch = c.holders[1].key_epoch("k1")
    c.lifecycle.refresh("k1", "ecdsa-secp256k1", [1, 2, 3])
    assert c.holders[1].key_epoch("k1") == epoch + 1
    before = c.holders[1].presignature_count("k1")
    with pytest.raises(StaleEpoch):
        while finished(parties, [sid], res) is None:
            inputs = route(parties, [sid], res)
            res = {i: c.holders[i].step(inputs[i]) for i in parties}
    assert c.holders[1].presignature_count("k1") == before == 0


def test_commit_needs_every_new_members_confirmation(ecdsa):
    c = ecdsa
    lc = c.lifecycle
    epoch = c.holders[1].key_epoch("k1") + 1
    results = lc.run(SessionSpec("refresh", [1, 2, 3], {"key_id": "k1", "epoch": epoch}))
    digest = results[1]["digest"]
    confirmations = {p: c.holders[p].lifecycle_confirm("k1", epoch)["signature"] for p in (1, 2, 3)}
    x_before = c.holders[1].key("k1").x
    forged = {**confirmations, 3: confirmations[2]}  # party 3's confirmation missing: party 2 signed twice
    for bad in (forged, {1: confirmations[1], 2: confirmations[2]}):
        with pytest.raises(InvalidInput):
            c.holders[1].lifecycle_commit("k1", epoch, digest, bad)
    with pytest.raises(InvalidInput):
        c.holders[1].lifecycle_commit("k1", epoch, b"\x00" * 32, confirmations)
    assert c.holders[1].key("k1").x == x_before and c.holders[1].lifecycle.pending("k1") is not None
    with pytest.raises(InvalidInput):  # a second run is refused while one is pending
        lc.run(SessionSpec("refresh", [1, 2, 3], {"key_id": "k1", "epoch": epoch}))
    # a partial commit: party 3 does not get the commit yet, then the retry completes it
    for p in (1, 2):
        c.holders[p].lifecycle_commit("k1", epoch, digest, confirmations)
    with pytest.raises(InvalidInput):  # the committee disagrees on the epoch: no new run until it is finished
        lc.refresh("k1", "ecdsa-secp256k1", [1, 2, 3])
    for p in (1, 2, 3):  # idempotent
        c.holders[p].lifecycle_commit("k1", epoch, digest, confirmations)
    verify(c.public_key, c.sign("k1", c.public_key, [1, 3]))


def test_refresh_refuses_a_wrong_epoch_and_discards_on_failure(ecdsa):
    c = ecdsa
    epoch = c.holders[1].key_epoch("k1")
    with pytest.raises(InvalidInput):
        c.run("refresh", [1, 2, 3], {"key_id": "k1", "epoch": epoch})  # not the next epoch
    with pytest.raises(InvalidInput):
        c.run("refresh", [1, 2], {"key_id": "k1", "epoch": epoch + 1})  # not every party


def test_new_committee_reusing_an_old_modulus_is_named(ecdsa, monkeypatch):
    from mpc_ray.errors import ProtocolAbort
    from tests.support.primes import fixture_paillier_key

    c = ecdsa
    c.add(4, 5)
    old = c.holders[2].state.keys.key_aux("k1")
    spare = [k for k in (fixture_paillier_key("112", i) for i in range(12))
             if int(k.public.n) not in {int(a.n) for a in old.public.values()}]
    handed: list[int] = []

    def keypair(bits, **_):  # party 4 (the fourth to start) brings party 2's modulus of the old committee
        handed.append(1)
        key = old.paillier if len(handed) == 4 else spare[len(handed)]
        return key, key.public

    monkeypatch.setattr(aux_info, "generate_keypair", keypair)
    epoch = c.holders[1].key_epoch("k1")
    with pytest.raises(ProtocolAbort) as e:
        c.lifecycle.reshare("k1", "ecdsa-secp256k1", [1, 2, 3], [1, 2, 3, 4, 5], 3)
    assert (e.value.culprit, e.value.check) == (4, "reshare-aux.stale_modulus")
    for p in (1, 2, 3, 4, 5):  # nothing changed, nothing pending
        assert c.holders[p].lifecycle.pending("k1") is None
        assert c.holders[p].key_epoch("k1") == (epoch if p <= 3 else 0)
    assert c.holders[4].store.get("key-k1") is None


@pytest.mark.slow  # ~15 s on an idle machine, much more on a busy one; the Ray test covers the same move
def test_reshare_2_of_3_to_3_of_5_then_remove_two(ecdsa):
    c = ecdsa
    if 4 not in c.holders:  # run on its own (-m slow), no earlier test has added the new members
        c.add(4, 5)
    moved = c.lifecycle.reshare("k1", "ecdsa-secp256k1", [1, 2, 3], [1, 2, 3, 4, 5], 3)
    assert moved.parties == [1, 2, 3, 4, 5] and moved.threshold == 3
    for p in (1, 2, 3, 4, 5):
        k = c.holders[p].key("k1")
        assert (k.public_key, k.threshold, k.parties) == (c.public_key, 3, (1, 2, 3, 4, 5))
    verify(c.public_key, c.sign("k1", c.public_key, [3, 4, 5]))
    verify(c.public_key, c.sign("k1", c.public_key, [1, 2, 5]))
    c.presign("k1", [2, 3, 5])  # pooled at party 2 and 5, which are about to leave
    smaller = c.lifecycle.reshare("k1", "ecdsa-secp256k1", [1, 2, 3, 4, 5], [1, 3, 4], 2)
    assert smaller.parties == [1, 3, 4] and smaller.destroyed[2] == 1 and smaller.destroyed[5] == 1
    for gone in (2, 5):
        h = c.holders[gone]
        assert h.store.get("key-k1") is None and h.presignature_count("k1") == 0
        with pytest.raises(HolderNotReady):
            h.key("k1")
        with pytest.raises(HolderNotReady):
            c.principals.begin(h, [BeginRequest("presign", b"presign:gone", [gone, 3], {"key_id": "k1"})])
    verify(c.public_key, c.sign("k1", c.public_key, [1, 4]))
    verify(c.public_key, c.sign("k1", c.public_key, [3, 4]))


@pytest.fixture(scope="module", params=["eddsa-ed25519", "schnorr-bip340"])
def frost(request, tmp_path_factory):
    c = Committee(tmp_path_factory.mktemp("lifecycle-frost"))
    scheme = request.param
    out = c.run("frost-dkg", [1, 2, 3], {"key_id": "f1", "scheme": scheme, "threshold": 2})
    c.scheme, c.public = scheme, next(iter(out.values()))[1]["public_package"]
    return c


def test_frost_refresh_and_reshare(frost):
    c = frost
    group_key = public_package_from_bytes(c.public).group_key
    c.frost_sign("f1", c.public, [1, 2])
    pooled = {p: c.principals.commit(c.holders[p], "f1", 3) for p in (1, 2, 3)}
    old_share = c.holders[1].frost_signer.key_package("f1").signing_share
    r = c.lifecycle.refresh("f1", c.scheme, [1, 2, 3], old_public=c.public, threshold=2)
    assert r.destroyed == {1: 3, 2: 3, 3: 3} and r.epoch == 1

    assert c.holders[1].frost_signer.key_package("f1").signing_share != old_share
    assert all(c.holders[p].frost_signer.nonce_count("f1") == 0 for p in (1, 2, 3))
    with pytest.raises(AlreadyConsumed):  # an old epoch's nonce never signs again
        clist = b"".join(pooled[p][0][1] for p in (1, 2))
        c.holders[1].frost_sign(c.principals.raw("f1", [b"m"]), [(0, pooled[1][0][0], clist)])
    sig = c.frost_sign("f1", r.public, [1, 3], b"after refresh")
    assert verify_signature(public_package_from_bytes(r.public).suite, group_key, b"after refresh", sig)
    c.add(4, 5)
    moved = c.lifecycle.reshare("f1", c.scheme, [1, 2, 3], [1, 3, 4, 5], 3, dealers=[2, 3], old_public=r.public)
    assert public_package_from_bytes(moved.public).group_key == group_key
    c.frost_sign("f1", moved.public, [3, 4, 5])
    assert c.holders[2].store.get("frost-f1") is None  # removed after the new committee confirmed
    with pytest.raises(HolderNotReady):
        c.principals.commit(c.holders[2], "f1", 1)


def test_directory_extension_never_changes_a_member(tmp_path):
    from mpc_ray.node.holder import ShareHolder

    c = Committee(tmp_path, parties=(1, 2))
    impostor = ShareHolder(2, str(tmp_path / "impostor-2"), kdf="min").public_identity()
    newcomer = ShareHolder(3, str(tmp_path / "party-3"), kdf="min").public_identity()
    before = dict(c.holders[1].directory)
    approval = c.principals.directory_approval([newcomer])  # the admins approved the newcomer
    with pytest.raises(InvalidInput):  # party 2 swapped for another key, even alongside a genuine newcomer
        c.holders[1].extend_directory(approval, [impostor, newcomer])
    assert c.holders[1].directory == before
    c.holders[1].extend_directory(approval, [newcomer])
    assert set(c.holders[1].directory) == {1, 2, 3}
    c.restart(1)
    assert c.holders[1].directory[3] == newcomer  # durable
