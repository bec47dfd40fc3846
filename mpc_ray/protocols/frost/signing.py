"""The RFC 9591 signing functions, suite-generic (section 4 helpers, section 5 rounds).

`prepare` computes everything a signing session shares (adjusted key, binding factors, group commitment,
challenge) once; `sign`, `verify_signature_share` and `aggregate` take either a prepared `SigningSession` or the
RFC's loose arguments. BIP340 (suite `SECP256K1_TR`): the group key and shares go through `suite.key_adjust`
(even Y, optional BIP341 tweak) and signers negate both nonces when the group commitment has odd Y.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ...crypto.frost_suites import Ciphersuite, Element, KeyAdjust, lagrange_coefficient
from ...errors import InvalidInput, MpcError, ProtocolAbort
from ...errors import NonceReuseError  # noqa: F401  (old import path)
from .keys import KeyPackage, key_adjust

__all__ = [
    "FrostSignature",
    "NonceReuseError",
    "SigningCommitments",
    "SigningNonces",
    "SigningSession",
    "aggregate",
    "binding_factor_inputs",
    "commit",
    "compute_binding_factors",
    "compute_challenge",
    "compute_group_commitment",
    "encode_group_commitment_list",
    "nonce_generate",
    "prepare",
    "sign",
    "verify_signature",
    "verify_signature_share",
]


@dataclass(frozen=True)
class SigningCommitments:
    """A signer's public round-one output (D_i, E_i)."""

    identifier: int
    hiding: Element
    binding: Element


class SigningNonces:
    """A secret, single-use nonce pair (d_i, e_i) and its commitments.

    `take()` hands the scalars out once and drops them (set to None); a second call raises NonceReuseError.
    Copying and pickling are refused so a used pair cannot come back from a copy or a backup.
    """

    __slots__ = ("_binding", "_hiding", "commitments", "suite_key")

    def __init__(self, suite_key: str, hiding: int, binding: int, commitments: SigningCommitments) -> None:
        self.suite_key = suite_key
        self._hiding: int | None = hiding
        self._binding: int | None = binding
        self.commitments = commitments

    @property
    def identifier(self) -> int:
        return self.commitments.identifier

    @property
    def used(self) -> bool:
        return self._hiding is None

    def take(self) -> tuple[int, int]:
        if self._hiding is None or self._binding is None:
            raise NonceReuseError(f"nonces of party {self.identifier} were already used")
        pair = (self._hiding, self._binding)
        self._hiding = self._binding = None
        return pair

    def peek(self) -> tuple[int, int]:
        """The scalars without consuming them (test vectors only: compares the RFC's intermediate values)."""
        if self._hiding is None or self._binding is None:
            raise NonceReuseError(f"nonces of party {self.identifier} were already used")
        return self._hiding, self._binding

    def __repr__(self) -> str:
        state = "used" if self.used else "unused"
        return f"SigningNonces(suite={self.suite_key!r}, identifier={self.identifier}, <redacted>, {state})"

    def __copy__(self) -> "SigningNonces":
        raise TypeError("signing nonces are single-use and cannot be copied")

    def __deepcopy__(self, memo: dict[int, Any]) -> "SigningNonces":
        raise TypeError("signing nonces are single-use and cannot be copied")

    def __reduce__(self) -> tuple[Any, ...]:
        raise TypeError("signing nonces are single-use and cannot be pickled")


@dataclass(frozen=True)
class FrostSignature:
    """An aggregated signature that verified under `public_key` (the adjusted group key)."""

    suite_key: str
    r: Element
    z: int
    data: bytes

    def to_bytes(self) -> bytes:
        """Ed25519: RFC 8032 R||S (64); BIP340: x(R)||s (64); frost-secp256k1: compressed R||z (65)."""
        return self.data


# round one ------------------------------------------------------------------------------------------------
def nonce_generate(suite: Ciphersuite, secret: int, random_bytes: bytes | None = None) -> int:
    """RFC nonce_generate: H3(random_bytes || SerializeScalar(secret)); `random_bytes` is 32 fresh bytes unless
    given (test vectors). Mixing in the share hedges against a weak RNG."""
    if random_bytes is None:
        random_bytes = secrets.token_bytes(32)
    elif len(random_bytes) != 32:
        raise InvalidInput("nonce randomness must be 32 bytes")
    return suite.H3(bytes(random_bytes) + suite.group.serialize_scalar(secret))


def commit(
    suite: Ciphersuite,
    identifier: int,
    signing_share: int,
    *,
    hiding_randomness: bytes | None = None,
    binding_randomness: bytes | None = None,
) -> SigningNonces:
    """RFC commit: a fresh nonce pair and its commitments. Message-independent, so it can be precomputed."""
    g = suite.group
    while True:
        d = nonce_generate(suite, signing_share, hiding_randomness)
        e = nonce_generate(suite, signing_share, binding_randomness)
        if d and e:
            break
        if hiding_randomness is not None or binding_randomness is not None:
            raise InvalidInput("given nonce randomness yields a zero nonce")  # probability ~2^-252
    return SigningNonces(suite.key, d, e, SigningCommitments(identifier, g.base_mul(d), g.base_mul(e)))


