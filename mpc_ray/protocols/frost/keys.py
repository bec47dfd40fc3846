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

    @property
    def suite(self) -> Ciphersuite:
        return get_suite(self.suite_key)

    @property
    def parties(self) -> tuple[int, ...]:
        return tuple(sorted(self.verifying_shares))

    def public_key_bytes(self, tap_tweak: bytes | None = None) -> bytes:
        return public_key_bytes(self.suite, self.group_key, tap_tweak)


def public_key_bytes(suite: Ciphersuite | str, group_key: Element, tap_tweak: bytes | None = None) -> bytes:
    """The key as users see it: 32-byte Ed25519 (RFC 8032), 32-byte x-only BIP340 (with `tap_tweak` the BIP341
    output key: b"" for key-path only, or a 32-byte merkle root), 33-byte compressed for frost-secp256k1."""
    suite = get_suite(suite)
    adjust = suite.key_adjust(group_key, tap_tweak)
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
