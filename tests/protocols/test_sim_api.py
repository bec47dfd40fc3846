"""The documented `mpc_ray.sim` entry points for every scheme, checked with independent verifiers."""

from __future__ import annotations

import hashlib

import coincurve
import nacl.signing
import pytest

from mpc_ray import sim
from mpc_ray.errors import InvalidInput

MESSAGE = b"x402: pay 0.01 USDC for /weather"


@pytest.mark.parametrize("signers", [None, [1, 3], [2, 3]])
def test_ed25519(signers):
    key = sim.keygen("eddsa-ed25519", parties=3, threshold=2)
    sig = key.sign(MESSAGE, signers=signers)
    assert len(key.public_key) == 32 and len(sig.to_bytes()) == 64
    nacl.signing.VerifyKey(key.public_key).verify(MESSAGE, sig.to_bytes())
    assert key.info("k1").scheme == "eddsa-ed25519"


def test_bip340():
    key = sim.keygen("schnorr-bip340", parties=5, threshold=3)
    sig = key.sign(MESSAGE, signers=[1, 4, 5])
    assert len(key.public_key) == 32
    assert coincurve.PublicKeyXOnly(key.public_key).verify(sig.to_bytes(), MESSAGE)


def test_bad_arguments_are_typed():
    with pytest.raises(InvalidInput):
        sim.keygen("rsa", parties=3, threshold=2)
    with pytest.raises(InvalidInput):
        sim.keygen("eddsa-ed25519", parties=3, threshold=4)
    key = sim.keygen("eddsa-ed25519", parties=3, threshold=2)
    with pytest.raises(InvalidInput):
        key.sign(MESSAGE, signers=[1])
    with pytest.raises(InvalidInput):
        key.sign(MESSAGE, signers=[1, 7])


def test_ecdsa_rejects_non_digest():
    from tests.support.primes import fixture_paillier_key

    aux = sim.aux_info(2, "112", paillier_keys={i: fixture_paillier_key("112", 9 + i) for i in (1, 2)})
    key = sim.keygen(parties=2, threshold=2, aux=aux)
    with pytest.raises(InvalidInput):
        key.sign(b"not a 32-byte digest")
    sig = key.sign(hashlib.sha256(MESSAGE).digest())
    assert coincurve.PublicKey(key.public_key).verify(sig.der(), hashlib.sha256(MESSAGE).digest(), hasher=None)
    assert key.info().threshold == 2 and key.info().parties == 2
