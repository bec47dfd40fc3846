"""secp256k1 scalars (plain ints mod Q) and points over coincurve.

coincurve cannot represent the point at infinity, so `Point` keeps it as ``None`` internally. Decoding from
bytes always validates (on the curve; identity refused unless asked for).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

import coincurve

Q = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
FIELD_P = 2**256 - 2**32 - 977
IDENTITY_BYTES = b"\x00" * 33


def random_scalar() -> int:
    """A uniform non-zero scalar."""
    while True:
        k = secrets.randbelow(Q)
        if k:
            return k


def scalar_inv(k: int) -> int:
    if k % Q == 0:
        raise ZeroDivisionError("zero has no inverse mod Q")
    return pow(k, -1, Q)


def scalar_from_bytes(data: bytes) -> int:
    """32 bytes big-endian, must be < Q (canonical)."""
    if len(data) != 32:
        raise ValueError("scalar must be 32 bytes")
    k = int.from_bytes(data, "big")
    if k >= Q:
        raise ValueError("scalar not reduced mod Q")
    return k


class Point:
    """An element of the secp256k1 group, identity included."""

    __slots__ = ("_pk", "_enc")

    def __init__(self, pk: coincurve.PublicKey | None) -> None:
        self._pk = pk
        self._enc: bytes | None = None

    # construction -------------------------------------------------------------------------------------
    @classmethod
    def identity(cls) -> "Point":
        return cls(None)

    @classmethod
    def generator(cls) -> "Point":
        return _G

    @classmethod
    def base_mul(cls, k: int) -> "Point":
        k %= Q
        if k == 0:
            return cls(None)
        return cls(coincurve.PublicKey.from_valid_secret(k.to_bytes(32, "big")))

    @classmethod
    def from_bytes(cls, data: bytes, *, allow_identity: bool = False) -> "Point":
        """Decode a 33-byte compressed point (or 65-byte uncompressed); validates curve membership."""
        if not isinstance(data, (bytes, bytearray)):
            raise ValueError("point must be bytes")
        data = bytes(data)
        if data == IDENTITY_BYTES:
            if allow_identity:
                return cls(None)
            raise ValueError("point is the identity")
        if len(data) not in (33, 65):
            raise ValueError("point must be 33 bytes compressed")
        try:
            return cls(coincurve.PublicKey(data))
        except Exception as exc:  # coincurve raises ValueError/TypeError on a bad encoding
            raise ValueError("not a point on secp256k1") from exc

    # group law ----------------------------------------------------------------------------------------
    @property
    def is_identity(self) -> bool:
        return self._pk is None

    def __add__(self, other: "Point") -> "Point":
        if self._pk is None:
            return other
        if other._pk is None:
            return self
        try:
            return Point(coincurve.PublicKey.combine_keys([self._pk, other._pk]))
        except ValueError:
            return Point(None)  # P + (-P)

    def __neg__(self) -> "Point":
        if self._pk is None:
            return self
        enc = self.to_bytes()
        return Point(coincurve.PublicKey(bytes([enc[0] ^ 1]) + enc[1:]))

    def __sub__(self, other: "Point") -> "Point":
        return self + (-other)

    def __mul__(self, k: int) -> "Point":
        k %= Q
        if k == 0 or self._pk is None:
            return Point(None)
        return Point(self._pk.multiply(k.to_bytes(32, "big")))

    __rmul__ = __mul__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and self.to_bytes() == other.to_bytes()

    def __hash__(self) -> int:
        return hash(self.to_bytes())

    # encodings ----------------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """33-byte compressed SEC1; the identity encodes as 33 zero bytes (internal use only)."""
        if self._enc is None:
            self._enc = IDENTITY_BYTES if self._pk is None else self._pk.format(compressed=True)
        return self._enc

    def x(self) -> int:
        if self._pk is None:
            raise ValueError("identity has no x coordinate")
        return int.from_bytes(self.to_bytes()[1:], "big")

    def has_odd_y(self) -> bool:
        if self._pk is None:
            raise ValueError("identity has no y coordinate")
        return self.to_bytes()[0] == 3

    def __repr__(self) -> str:
        return f"Point({self.to_bytes().hex()})"


def sum_points(points: Iterable[Point]) -> Point:
    """Sum of many points in one libsecp256k1 call (identities skipped)."""
    keys = [p._pk for p in points if p._pk is not None]
    if not keys:
        return Point(None)
    if len(keys) == 1:
        return Point(keys[0])
    try:
        return Point(coincurve.PublicKey.combine_keys(keys))
    except ValueError:
        # the sum is the identity, or a partial sum hit it: fall back to pairwise
        acc = Point(None)
        for k in keys:
            acc = acc + Point(k)
        return acc


_G = Point(coincurve.PublicKey.from_valid_secret((1).to_bytes(32, "big")))
G = _G