# helpers (RFC section 4) --------------------------------------------------------------------------------
def _check_commitment_list(suite: Ciphersuite, commitments: Sequence[SigningCommitments]) -> None:
    """Sorted by identifier value, distinct, non-zero identifiers below the group order; no identity element."""
    if not commitments:
        raise InvalidInput("empty commitment list")
    prev = 0
    for c in commitments:
        i = c.identifier
        if not isinstance(i, int) or isinstance(i, bool) or i <= prev:
            raise InvalidInput("commitment list must be sorted by distinct identifiers >= 1")
        if i >= suite.group.order:
            raise InvalidInput("identifier out of range")
        if c.hiding.is_identity or c.binding.is_identity:
            raise InvalidInput("commitment is the identity")
        prev = i


def encode_group_commitment_list(suite: Ciphersuite, commitments: Sequence[SigningCommitments]) -> bytes:
    g = suite.group
    return b"".join(
        g.serialize_scalar(c.identifier) + g.serialize_element(c.hiding) + g.serialize_element(c.binding)
        for c in commitments
    )


def binding_factor_inputs(
    suite: Ciphersuite, group_key: Element, commitments: Sequence[SigningCommitments], msg: bytes
) -> dict[int, bytes]:
    """rho_input_i = SerializeElement(Y) || H4(msg) || H5(encoded commitment list) || SerializeScalar(i).

    `group_key` is the key the signature verifies under (the adjusted key for BIP340)."""
    _check_commitment_list(suite, commitments)
    g = suite.group
    prefix = g.serialize_element(group_key) + suite.H4(msg) + suite.H5(encode_group_commitment_list(suite, commitments))
    return {c.identifier: prefix + g.serialize_scalar(c.identifier) for c in commitments}


def compute_binding_factors(
    suite: Ciphersuite, group_key: Element, commitments: Sequence[SigningCommitments], msg: bytes
) -> dict[int, int]:
    return {i: suite.H1(inp) for i, inp in binding_factor_inputs(suite, group_key, commitments, msg).items()}


def compute_group_commitment(
    suite: Ciphersuite, commitments: Sequence[SigningCommitments], binding_factors: Mapping[int, int]
) -> Element:
    return suite.group.sum(c.hiding + c.binding * binding_factors[c.identifier] for c in commitments)


def compute_challenge(suite: Ciphersuite, group_commitment: Element, group_key: Element, msg: bytes) -> int:
    return suite.challenge(group_commitment, group_key, msg)


# a prepared session -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SigningSession:
    """Public values every signer and the aggregator derive identically from (key, commitments, message)."""

    suite: Ciphersuite
    msg: bytes
    commitments: tuple[SigningCommitments, ...]
    adjust: KeyAdjust
    group_key: Element  # adjusted: the key the signature verifies under
    binding_factors: Mapping[int, int]
    group_commitment: Element  # R as the RFC computes it (before any BIP340 negation)
    nonce_factor: int  # +1, or -1 when signers negate their nonces (BIP340, odd-Y R)
    challenge: int

    @property
    def identifiers(self) -> tuple[int, ...]:
        return tuple(c.identifier for c in self.commitments)

    def lagrange(self, identifier: int) -> int:
        return lagrange_coefficient(self.suite.group.order, identifier, self.identifiers)

    def commitment_of(self, identifier: int) -> SigningCommitments:
        for c in self.commitments:
            if c.identifier == identifier:
                return c
        raise InvalidInput(f"party {identifier} is not in the commitment list")


def prepare(
    suite: Ciphersuite,
    group_key: Element,
    commitments: Sequence[SigningCommitments],
    msg: bytes,
    tap_tweak: bytes | None = None,
    hd_tweak: int | None = None,
) -> SigningSession:
    """Validate the commitment list (sorted by identifier value, distinct) and compute the shared values.
    `hd_tweak`: sign for the BIP32 child key with that tweak (`keys.key_adjust`)."""
    if not isinstance(msg, (bytes, bytearray)):
        raise InvalidInput("message must be bytes")
    msg = bytes(msg)
    commitments = tuple(commitments)
    adjust = key_adjust(suite, group_key, tap_tweak, hd_tweak)
    y = adjust.point(suite.group, group_key)
    rho = compute_binding_factors(suite, y, commitments, msg)
    r = compute_group_commitment(suite, commitments, rho)
    if r.is_identity:
        raise InvalidInput("group commitment is the identity")
    factor = suite.nonce_factor(r)
    c = compute_challenge(suite, r, y, msg)
    return SigningSession(suite, msg, commitments, adjust, y, rho, r, factor, c)


