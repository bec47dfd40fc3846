"""FROST key material: a signer's `KeyPackage` (secret), the committee's `PublicKeyPackage`, a trusted-dealer split.

The DKG (`dkg.DkgParty`) is the normal way to make keys; `split_secret` (RFC 9591 Appendix C) exists for the test
vectors and for importing an existing key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

from ...crypto.frost_suites import (
    Ciphersuite,
    Element,
    KeyAdjust,
    SecretPolynomial,
    evaluate_commitments,
    get_suite,
)
from ...errors import InvalidInput


@dataclass(frozen=True, repr=False)
class KeyPackage:
    """One signer's long-lived share. Secret: `repr` is redacted; never log or send it."""

    suite_key: str
    identifier: int
    signing_share: int
    verifying_share: Element
    group_key: Element
    threshold: int
    chain_code: bytes = b""  # public BIP32 chain code from the DKG; b"" if the key has none (dealer split)

    @property
    def suite(self) -> Ciphersuite:
        return get_suite(self.suite_key)

    def __repr__(self) -> str:
        return (
            f"KeyPackage(suite={self.suite_key!r}, identifier={self.identifier}, signing_share=<redacted>, "
            f"group_key={self.group_key!r}, threshold={self.threshold})"
        )


@dataclass(frozen=True)
class PublicKeyPackage:
    """Public: the group key and every party's verifying share Y_j = s_j G, identifiers 1..n."""

    suite_key: str
    group_key: Element
    verifying_shares: Mapping[int, Element] = field(hash=False)
    threshold: int
    chain_code: bytes = b""  # public BIP32 chain code from the DKG (with the key: its xpub); b"" if none

    @property
    def suite(self) -> Ciphersuite:
        return get_suite(self.suite_key)

    @property
    def parties(self) -> tuple[int, ...]:
        return tuple(sorted(self.verifying_shares))

    def public_key_bytes(self, tap_tweak: bytes | None = None, hd_tweak: int | None = None) -> bytes:
        return public_key_bytes(self.suite, self.group_key, tap_tweak, hd_tweak)


def key_adjust(suite: Ciphersuite | str, group_key: Element, tap_tweak: bytes | None = None,
               hd_tweak: int | None = None) -> KeyAdjust:
    """The affine map s -> factor s + offset every share and verifying share goes through before signing.

    Without `hd_tweak`: the suite's own (BIP340 even Y, optional BIP341 TapTweak). With `hd_tweak` (a BIP32
    child's additive tweak, `crypto.bip32.derive_bip340(...).tweak`): first the derivation, then the suite's map on
    the child key. For BIP340 the derivation starts from the even-Y lift of the published x-only key (the convention
    of `crypto/bip32.py`): s -> f0 s + t with f0 = -1 iff the group key has odd Y; the child key K = f0 Y + t G then
    gets BIP340's own even-Y rule (and the TapTweak, if any) exactly like an underived key. The composition of two
    affine maps of factor +-1 is again one, so it slots into the same place as the TapTweak adjustment. Ed25519 has
    no BIP32 (InvalidInput)."""
    suite = get_suite(suite)
    if hd_tweak is None:
        return suite.key_adjust(group_key, tap_tweak)
    g = suite.group
    if g.name != "secp256k1":
        raise InvalidInput(f"{suite.name} keys have no BIP32 derivation")
    if not isinstance(hd_tweak, int) or isinstance(hd_tweak, bool) or not 0 <= hd_tweak < g.order:
        raise InvalidInput("the derivation tweak is a scalar below the group order")
    f0 = -1 if suite.bip340 and group_key.to_bytes()[0] == 3 else 1
    pre = KeyAdjust(f0, hd_tweak)
    child = pre.point(g, group_key)
    if child.is_identity:
        raise InvalidInput("the derived key is the identity")
    post = suite.key_adjust(child, tap_tweak)
    return KeyAdjust(post.factor * pre.factor, (post.factor * pre.offset + post.offset) % g.order)


def public_key_bytes(suite: Ciphersuite | str, group_key: Element, tap_tweak: bytes | None = None,
                     hd_tweak: int | None = None) -> bytes:
    """The key as users see it: 32-byte Ed25519 (RFC 8032), 32-byte x-only BIP340 (with `tap_tweak` the BIP341
    output key: b"" for key-path only, or a 32-byte merkle root), 33-byte compressed for frost-secp256k1. With
    `hd_tweak`: the BIP32 child's key (see `key_adjust`)."""
    suite = get_suite(suite)
    adjust = key_adjust(suite, group_key, tap_tweak, hd_tweak)
    return suite.public_key_bytes(adjust.point(suite.group, group_key))


def validate_identifiers(identifiers: Sequence[int], n: int | None = None) -> None:
    """Identifiers are distinct ints in 1..n (n defaults to their count)."""
    ids = list(identifiers)
    n = len(ids) if n is None else n
    if any(not isinstance(i, int) or isinstance(i, bool) for i in ids):
        raise InvalidInput("identifiers must be integers")
    if len(set(ids)) != len(ids):
        raise InvalidInput("identifiers must be distinct")
    if any(i < 1 or i > n for i in ids):
        raise InvalidInput(f"identifiers must be in 1..{n}")


def split_secret(
    suite: Ciphersuite | str,
    secret: int,
    threshold: int,
    parties: int,
    coefficients: Sequence[int] | None = None,
) -> tuple[dict[int, KeyPackage], PublicKeyPackage]:
    """Trusted-dealer Shamir split of `secret` into shares for identifiers 1..parties (RFC 9591 Appendix C).

    `coefficients` (a_1 .. a_{t-1}) are random unless given (the test vectors give them).
    """
    suite = get_suite(suite)
    g = suite.group
    if not 1 <= threshold <= parties:
        raise InvalidInput("need 1 <= threshold <= parties")
    if not 0 < secret < g.order:
        raise InvalidInput("secret must be a non-zero reduced scalar")
    if coefficients is None:
        poly = SecretPolynomial.random(g, threshold - 1, constant=secret)
    else:
        if len(coefficients) != threshold - 1:
            raise InvalidInput("need threshold - 1 coefficients")
        poly = SecretPolynomial(g.order, [secret, *coefficients])
    commitments = poly.commitments(g)
    group_key = commitments[0]
    packages: dict[int, KeyPackage] = {}
    verifying: dict[int, Element] = {}
    for j in range(1, parties + 1):
        s_j = poly(j)
        y_j = g.base_mul(s_j)
        if y_j != evaluate_commitments(g, commitments, j):  # cheap self-check of the dealer's own work
            raise AssertionError("share does not match the dealer commitments")
        verifying[j] = y_j
        packages[j] = KeyPackage(suite.key, j, s_j, y_j, group_key, threshold)
    poly.wipe()
    return packages, PublicKeyPackage(suite.key, group_key, verifying, threshold)
