"""DKG + signing end to end through run_parties, signatures checked by independent verifiers."""

from __future__ import annotations

import copy
import hashlib
import pickle

import coincurve
import pytest
from nacl.signing import VerifyKey

from mpc_ray.crypto.frost_suites import SECP256K1_TR, tagged_hash
from mpc_ray.errors import InvalidInput
from mpc_ray.protocols.frost import (
    SUITES,
    NonceReuseError,
    PrecommittedSignParty,
    SignParty,
    commit,
    public_key_bytes,
    split_secret,
    verify_signature,
)
from mpc_ray.sim.router import run_parties
from tests.support.frost import run_dkg, sign_parties

SHAPES = [(2, 3), (3, 5)]
MERKLE_ROOT = hashlib.sha256(b"a tapscript tree").digest()


def independent_verify(suite_key: str, pk: bytes, msg: bytes, sig: bytes) -> None:
    if suite_key == "eddsa-ed25519":
        VerifyKey(pk).verify(msg, sig)  # raises BadSignatureError
    elif suite_key == "schnorr-bip340":
        assert coincurve.PublicKeyXOnly(pk).verify(sig, msg)
    else:  # RFC frost-secp256k1 has no third-party verifier at hand: check with the RFC equation
        assert len(pk) == 33 and len(sig) == 65


@pytest.mark.parametrize("suite_key", list(SUITES))
@pytest.mark.parametrize("t,n", SHAPES, ids=[f"{t}of{n}" for t, n in SHAPES])
def test_dkg_then_sign(suite_key: str, t: int, n: int) -> None:
    outs = run_dkg(suite_key, n, t, sid=f"dkg-{suite_key}-{t}-{n}".encode())
    pub = outs[1].public_package
    suite = pub.suite
    for i, o in outs.items():
        assert o.public_package.group_key == pub.group_key
        assert dict(o.public_package.verifying_shares) == dict(pub.verifying_shares)
        assert o.key_package.identifier == i and o.key_package.threshold == t
        assert suite.group.base_mul(o.key_package.signing_share) == pub.verifying_shares[i]
        assert "redacted" in repr(o) and str(o.key_package.signing_share) not in repr(o)
    pk = public_key_bytes(suite, pub.group_key)
    assert len(pk) == (33 if suite_key == "frost-secp256k1" else 32)
    assert pk == outs[2].public_key_bytes()

    for signers, msg in ((list(range(n - t + 1, n + 1)), b"threshold signers"), (list(range(1, n + 1)), b"")):
        res = run_parties(sign_parties(outs, signers, msg, sid=b"sign-" + bytes(signers)))
        sigs = {r.to_bytes() for r in res.values()}
        assert len(sigs) == 1
        sig = sigs.pop()
        assert verify_signature(suite, pub.group_key, msg, sig)
        independent_verify(suite_key, pk, msg, sig)


@pytest.mark.parametrize("t,n", SHAPES, ids=[f"{t}of{n}" for t, n in SHAPES])
def test_bip340_tweaked_and_untweaked(t: int, n: int) -> None:
    outs = run_dkg("schnorr-bip340", n, t, sid=b"dkg-tr")
    pub = outs[1].public_package
    signers = list(range(1, t + 1))
    internal = public_key_bytes(SECP256K1_TR, pub.group_key)
    for tweak in (None, b"", MERKLE_ROOT):
        msg = b"taproot spend " + (b"-" if tweak is None else tweak)
        pk = public_key_bytes(SECP256K1_TR, pub.group_key, tweak)
        if tweak is not None:
            # BIP341 output key computed by libsecp256k1 from the internal key and our TapTweak hash.
            expected = coincurve.PublicKeyXOnly(internal)
            expected.tweak_add(tagged_hash("TapTweak", internal + tweak))
            assert pk == expected.format()
        res = run_parties(sign_parties(outs, signers, msg, sid=b"tr" + msg, tap_tweak=tweak))
        sig = res[signers[0]].to_bytes()
        assert coincurve.PublicKeyXOnly(pk).verify(sig, msg)
        assert verify_signature(SECP256K1_TR, pub.group_key, msg, sig, tweak)
        if tweak is not None:
            assert not coincurve.PublicKeyXOnly(internal).verify(sig, msg)


def _odd_and_even_keys() -> dict[bool, int]:
    """Secrets whose keys have odd and even Y."""
    from mpc_ray.crypto.secp256k1 import Point

    found: dict[bool, int] = {}
    s = 2
    while len(found) < 2:
        found.setdefault(Point.base_mul(s).has_odd_y(), s)
        s += 1
    return found