def _session(
    suite: Ciphersuite,
    group_key: Element,
    commitments: Sequence[SigningCommitments] | SigningSession,
    msg: bytes,
    tap_tweak: bytes | None,
    hd_tweak: int | None = None,
) -> SigningSession:
    if isinstance(commitments, SigningSession):
        return commitments
    return prepare(suite, group_key, commitments, msg, tap_tweak, hd_tweak)


# round two --------------------------------------------------------------------------------------------------
def sign(
    suite: Ciphersuite,
    key_package: KeyPackage,
    nonces: SigningNonces,
    msg: bytes,
    commitments: Sequence[SigningCommitments] | SigningSession,
    tap_tweak: bytes | None = None,
    hd_tweak: int | None = None,
) -> int:
    """RFC sign: the signature share z_i = d + e rho_i + lambda_i s_i c. Consumes `nonces`.

    The signer checks that its own commitment is in the list unchanged before spending the nonces."""
    if key_package.suite_key != suite.key or nonces.suite_key != suite.key:
        raise InvalidInput("key package, nonces and suite disagree")
    if nonces.identifier != key_package.identifier:
        raise InvalidInput("nonces belong to another party")
    if nonces.used:
        raise NonceReuseError(f"nonces of party {nonces.identifier} were already used")
    session = _session(suite, key_package.group_key, commitments, msg, tap_tweak, hd_tweak)
    if session.commitment_of(key_package.identifier) != nonces.commitments:
        raise InvalidInput("own commitment missing or changed in the commitment list")
    q = suite.group.order
    s = session.adjust.scalar(suite.group, key_package.signing_share)
    lam = session.lagrange(key_package.identifier)
    d, e = nonces.take()
    if session.nonce_factor == -1:
        d, e = q - d, q - e
    return (d + e * session.binding_factors[key_package.identifier] + lam * s * session.challenge) % q


def verify_signature_share(
    suite: Ciphersuite,
    identifier: int,
    verifying_share: Element,
    share: int,
    commitments: Sequence[SigningCommitments] | SigningSession,
    group_key: Element,
    msg: bytes,
    tap_tweak: bytes | None = None,
    hd_tweak: int | None = None,
) -> bool:
    """RFC verify_signature_share: z_i G == R_i + (c lambda_i) Y_i, with R_i = D_i + rho_i E_i."""
    session = _session(suite, group_key, commitments, msg, tap_tweak, hd_tweak)
    g = suite.group
    if not 0 <= share < g.order:
        return False
    com = session.commitment_of(identifier)
    r_i = com.hiding + com.binding * session.binding_factors[identifier]
    if session.nonce_factor == -1:
        r_i = -r_i
    y_i = session.adjust.point(g, verifying_share)
    return bool(g.base_mul(share) == r_i + y_i * (session.challenge * session.lagrange(identifier)))  # Element ops: Any


def aggregate(
    suite: Ciphersuite,
    commitments: Sequence[SigningCommitments] | SigningSession,
    msg: bytes,
    group_key: Element,
    shares: Mapping[int, int],
    verifying_shares: Mapping[int, Element] | None = None,
    tap_tweak: bytes | None = None,
    *,
    reporter: int | None = None,
    hd_tweak: int | None = None,
) -> FrostSignature:
    """RFC aggregate, then verify the signature; only if that fails, check shares one by one.

    With `verifying_shares` a bad share raises ProtocolAbort(culprit, "frost.sign.share"); without them the
    failure is an MpcError (no one can be named)."""
    session = _session(suite, group_key, commitments, msg, tap_tweak, hd_tweak)
    g = suite.group
    if set(shares) != set(session.identifiers):
        raise InvalidInput("need exactly one share per signer of the commitment list")
    for i, z_i in shares.items():
        if not 0 <= z_i < g.order:
            raise ProtocolAbort(i, "frost.sign.share", "share is not a reduced scalar", reporter)
    z = sum(shares.values()) % g.order
    r = session.group_commitment if session.nonce_factor == 1 else -session.group_commitment
    data = suite.serialize_signature(r, z)
    if suite.verify_signature(session.group_key, session.msg, data):
        return FrostSignature(suite.key, r, z, data)
    if verifying_shares is None:
        raise MpcError("aggregated signature does not verify (no verifying shares to name the culprit)")
    for i in session.identifiers:
        if not verify_signature_share(suite, i, verifying_shares[i], shares[i], session, group_key, msg):
            raise ProtocolAbort(i, "frost.sign.share", "signature share does not verify", reporter)
    # Every share verified yet the sum did not: the verifying shares do not match the group key.
    raise MpcError("aggregated signature does not verify although every share does (inconsistent key package)")


def verify_signature(
    suite: Ciphersuite, group_key: Element, msg: bytes, signature: bytes, tap_tweak: bytes | None = None,
    hd_tweak: int | None = None,
) -> bool:
    """Verify a FROST signature under the group key (BIP340: under the x-only, optionally tweaked, key; with
    `hd_tweak` under the BIP32 child key)."""
    y = key_adjust(suite, group_key, tap_tweak, hd_tweak).point(suite.group, group_key)
    return suite.verify_signature(y, msg, signature)
