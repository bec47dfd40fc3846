"""The Ed25519 prime-order group (edwards25519 points of order L) over PyNaCl's libsodium bindings.

Scalars are plain ints mod L, encoded as 32 bytes little-endian. Points are `EdPoint`, a thin wrapper around a
canonical 32-byte encoding. Why a wrapper and these rules:

- libsodium's ``crypto_scalarmult_ed25519_*_noclamp`` fail on a zero scalar or an identity result and silently
  drop bit 255 of the scalar, so every multiplication here reduces the scalar first and handles zero and the
  identity itself.
- ``crypto_core_ed25519_add`` accepts any on-curve point, including the identity (``01 00 .. 00``), so sums start
  from the identity encoding.
- Decoding from bytes (``EdPoint.from_bytes``) accepts only canonical encodings of points of the prime-order
  subgroup, and refuses the identity unless asked: ``crypto_core_ed25519_is_valid_point`` checks canonical y,
  on-curve, not small order and main subgroup; the explicit y < p test below keeps that independent of the
  libsodium version.
"""

from __future__ import annotations

from typing import Iterable

from nacl import bindings as _nacl

L = 2**252 + 27742317777372353535851937790883648493
"""Order of the prime-order subgroup (the scalar field)."""
FIELD_P = 2**255 - 19
IDENTITY_BYTES = (1).to_bytes(32, "little")  # (x, y) = (0, 1)
SCALAR_SIZE = 32
POINT_SIZE = 32


def scalar_to_bytes(k: int) -> bytes:
    """32 bytes little-endian of k mod L."""
    return (k % L).to_bytes(32, "little")


def scalar_from_bytes(data: bytes) -> int:
    """Decode a canonical scalar: exactly 32 bytes little-endian, value < L (RFC 9591 DeserializeScalar)."""
    if not isinstance(data, (bytes, bytearray)) or len(data) != SCALAR_SIZE:
        raise ValueError("scalar must be 32 bytes")
    k = int.from_bytes(data, "little")
    if k >= L:
        raise ValueError("scalar not reduced mod L")
    return k


class EdPoint:
    """An element of the prime-order subgroup of edwards25519, identity included. Immutable."""

    __slots__ = ("_enc",)

    def __init__(self, encoding: bytes) -> None:
        # Internal constructor: the encoding must already be known valid (use from_bytes for untrusted data).
        self._enc = bytes(encoding)

    # construction -------------------------------------------------------------------------------------
    @classmethod
    def identity(cls) -> "EdPoint":
        return _IDENTITY

    @classmethod
    def generator(cls) -> "EdPoint":
        return _B

    @classmethod
    def base_mul(cls, k: int) -> "EdPoint":
        k %= L
        if k == 0:
            return _IDENTITY  # libsodium refuses a zero scalar
        return cls(_nacl.crypto_scalarmult_ed25519_base_noclamp(k.to_bytes(32, "little")))

    @classmethod
    def from_bytes(cls, data: bytes, *, allow_identity: bool = False) -> "EdPoint":
        """Decode and validate: canonical, on the curve, in the prime-order subgroup, not the identity."""
        if not isinstance(data, (bytes, bytearray)) or len(data) != POINT_SIZE:
            raise ValueError("point must be 32 bytes")
        data = bytes(data)
        if data == IDENTITY_BYTES:
            if allow_identity:
                return _IDENTITY
            raise ValueError("point is the identity")
        if int.from_bytes(data, "little") & ((1 << 255) - 1) >= FIELD_P:
            raise ValueError("non-canonical point encoding")
        if not _nacl.crypto_core_ed25519_is_valid_point(data):
            raise ValueError("not a point of the prime-order subgroup")
        return cls(data)

    # group law ----------------------------------------------------------------------------------------
    @property
    def is_identity(self) -> bool:
        return self._enc == IDENTITY_BYTES

    def __add__(self, other: "EdPoint") -> "EdPoint":
        if self.is_identity:
            return other
        if other.is_identity:
            return self
        return EdPoint(_nacl.crypto_core_ed25519_add(self._enc, other._enc))

    def __neg__(self) -> "EdPoint":
        if self.is_identity:
            return self
        # In the prime-order subgroup only the identity has x = 0, so negation is flipping the sign bit of x.
        return EdPoint(self._enc[:31] + bytes([self._enc[31] ^ 0x80]))

    def __sub__(self, other: "EdPoint") -> "EdPoint":
        return self + (-other)

    def __mul__(self, k: int) -> "EdPoint":
        k %= L
        if k == 0 or self.is_identity:
            return _IDENTITY  # both would make libsodium fail
        if k == 1:
            return self
        return EdPoint(_nacl.crypto_scalarmult_ed25519_noclamp(k.to_bytes(32, "little"), self._enc))

    __rmul__ = __mul__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EdPoint) and self._enc == other._enc

    def __hash__(self) -> int:
        return hash(self._enc)

    # encodings ----------------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Canonical 32-byte encoding (RFC 8032); the identity encodes as 01 00 .. 00."""
        return self._enc

    def __repr__(self) -> str:
        return f"EdPoint({self._enc.hex()})"


def sum_points(points: Iterable[EdPoint]) -> EdPoint:
    """Sum with crypto_core_ed25519_add, starting from the identity."""
    acc = _IDENTITY
    for p in points:
        acc = acc + p
    return acc


_IDENTITY = EdPoint(IDENTITY_BYTES)
_B = EdPoint(_nacl.crypto_scalarmult_ed25519_base_noclamp((1).to_bytes(32, "little")))
B = _B