@pytest.mark.parametrize("odd", [True, False], ids=["odd-key", "even-key"])
def test_bip340_key_parity_and_nonce_parity(odd: bool) -> None:
    """Both key parities, both group-commitment parities, tweaked and not: the even-Y rules hold."""
    secret = _odd_and_even_keys()[odd]
    keys, pub = split_secret(SECP256K1_TR, secret, 2, 3)
    assert pub.group_key.has_odd_y() is odd
    seen_r_parity: set[int] = set()
    for k in range(64):
        for tweak in (None, MERKLE_ROOT):
            msg = b"parity %d" % k
            parties = {
                i: SignParty(SECP256K1_TR, keys[i], pub, msg, b"p%d" % k, [1, 3], tap_tweak=tweak) for i in (1, 3)
            }
            sig = run_parties(parties)[1].to_bytes()
            assert coincurve.PublicKeyXOnly(public_key_bytes(SECP256K1_TR, pub.group_key, tweak)).verify(sig, msg)
            seen_r_parity.add(parties[1]._session.nonce_factor)  # type: ignore[union-attr]
        if len(seen_r_parity) == 2 and k >= 3:
            break
    assert seen_r_parity == {1, -1}


@pytest.mark.parametrize("suite_key", ["eddsa-ed25519", "schnorr-bip340"])
def test_precomputed_nonces(suite_key: str) -> None:
    outs = run_dkg(suite_key, 3, 2, sid=b"dkg-pool-" + suite_key.encode())
    pub = outs[1].public_package
    suite = pub.suite
    signers = [1, 3]
    # A pooled round one: commitments published ahead, nonces kept by their holders.
    pool = {i: commit(suite, i, outs[i].key_package.signing_share) for i in signers}
    commitment_list = [pool[i].commitments for i in signers]
    msg = b"one-round signature"
    parties = {
        i: PrecommittedSignParty(suite, outs[i].key_package, pub, msg, b"pre-1", commitment_list, pool[i])
        for i in signers
    }
    sig = run_parties(parties)[1].to_bytes()
    independent_verify(suite_key, public_key_bytes(suite, pub.group_key), msg, sig)
    assert all(n.used for n in pool.values())
    with pytest.raises(NonceReuseError):
        PrecommittedSignParty(suite, outs[1].key_package, pub, msg, b"pre-2", commitment_list, pool[1])

    # Precomputed nonces handed to the two-round party.
    fresh = {i: commit(suite, i, outs[i].key_package.signing_share) for i in signers}
    parties2 = {i: SignParty(suite, outs[i].key_package, pub, msg, b"pre-3", signers, nonces=fresh[i]) for i in signers}
    sig2 = run_parties(parties2)[1].to_bytes()
    independent_verify(suite_key, public_key_bytes(suite, pub.group_key), msg, sig2)
    with pytest.raises(NonceReuseError):
        SignParty(suite, outs[1].key_package, pub, msg, b"pre-4", signers, nonces=fresh[1])


def test_nonces_are_secret_single_use_objects() -> None:
    keys, pub = split_secret("eddsa-ed25519", 1234567, 2, 3)
    n = commit(pub.suite, 1, keys[1].signing_share)
    d, e = n.peek()
    text = repr(n)
    assert "redacted" in text
    for secret in (d, e):
        assert str(secret) not in text and hex(secret)[2:] not in text
    for attempt in (lambda: copy.copy(n), lambda: copy.deepcopy(n), lambda: pickle.dumps(n)):
        with pytest.raises(TypeError):
            attempt()
    n.take()
    assert n.used and n._hiding is None and n._binding is None  # wiped
    with pytest.raises(NonceReuseError):
        n.take()


def test_bad_local_arguments() -> None:
    keys, pub = split_secret("eddsa-ed25519", 99, 2, 3)
    suite = pub.suite
    with pytest.raises(InvalidInput):  # below threshold
        SignParty(suite, keys[1], pub, b"m", b"s", [1])
    with pytest.raises(InvalidInput):  # identifier outside 1..n
        SignParty(suite, keys[1], pub, b"m", b"s", [1, 4])
    with pytest.raises(InvalidInput):  # Ed25519 has no Taproot tweak
        SignParty(suite, keys[1], pub, b"m", b"s", [1, 2], tap_tweak=b"")
    with pytest.raises(InvalidInput):  # key of another suite
        SignParty("schnorr-bip340", keys[1], pub, b"m", b"s", [1, 2])
    k1keys, k1pub = split_secret("schnorr-bip340", 99, 2, 3)
    with pytest.raises(InvalidInput):  # a merkle root is 32 bytes
        SignParty("schnorr-bip340", k1keys[1], k1pub, b"m", b"s", [1, 2], tap_tweak=b"short")
    from mpc_ray.protocols.frost import DkgParty

    with pytest.raises(InvalidInput):
        DkgParty("eddsa-ed25519", b"s", 1, [1, 2, 4], 2)  # identifiers must be 1..n
    with pytest.raises(InvalidInput):
        DkgParty("eddsa-ed25519", b"s", 1, [1, 2, 3], 4)
    with pytest.raises(InvalidInput):
        DkgParty("ed448", b"s", 1, [1, 2, 3], 2)
