"""The key lifecycle on the Ray runtime: refresh, and a 2-of-3 -> 3-of-5 move onto nodes in new regions, then a
removal, with the same public key and address throughout. One cluster for the module."""

from __future__ import annotations

import hashlib

import coincurve
import pytest
import ray

import mpc_ray
from mpc_ray.errors import PolicyDenied, Unauthorized
from mpc_ray.node.holder import HolderNotReady
from mpc_ray.protocols.frost import verify_signature, get_suite
from mpc_ray.node.frost_records import public_package_from_bytes

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

DIGEST = hashlib.sha256(b"same key, new committee").digest()


@pytest.fixture(scope="module")
def mpc():
    with mpc_ray.local_cluster(parties=3, threshold=2, security="112", kdf="min", pool_depth=4) as cluster:
        yield cluster


def holder(party: int):
    return ray.get_actor(f"mpc-holder-{party}", namespace="mpc-ray")


def verify(public_key: bytes, sig) -> None:
    assert coincurve.PublicKey(public_key).verify(sig.der(), DIGEST, hasher=None)


def test_ecdsa_refresh_then_move_to_3_of_5_with_new_regions(mpc):
    key = mpc.create_key("ecdsa-secp256k1", key_id="treasury")
    address = mpc.evm_wallet(key.key_id).address
    verify(key.public_key, mpc.sign(key.key_id, DIGEST))
    mpc.wait_for_pools(key.key_id, 1, timeout=120)
    old_x_epoch = ray.get(holder(1).key_epoch.remote(key.key_id))

    out = mpc.refresh_key(key.key_id)
    assert out["epoch"] == old_x_epoch + 1 and out["parties"] == [1, 2, 3]
    assert sum(out["destroyed"].values()) > 0  # the pooled presignatures of the old epoch
    verify(key.public_key, mpc.sign(key.key_id, DIGEST))

    mpc.add_node(4, 5)
    assert ray.get(holder(4).node_labels.remote())["region"] == "region-4"
    moved = mpc.reshare_key(key.key_id, parties=[1, 2, 3, 4, 5], threshold=3)
    assert moved["parties"] == [1, 2, 3, 4, 5] and moved["threshold"] == 3 and moved["epoch"] == out["epoch"] + 1
    assert mpc.status()["keys"][key.key_id]["threshold"] == 3
    sigs = mpc.sign_many(key.key_id, [DIGEST] * 3)
    for sig in sigs:
        verify(key.public_key, sig)
    assert mpc.evm_wallet(key.key_id).address == address

    smaller = mpc.reshare_key(key.key_id, parties=[1, 3, 4], threshold=2)
    assert smaller["parties"] == [1, 3, 4]
    with pytest.raises(HolderNotReady):  # party 2 deleted its share after the new committee confirmed
        ray.get(holder(2).lifecycle_public.remote(key.key_id))
    verify(key.public_key, mpc.sign(key.key_id, DIGEST))
    assert mpc.evm_wallet(key.key_id).address == address
    # the committee grew: a new key uses the new members too (committee aux info set up again by add_node)
    fresh = mpc.create_key("ecdsa-secp256k1", threshold=3)
    assert fresh.parties == 5
    verify(fresh.public_key, mpc.sign(fresh.key_id, DIGEST))


@pytest.mark.parametrize("scheme", ["eddsa-ed25519", "schnorr-bip340"])
def test_frost_refresh_and_reshare(mpc, scheme):
    key = mpc.create_key(scheme)
    mpc.sign(key.key_id, b"before")
    out = mpc.refresh_key(key.key_id)
    assert out["epoch"] == 1
    parties = [1, 3, 4] if 4 in mpc.status()["parties"] else [1, 2, 3]
    moved = mpc.reshare_key(key.key_id, parties=parties, threshold=2)
    assert moved["parties"] == parties
    sig = mpc.sign(key.key_id, b"after")
    suite = get_suite(scheme)
    pub = public_package_from_bytes(ray.get(holder(parties[0]).lifecycle_public.remote(key.key_id))["public"])
    assert verify_signature(suite, pub.group_key, b"after", sig.to_bytes())
    assert mpc.status()["keys"][key.key_id]["public_key"] == key.public_key.hex()


def test_restore_on_the_runtime_never_reuses_a_presignature(mpc):
    key_id = "treasury"  # 2-of-{1, 3, 4} after the first test
    pk = bytes.fromhex(mpc.status()["keys"][key_id]["public_key"])
    rs = [mpc.sign(key_id, DIGEST).r]
    with pytest.raises(Unauthorized):  # the holder's actor exports nothing without the admins' approval
        ray.get(holder(1).backup.remote(None, "runtime backup passphrase", "min"))
    with pytest.raises(PolicyDenied):  # an approval names the party it is for
        ray.get(holder(1).backup.remote(mpc.backup_request(3), "runtime backup passphrase", "min"))
    blob = ray.get(holder(1).backup.remote(mpc.backup_request(1), "runtime backup passphrase", "min"))  # on its node
    rs.append(mpc.sign(key_id, DIGEST).r)
    mpc.wait_for_pools(key_id, 1, timeout=120)
    with pytest.raises(PolicyDenied):  # a restore approval names the blob: another one is refused
        ray.get(holder(1).restore.remote(mpc.restore_request(1, blob + b"x"), blob, "runtime backup passphrase"))
    out = ray.get(holder(1).restore.remote(mpc.restore_request(1, blob), blob, "runtime backup passphrase"))
    assert out["discarded"] >= 1 and ray.get(holder(1).presignature_count.remote(key_id)) == 0
    assert mpc.drop_pools(1) >= 1
    for sig in mpc.sign_many(key_id, [DIGEST] * 3):
        verify(pk, sig)
        rs.append(sig.r)
    assert len(set(rs)) == len(rs)  # no presignature signed twice
