"""A DKLs23 key on the runtime (a local Ray cluster, small pools): created with ``protocol="dkls23"`` (key generation,
then the pairwise setup), its pools refilled with DKLs23 presignatures, signed through the coordinator (one digest,
a batch, an HD child), through the one-hop path with leased presignatures, and after holders are killed: every
signature checked with coincurve and python-ecdsa."""

from __future__ import annotations

import hashlib
import time

import coincurve
import ecdsa
import pytest
import ray
from ecdsa.util import sigdecode_string

import mpc_ray
from mpc_ray.errors import MpcError
from mpc_ray.node.store import AlreadyConsumed
from mpc_ray.protocols.dkls23.sign import PresignaturePublic
from tests.support.cluster import call_holder

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def digest(i: int) -> bytes:
    return hashlib.sha256(b"dkls23 payment %d" % i).digest()


@pytest.fixture(scope="module")
def mpc():  # small pools: refills and on-demand presigning run often
    with mpc_ray.local_cluster(parties=3, threshold=2, security="112", kdf="min", pool_depth=8) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def key(mpc):
    return mpc.create_key("ecdsa-secp256k1", protocol="dkls23")


SEEN_R: set[int] = set()  # no presignature may sign twice


def verify(public_key: bytes, d: bytes, sig) -> bool:
    assert sig.r not in SEEN_R
    SEEN_R.add(sig.r)
    vk = ecdsa.VerifyingKey.from_string(public_key, curve=ecdsa.SECP256k1)
    assert vk.verify_digest(sig.r.to_bytes(32, "big") + sig.s.to_bytes(32, "big"), d, sigdecode=sigdecode_string)
    return coincurve.PublicKey(public_key).verify(sig.der(), d, hasher=None)


def sign_eventually(mpc, key_id: str, d: bytes, wait_s: float = 90.0):
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return mpc.sign(key_id, d)
        except MpcError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_create_sign_and_sign_many(mpc, key):
    assert key.protocol == "dkls23" and key.threshold == 2 and len(key.public_key) == 33
    assert mpc.status()["keys"][key.key_id]["protocol"] == "dkls23"
    assert call_holder(1, "key_views")[key.key_id]["protocol"] == "dkls23"
    assert verify(key.public_key, digest(0), mpc.sign(key.key_id, digest(0)))
    sigs = mpc.sign_many(key.key_id, [digest(i) for i in range(1, 13)])
    assert all(verify(key.public_key, digest(i + 1), s) for i, s in enumerate(sigs))
    child = mpc.derive(key.key_id, "m/0/7")
    assert verify(child.public_key, digest(20), mpc.sign(key.key_id, digest(20), path="m/0/7"))
    cggmp = mpc.create_key("ecdsa-secp256k1", protocol="cggmp21")  # the other protocol beside it
    assert cggmp.protocol == "cggmp21"
    assert mpc.create_key("ecdsa-secp256k1").protocol == "dkls23"  # the default (DEFAULT_ECDSA_PROTOCOL)
    assert verify(cggmp.public_key, digest(21), mpc.sign(cggmp.key_id, digest(21)))


def test_presign_workers_fill_the_dkls23_pools(mpc, key):
    """local_cluster runs a presign worker beside each holder: the refills run DKLs23 presigning there, each worker
    recording its sessions in its own ledger (not the holder's), and the holders sign with what the workers made."""
    mpc.wait_for_pools(key.key_id, 2, timeout=120)
    for party in (1, 2, 3):
        worker = ray.get_actor(f"mpc-worker-{party}-0", namespace="mpc-ray")
        ids = set(ray.get(worker.consumed_ids.remote(), timeout=30))
        assert ids and not ids & set(call_holder(party, "consumed_ids"))
        assert (mpc.state_dir(party) / "worker-0.ledger").exists()
    sigs = mpc.sign_many(key.key_id, [digest(50 + i) for i in range(4)])
    assert all(verify(key.public_key, digest(50 + i), s) for i, s in enumerate(sigs))


def test_one_hop_signing_with_leased_dkls23_presignatures(mpc, key):
    mpc.sign(key.key_id, digest(100))  # creates the client's lease cache
    leases = mpc._lease_book()
    deadline = time.monotonic() + 120
    while not leases._leases.get(key.key_id):
        assert time.monotonic() < deadline, "no presignature was leased"
        mpc.wait_for_pools(key.key_id, 2, timeout=60)  # refills start at the low-water mark (2 here)
        leases._fetch(key.key_id)
    pub = leases._leases[key.key_id][0]
    assert isinstance(pub, PresignaturePublic)
    request = mpc.credentials.operator_request(key.key_id, [digest(101)])
    out = leases.sign(key.key_id, request)
    assert out is not None, "the one-hop path fell back to the coordinator"
    sig = mpc_ray.types.Signature.ecdsa(int.from_bytes(out[0][:32], "big"), int.from_bytes(out[0][32:], "big"), out[1])
    assert verify(key.public_key, digest(101), sig)
    with pytest.raises(AlreadyConsumed):  # consumed on the signers: the lease cannot sign twice
        call_holder(pub.signers[0], "partial_sign", mpc.credentials.operator_request(key.key_id, [digest(102)]),
                    [(0, pub.presignature_id)])


def test_signing_goes_on_after_holders_are_killed(mpc, key):
    mpc.wait_for_pools(key.key_id, 1, timeout=120)  # pools refill below their low-water mark only
    mpc.kill_node(3)
    assert verify(key.public_key, digest(200), sign_eventually(mpc, key.key_id, digest(200)))
    # bring 3 back and take 1 away: only {2, 3} sign, which needs party 3's holder with its setup reloaded
    mpc.restart_node(3)
    mpc.kill_node(1)
    assert verify(key.public_key, digest(201), sign_eventually(mpc, key.key_id, digest(201)))
    # kill only holder 2's process: Ray restarts it and it reloads its store (setup included)
    ray.kill(ray.get_actor("mpc-holder-2", namespace="mpc-ray"), no_restart=False)
    sigs = None
    deadline = time.monotonic() + 120
    while sigs is None:
        try:
            sigs = mpc.sign_many(key.key_id, [digest(300 + i) for i in range(4)])
        except MpcError:
            assert time.monotonic() < deadline
            time.sleep(0.5)
    assert all(verify(key.public_key, digest(300 + i), s) for i, s in enumerate(sigs))
    mpc.restart_node(1)
