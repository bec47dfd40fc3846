"""FROST ciphersuites (RFC 9591 section 6) and the group-generic math they share.

One generic protocol (`mpc_ray.protocols.frost`) runs on small suites, in the style of ZcashFoundation `frost`:

- `ED25519_SHA512`  FROST(Ed25519, SHA-512), contextString "FROST-ED25519-SHA512-v1". H2 is plain SHA-512 so
  signatures verify with any RFC 8032 verifier.
- `SECP256K1_SHA256` FROST(secp256k1, SHA-256), contextString "FROST-secp256k1-SHA256-v1"; signatures are the
  RFC's 65 bytes (33-byte compressed R || 32-byte z).
- `SECP256K1_TR` the BIP340 / Taproot variant of frost-secp256k1-tr, contextString "FROST-secp256k1-SHA256-TR-v1":
  x-only keys, BIP340 tagged challenge, even-Y rules and BIP341 TapTweak (see `Ciphersuite.key_adjust`).

A suite is a `Group` (scalar and element encodings that validate everything they decode) plus the hash functions
H1..H5 and HDKG, and the hooks the BIP340 variant overrides: `challenge`, `nonce_factor`, `key_adjust` and the
signature and public-key encodings.
Group-generic helpers (`SecretPolynomial`, `evaluate_commitments`, `lagrange_coefficient`) take the group or its
order and are thin adapters over `vss`, so Ed25519 (order L), secp256k1 (order Q) and the ECDSA key generation
share one implementation.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Protocol, Sequence

from ..errors import InvalidInput
from . import ed25519 as ed
from . import secp256k1 as k1
from . import vss
from .ed25519 import EdPoint
from .secp256k1 import Point
from .vss import Polynomial


class Element(Protocol):
    """A group element of one of the suites: `EdPoint` or secp256k1 `Point` (never mixed in one computation)."""

    @property
    def is_identity(self) -> bool: ...

    def __add__(self, other: Any) -> Any: ...

    def __sub__(self, other: Any) -> Any: ...

    def __neg__(self) -> Any: ...

    def __mul__(self, k: int) -> Any: ...

    def to_bytes(self) -> bytes: ...


# groups ---------------------------------------------------------------------------------------------------
class Group:
    """A prime-order group with RFC 9591 encodings. Deserialisers validate and raise ValueError."""

    name: str
    order: int
    element_size: int
    scalar_size: int

    def identity(self) -> Element:
        raise NotImplementedError

    def generator(self) -> Element:
        raise NotImplementedError

    def base_mul(self, k: int) -> Element:
        raise NotImplementedError

    def sum(self, points: Iterable[Element]) -> Element:
        raise NotImplementedError

    def serialize_element(self, p: Element) -> bytes:
        """RFC SerializeElement: fails on the identity (it never appears in a valid protocol message)."""
        raise NotImplementedError

    def deserialize_element(self, data: bytes) -> Element:
        """RFC DeserializeElement: canonical, on the curve, in the prime-order group, not the identity."""
        raise NotImplementedError

    def serialize_scalar(self, k: int) -> bytes:
        raise NotImplementedError

    def deserialize_scalar(self, data: bytes) -> int:
        """Exactly `scalar_size` bytes, value < order (non-canonical encodings are refused, not reduced)."""
        raise NotImplementedError

    def random_scalar(self) -> int:
        """Uniform non-zero scalar from the OS CSPRNG."""
        while True:
            k = secrets.randbelow(self.order)
            if k:
                return k


class Ed25519Group(Group):
    name = "ed25519"
    order = ed.L
    element_size = ed.POINT_SIZE
    scalar_size = ed.SCALAR_SIZE

    def identity(self) -> EdPoint:
        return EdPoint.identity()

    def generator(self) -> EdPoint:
        return EdPoint.generator()

    def base_mul(self, k: int) -> EdPoint:
        return EdPoint.base_mul(k)

    def sum(self, points: Iterable[Element]) -> EdPoint:
        return ed.sum_points(points)  # type: ignore[arg-type]  # only EdPoints reach the Ed25519 group

    def serialize_element(self, p: Element) -> bytes:
        if not isinstance(p, EdPoint) or p.is_identity:
            raise ValueError("cannot serialize the identity")
        return p.to_bytes()

    def deserialize_element(self, data: bytes) -> EdPoint:
        return EdPoint.from_bytes(data)

    def serialize_scalar(self, k: int) -> bytes:
        return ed.scalar_to_bytes(k)

    def deserialize_scalar(self, data: bytes) -> int:
        return ed.scalar_from_bytes(data)


class Secp256k1Group(Group):
    name = "secp256k1"
    order = k1.Q
    element_size = 33
    scalar_size = 32

    def identity(self) -> Point:
        return Point.identity()

    def generator(self) -> Point:
        return Point.generator()

    def base_mul(self, k: int) -> Point:
        return Point.base_mul(k)

    def sum(self, points: Iterable[Element]) -> Point:
        return k1.sum_points(points)  # type: ignore[arg-type]  # only Points reach the secp256k1 group

    def serialize_element(self, p: Element) -> bytes:
        if not isinstance(p, Point) or p.is_identity:
            raise ValueError("cannot serialize the identity")
        return p.to_bytes()

    def deserialize_element(self, data: bytes) -> Point:
        # Compressed SEC1 only: Point.from_bytes would also take 65-byte uncompressed points.
        if not isinstance(data, (bytes, bytearray)) or len(data) != 33 or data[0] not in (2, 3):
            raise ValueError("point must be 33 bytes compressed SEC1")
        return Point.from_bytes(bytes(data))  # refuses the identity; libsecp256k1 checks x < p and on-curve

    def serialize_scalar(self, k: int) -> bytes:
        return (k % k1.Q).to_bytes(32, "big")

    def deserialize_scalar(self, data: bytes) -> int:
        if not isinstance(data, (bytes, bytearray)):
            raise ValueError("scalar must be bytes")
        return k1.scalar_from_bytes(bytes(data))


ED25519 = Ed25519Group()
SECP256K1 = Secp256k1Group()


# hashing --------------------------------------------------------------------------------------------------
def expand_message_xmd(
    msg: bytes, dst: bytes, len_in_bytes: int, hash_fn: Callable[..., hashlib._Hash] = hashlib.sha256
) -> bytes:
    """RFC 9380 section 5.3.1 expand_message_xmd."""
    b_in_bytes = hash_fn().digest_size
    s_in_bytes = hash_fn().block_size
    ell = -(-len_in_bytes // b_in_bytes)
    if ell > 255 or len_in_bytes > 65535 or len(dst) > 255:
        raise ValueError("expand_message_xmd: requested length or DST too long")
    dst_prime = dst + bytes([len(dst)])
    msg_prime = bytes(s_in_bytes) + msg + len_in_bytes.to_bytes(2, "big") + b"\x00" + dst_prime
    b0 = hash_fn(msg_prime).digest()
    b_i = hash_fn(b0 + b"\x01" + dst_prime).digest()
    out = [b_i]
    for i in range(2, ell + 1):
        b_i = hash_fn(bytes(x ^ y for x, y in zip(b0, b_i)) + bytes([i]) + dst_prime).digest()
        out.append(b_i)
    return b"".join(out)[:len_in_bytes]


def _hash_to_field_k1(msg: bytes, dst: bytes) -> int:
    """hash_to_field(msg, 1) over Z_Q with expand_message_xmd(SHA-256) and L = 48 (RFC 9591 section 6.5)."""
    return int.from_bytes(expand_message_xmd(msg, dst, 48), "big") % k1.Q


def tagged_hash(tag: str, data: bytes) -> bytes:
    """BIP340 tagged hash: SHA256(SHA256(tag) || SHA256(tag) || data)."""
    th = hashlib.sha256(tag.encode()).digest()
    return hashlib.sha256(th + th + data).digest()


# key adjustment (BIP340 even-Y rules and BIP341 tweak) ----------------------------------------------------
@dataclass(frozen=True)
class KeyAdjust:
    """An affine map s -> factor * s + offset (factor = +-1) applied to the group key and to every share.

    Linear maps commute with Shamir sharing because the Lagrange coefficients of any signer set sum to 1, so
    applying it to each share s_i and verifying share Y_i gives a sharing of the adjusted key.
    """

    factor: int = 1
    offset: int = 0

    def scalar(self, group: Group, s: int) -> int:
        return (self.factor * s + self.offset) % group.order

    def point(self, group: Group, p: Element) -> Element:
        q = p if self.factor == 1 else -p
        return q + group.base_mul(self.offset) if self.offset else q


NO_ADJUST = KeyAdjust()


# ciphersuites ---------------------------------------------------------------------------------------------
class Ciphersuite:
    """RFC 9591 ciphersuite: group, hash functions and the few hooks the BIP340 variant changes."""

    key: str  # the scheme name the service uses
    name: str  # the RFC name
    context: bytes
    group: Group
    signature_size: int
    bip340: bool = False

    # hash functions (RFC 9591 section 6) --------------------------------------------------------------
    def H1(self, m: bytes) -> int:
        raise NotImplementedError

    def H2(self, m: bytes) -> int:
        raise NotImplementedError

    def H3(self, m: bytes) -> int:
        raise NotImplementedError

    def H4(self, m: bytes) -> bytes:
        raise NotImplementedError

    def H5(self, m: bytes) -> bytes:
        raise NotImplementedError

    def HDKG(self, m: bytes) -> int:
        """Challenge of the DKG proof of knowledge (ZcashFoundation frost: contextString || "dkg")."""
        raise NotImplementedError

    # hooks --------------------------------------------------------------------------------------------
    def challenge(self, r: Element, y: Element, msg: bytes) -> int:
        """RFC compute_challenge: H2(SerializeElement(R) || SerializeElement(Y) || msg)."""
        g = self.group
        return self.H2(g.serialize_element(r) + g.serialize_element(y) + msg)

    def nonce_factor(self, r: Element) -> int:
        """+1, or -1 when every signer must negate its nonces (BIP340: group commitment with odd Y)."""
        return 1

    def key_adjust(self, y: Element, tap_tweak: bytes | None = None) -> KeyAdjust:
        """The map applied to the group key and all shares before signing (identity for the RFC suites)."""
        if tap_tweak is not None:
            raise InvalidInput(f"{self.name} has no Taproot tweak")
        return NO_ADJUST

    def serialize_signature(self, r: Element, z: int) -> bytes:
        return self.group.serialize_element(r) + self.group.serialize_scalar(z)

    def verify_signature(self, y: Element, msg: bytes, signature: bytes) -> bool:
        """Prime-order Schnorr check z G == R + c Y on an (adjusted) group key; False on any malformed input."""
        g = self.group
        if not isinstance(signature, (bytes, bytearray)) or len(signature) != self.signature_size:
            return False
        try:
            r = g.deserialize_element(signature[: g.element_size])
            z = g.deserialize_scalar(signature[g.element_size :])
        except ValueError:
            return False
        c = self.challenge(r, y, msg)
        return bool(g.base_mul(z) == r + y * c)  # Element's operators return Any

    def public_key_bytes(self, y: Element) -> bytes:
        return self.group.serialize_element(y)

    def __repr__(self) -> str:
        return f"<{self.name} ({self.key})>"


class Ed25519Sha512(Ciphersuite):
    key = "eddsa-ed25519"
    name = "FROST(Ed25519, SHA-512)"
    context = b"FROST-ED25519-SHA512-v1"
    group = ED25519
    signature_size = 64

    @staticmethod
    def _h(data: bytes) -> bytes:
        return hashlib.sha512(data).digest()

    def _to_scalar(self, digest: bytes) -> int:
        return int.from_bytes(digest, "little") % ed.L

    def H1(self, m: bytes) -> int:
        return self._to_scalar(self._h(self.context + b"rho" + m))

    def H2(self, m: bytes) -> int:
        return self._to_scalar(self._h(m))  # no context: RFC 8032 compatibility

    def H3(self, m: bytes) -> int:
        return self._to_scalar(self._h(self.context + b"nonce" + m))

    def H4(self, m: bytes) -> bytes:
        return self._h(self.context + b"msg" + m)

    def H5(self, m: bytes) -> bytes:
        return self._h(self.context + b"com" + m)

    def HDKG(self, m: bytes) -> int:
        return self._to_scalar(self._h(self.context + b"dkg" + m))


class Secp256k1Sha256(Ciphersuite):
    key = "frost-secp256k1"
    name = "FROST(secp256k1, SHA-256)"
    context = b"FROST-secp256k1-SHA256-v1"
    group = SECP256K1
    signature_size = 65

    def H1(self, m: bytes) -> int:
        return _hash_to_field_k1(m, self.context + b"rho")

    def H2(self, m: bytes) -> int:
        return _hash_to_field_k1(m, self.context + b"chal")

    def H3(self, m: bytes) -> int:
        return _hash_to_field_k1(m, self.context + b"nonce")

    def H4(self, m: bytes) -> bytes:
        return hashlib.sha256(self.context + b"msg" + m).digest()

    def H5(self, m: bytes) -> bytes:
        return hashlib.sha256(self.context + b"com" + m).digest()

    def HDKG(self, m: bytes) -> int:
        return _hash_to_field_k1(m, self.context + b"dkg")


def _xonly(p: Element) -> bytes:
    return p.to_bytes()[1:]


class Secp256k1Taproot(Secp256k1Sha256):
    """frost-secp256k1-tr: FROST producing BIP340 signatures under x-only (optionally BIP341-tweaked) keys."""

    key = "schnorr-bip340"
    name = "FROST(secp256k1, SHA-256, BIP340)"
    context = b"FROST-secp256k1-SHA256-TR-v1"
    signature_size = 64
    bip340 = True

    def H2(self, m: bytes) -> int:
        # BIP340 reduces the tagged hash mod n (the bias is negligible since n is close to 2^256).
        return int.from_bytes(tagged_hash("BIP0340/challenge", m), "big") % k1.Q

    def challenge(self, r: Element, y: Element, msg: bytes) -> int:
        # Only x coordinates are hashed; R and Y are taken to have even Y (see nonce_factor / key_adjust).
        return self.H2(_xonly(r) + _xonly(y) + msg)

    def nonce_factor(self, r: Element) -> int:
        assert isinstance(r, Point)
        return -1 if r.has_odd_y() else 1

    def key_adjust(self, y: Element, tap_tweak: bytes | None = None) -> KeyAdjust:
        """Even-Y group key; with `tap_tweak` (b"" for key-path only, or a 32-byte merkle root) the BIP341
        output key Q = P + t G with t = hash_TapTweak(x(P) || merkle_root), itself made even-Y."""
        assert isinstance(y, Point)
        first = -1 if y.has_odd_y() else 1
        if tap_tweak is None:
            return KeyAdjust(first, 0)
        if not isinstance(tap_tweak, (bytes, bytearray)) or len(tap_tweak) not in (0, 32):
            raise InvalidInput("tap_tweak must be b'' (key path only) or a 32-byte merkle root")
        t = int.from_bytes(tagged_hash("TapTweak", _xonly(y) + bytes(tap_tweak)), "big")
        if t >= k1.Q:
            raise InvalidInput("TapTweak hash is not a valid scalar")  # BIP341: fail (probability ~2^-128)
        q = (y if first == 1 else -y) + Point.base_mul(t)
        if q.is_identity:
            raise InvalidInput("tweaked key is the identity")
        second = -1 if q.has_odd_y() else 1
        return KeyAdjust(first * second, second * t % k1.Q)

    def serialize_signature(self, r: Element, z: int) -> bytes:
        # R has even Y by construction (signers negated their nonces otherwise), so x(R) identifies it.
        return _xonly(r) + self.group.serialize_scalar(z)

    def verify_signature(self, y: Element, msg: bytes, signature: bytes) -> bool:
        """BIP340 verification under the x-only key x(Y)."""
        if not isinstance(signature, (bytes, bytearray)) or len(signature) != 64:
            return False
        r_x = int.from_bytes(signature[:32], "big")
        s = int.from_bytes(signature[32:], "big")
        if r_x >= k1.FIELD_P or s >= k1.Q:
            return False
        p = Point.from_bytes(b"\x02" + _xonly(y))  # lift_x: the even-Y point with that x
        e = self.H2(bytes(signature[:32]) + _xonly(p) + msg)
        r = Point.base_mul(s) - p * e
        return not r.is_identity and not r.has_odd_y() and r.x() == r_x

    def public_key_bytes(self, y: Element) -> bytes:
        return _xonly(y)


ED25519_SHA512 = Ed25519Sha512()
SECP256K1_SHA256 = Secp256k1Sha256()
SECP256K1_TR = Secp256k1Taproot()


# group-generic Shamir / Feldman helpers: `vss`, with this module's argument order ----------------------------
class SecretPolynomial(Polynomial):
    """Secret polynomial over Z_order (coefficient 0 is the secret): `vss.Polynomial` with the order first and
    `random` drawing for a suite's group. `repr` is redacted."""

    __slots__ = ()

    def __init__(self, order: int, coefficients: Sequence[int]) -> None:
        super().__init__(coefficients, order)

    @classmethod
    def random(  # type: ignore[override]  # the suite's group comes first here
        cls, group: Group, degree: int, constant: int | None = None
    ) -> "SecretPolynomial":
        return cls(group.order, vss.random_coefficients(degree, constant, group.order))


def evaluate_commitments(group: Group, commitments: Sequence[Element], x: int) -> Element:
    """sum_k C_k x^k (Horner): the public image f(x) G of the share at x."""
    image: Element = vss.evaluate_commitments(commitments, x, group=group)  # vss is group-generic: Any
    return image


def lagrange_coefficient(order: int, i: int, signers: Sequence[int], x: int = 0) -> int:
    """RFC derive_interpolating_value: lambda_i of the signer set at x (default 0), mod `order`."""
    return vss.lagrange_coefficient(i, signers, x, order=order)


SUITES: dict[str, Ciphersuite] = {s.key: s for s in (ED25519_SHA512, SECP256K1_TR, SECP256K1_SHA256)}


def get_suite(key: str | Ciphersuite) -> Ciphersuite:
    if isinstance(key, Ciphersuite):
        return key
    try:
        return SUITES[key]
    except KeyError:
        raise InvalidInput(f"unknown FROST suite {key!r}; expected one of {sorted(SUITES)}") from None
