"""The suite layer: Ed25519 over PyNaCl, secp256k1 encodings, hashing, generic Shamir helpers."""

from __future__ import annotations

import hashlib

import pytest
from nacl import bindings as nacl

from mpc_ray.crypto import ed25519 as ed
from mpc_ray.crypto.ed25519 import EdPoint
from mpc_ray.crypto.frost_suites import (
    ED25519,
    SECP256K1,
    SECP256K1_TR,
    SUITES,
    SecretPolynomial,
    evaluate_commitments,
    expand_message_xmd,
    get_suite,
    lagrange_coefficient,
)
from mpc_ray.errors import InvalidInput
from mpc_ray.protocols.frost import SUITES as EXPORTED
from mpc_ray.protocols.frost import public_key_bytes, split_secret

TORSION = [
    ed.IDENTITY_BYTES,
    bytes.fromhex("ec" + "ff" * 30 + "7f"),  # order 2
    bytes(32),  # order 4
    bytes(31) + b"\x80",  # order 4
    bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),  # order 8
    bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),  # order 8
]


def test_ed25519_zero_scalar_and_identity_are_handled() -> None:
    assert EdPoint.base_mul(0).is_identity
    assert EdPoint.base_mul(ed.L).is_identity
    p = EdPoint.base_mul(7)
    assert (p * 0).is_identity and (p * ed.L).is_identity
    assert (EdPoint.identity() * 5).is_identity
    assert (p - p).is_identity and p + EdPoint.identity() == p
    assert -EdPoint.identity() == EdPoint.identity()
    assert ed.sum_points([]) == EdPoint.identity()
    assert ed.sum_points([p, -p, p]) == p


def test_ed25519_arithmetic_matches_libsodium_scalars() -> None:
    a, b = 123456789, ed.L - 5
    pa, pb = EdPoint.base_mul(a), EdPoint.base_mul(b)
    assert pa + pb == EdPoint.base_mul(a + b)
    assert pa * b == EdPoint.base_mul(a * b)
    assert -pa == EdPoint.base_mul(-a)
    # A scalar with bit 255 set would be silently truncated by libsodium: we reduce first.
    big = (1 << 255) + 3
    assert EdPoint.base_mul(big) == EdPoint.base_mul(big % ed.L)
    assert pa * big == pa * (big % ed.L)
    # RFC 8032 base point.
    assert EdPoint.generator().to_bytes() == bytes.fromhex("58" + "66" * 31)


@pytest.mark.parametrize("enc", TORSION, ids=["identity", "order2", "order4a", "order4b", "order8a", "order8b"])
def test_ed25519_small_order_points_refused(enc: bytes) -> None:
    with pytest.raises(ValueError):
        EdPoint.from_bytes(enc)
    with pytest.raises(ValueError):
        ED25519.deserialize_element(enc)


def test_ed25519_point_validation() -> None:
    good = EdPoint.base_mul(99).to_bytes()
    assert EdPoint.from_bytes(good).to_bytes() == good
    mixed = nacl.crypto_core_ed25519_add(good, TORSION[5])
    for bad in (mixed, (ed.FIELD_P + 2).to_bytes(32, "little"), good[:31], good + b"\x00", "x" * 32):
        with pytest.raises(ValueError):
            EdPoint.from_bytes(bad)  # type: ignore[arg-type]
    assert EdPoint.from_bytes(ed.IDENTITY_BYTES, allow_identity=True).is_identity
    with pytest.raises(ValueError):
        ED25519.serialize_element(EdPoint.identity())


def test_scalar_encodings_are_canonical() -> None:
    assert ED25519.deserialize_scalar((ed.L - 1).to_bytes(32, "little")) == ed.L - 1
    for bad in (ed.L.to_bytes(32, "little"), (ed.L + 1).to_bytes(32, "little"), b"\xff" * 32, b"\x01" * 31):
        with pytest.raises(ValueError):
            ED25519.deserialize_scalar(bad)
    q = SECP256K1.order
    assert SECP256K1.deserialize_scalar((q - 1).to_bytes(32, "big")) == q - 1
    for bad in (q.to_bytes(32, "big"), b"\xff" * 32, b"\x01" * 33):
        with pytest.raises(ValueError):
            SECP256K1.deserialize_scalar(bad)


def test_secp256k1_element_encoding() -> None:
    p = SECP256K1.base_mul(5)
    enc = SECP256K1.serialize_element(p)
    assert len(enc) == 33 and SECP256K1.deserialize_element(enc) == p
    uncompressed = bytes.fromhex("04") + bytes(64)
    for bad in (
        bytes(33),
        uncompressed,
        b"\x05" + enc[1:],
        enc[:32],
        b"\x02" + (2**256 - 2**32 - 977 + 1).to_bytes(32, "big"),
    ):
        with pytest.raises(ValueError):
            SECP256K1.deserialize_element(bad)
    with pytest.raises(ValueError):
        SECP256K1.serialize_element(SECP256K1.identity())


def test_expand_message_xmd_rfc9380_vectors() -> None:
    dst = b"QUUX-V01-CS02-with-expander-SHA256-128"
    assert (
        expand_message_xmd(b"", dst, 0x20).hex() == "68a985b87eb6b46952128911f2a4412bbc302a9d759667f87f7a21d803f07235"
    )
    assert (
        expand_message_xmd(b"abc", dst, 0x20).hex()
        == "d8ccab23b5985ccea865c6c97b6e5b8350e794e603b4b97902f53a8a0d605615"
    )


def test_ed25519_h2_is_plain_sha512() -> None:
    suite = SUITES["eddsa-ed25519"]
    assert suite.H2(b"abc") == int.from_bytes(hashlib.sha512(b"abc").digest(), "little") % ed.L


@pytest.mark.parametrize("group", [ED25519, SECP256K1], ids=["ed25519", "secp256k1"])
def test_generic_shamir_helpers(group) -> None:
    poly = SecretPolynomial.random(group, 2)
    secret = poly(0)
    commitments = poly.commitments(group)
    for x in (1, 2, 5):
        assert evaluate_commitments(group, commitments, x) == group.base_mul(poly(x))
    signers = [1, 3, 4]
    lams = [lagrange_coefficient(group.order, i, signers) for i in signers]
    assert sum(lams) % group.order == 1
    assert sum(lam * poly(i) for lam, i in zip(lams, signers)) % group.order == secret
    assert "redacted" in repr(poly) and str(secret) not in repr(poly)
    with pytest.raises(InvalidInput):
        lagrange_coefficient(group.order, 2, signers)
    with pytest.raises(InvalidInput):
        lagrange_coefficient(group.order, 1, [1, 1, 3])


def test_suite_registry_and_public_keys() -> None:
    assert EXPORTED is SUITES and set(SUITES) == {"eddsa-ed25519", "schnorr-bip340", "frost-secp256k1"}
    assert get_suite("schnorr-bip340") is SECP256K1_TR
    with pytest.raises(InvalidInput):
        get_suite("ecdsa-secp256k1")
    _, pub = split_secret("schnorr-bip340", 12345, 2, 3)
    xonly = public_key_bytes("schnorr-bip340", pub.group_key)
    assert xonly == pub.group_key.to_bytes()[1:]
    assert len(public_key_bytes("schnorr-bip340", pub.group_key, b"")) == 32
    _, edpub = split_secret("eddsa-ed25519", 12345, 2, 3)
    assert public_key_bytes("eddsa-ed25519", edpub.group_key) == nacl.crypto_scalarmult_ed25519_base_noclamp(
        (12345).to_bytes(32, "little")
    )
