"""HD signing on the Ray runtime: `mpc.derive` and `mpc.sign(..., path=)` for ECDSA and BIP340 keys.

The holders' state directories are prepared with TEST ONLY aux info (fixture primes) before the cluster starts, so
the coordinator skips the safe-prime search. The test itself takes under a second; starting the embedded Ray cluster
takes 20-60 s on a shared 2-core machine, so the module is marked slow (`pytest -m slow`); the same code paths run
in process, without Ray, in tests/protocols/test_hd_signing.py."""

from __future__ import annotations

import hashlib

import coincurve
import pytest
from bip_utils import Bip32ChainCode, Bip32KeyData, Bip32Secp256k1

import mpc_ray
from mpc_ray import sim
from mpc_ray.errors import InvalidInput
from mpc_ray.node.holder import ShareHolder
from mpc_ray.node.records import aux_to_bytes
from tests.support.primes import fixture_paillier_key

DIGEST = hashlib.sha256(b"agent 3 pays").digest()
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mpc(tmp_path_factory):
    root = tmp_path_factory.mktemp("hd-runtime")
    aux = sim.aux_info(3, "112", paillier_keys={i: fixture_paillier_key("112", i) for i in (1, 2, 3)})
    holders = {i: ShareHolder(i, str(root / f"party-{i}"), kdf="min") for i in (1, 2, 3)}
    ids = [h.public_identity() for h in holders.values()]
    for i, h in holders.items():
        h.set_directory(ids)
        h.store.put("aux", aux_to_bytes(aux[i]))
        h.ledger.close()
    with mpc_ray.local_cluster(parties=3, threshold=2, security="112", kdf="min", state_dir=str(root),
                               pool_depth=2, workers_per_node=0, refill=False) as cluster:
        yield cluster


def test_ecdsa_and_bip340_children_on_the_runtime(mpc):
    key = mpc.create_key("ecdsa-secp256k1")
    assert len(key.chain_code) == 32
    child = mpc.derive(key.key_id, "m/0/3")
    ref = Bip32Secp256k1.FromPublicKey(key.public_key, Bip32KeyData(chain_code=Bip32ChainCode(key.chain_code)))
    assert child.public_key == ref.DerivePath("m/0/3").PublicKey().RawCompressed().ToBytes()
    assert child.xpub == ref.DerivePath("m/0/3").PublicKey().ToExtended()
    sig = mpc.sign(key.key_id, DIGEST, path="m/0/3")
    recovered = coincurve.PublicKey.from_signature_and_message(
        sig.to_bytes() + bytes([sig.recovery_id]), DIGEST, hasher=None)
    assert recovered.format() == child.public_key
    with pytest.raises(InvalidInput):
        mpc.sign(key.key_id, DIGEST, path="m/0'/3")

    tr = mpc.create_key("schnorr-bip340")
    assert len(tr.chain_code) == 32
    tchild = mpc.derive(tr.key_id, "m/7")
    (s1, s2) = mpc.sign_many(tr.key_id, [b"spend 1", b"spend 2"], path="m/7")
    assert coincurve.PublicKeyXOnly(tchild.public_key).verify(s1.to_bytes(), b"spend 1")
    assert coincurve.PublicKeyXOnly(tchild.public_key).verify(s2.to_bytes(), b"spend 2")
