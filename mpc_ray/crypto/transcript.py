"""Fiat-Shamir transcripts: tagged, length-prefixed, unambiguous.

Every append writes ``len(label) || label || kind || len(value) || value`` into a running SHA-512, so no two
different sequences of appends hash alike (the TSSHOCK "alpha-shuffle" attack used delimiter-joined strings).
Challenges are squeezed from SHAKE-256 over the state, and each challenge is absorbed back so the next differs.
"""

from __future__ import annotations

import hashlib
from typing import Iterable

from .secp256k1 import Q, Point

_DOMAIN = b"mpc-ray/transcript/v1"


def _len(n: int) -> bytes:
    return n.to_bytes(8, "big")


def int_to_bytes(value: int) -> bytes:
    """Sign byte then big-endian magnitude (zero is the empty magnitude)."""
    value = int(value)
    mag = abs(value)
    return (b"-" if value < 0 else b"+") + mag.to_bytes((mag.bit_length() + 7) // 8, "big")


class Transcript:
    __slots__ = ("_h",)

    def __init__(self, protocol: str) -> None:
        self._h = hashlib.sha512()
        self._write(b"domain", b"B", _DOMAIN)
        self._write(b"protocol", b"B", protocol.encode())

    def _write(self, label: bytes, kind: bytes, data: bytes) -> None:
        self._h.update(_len(len(label)) + label + kind + _len(len(data)) + data)

    def fork(self) -> "Transcript":
        t = Transcript.__new__(Transcript)
        t._h = self._h.copy()
        return t

    def append_bytes(self, label: str, data: bytes) -> "Transcript":
        self._write(label.encode(), b"B", bytes(data))
        return self

    def append_int(self, label: str, value: int) -> "Transcript":
        self._write(label.encode(), b"I", int_to_bytes(value))
        return self

    def append_ints(self, label: str, values: Iterable[int]) -> "Transcript":
        values = list(values)
        self._write(label.encode(), b"L", _len(len(values)))
        for v in values:
            self._write(b"", b"I", int_to_bytes(v))
        return self

    def append_point(self, label: str, point: Point) -> "Transcript":
        self._write(label.encode(), b"P", point.to_bytes())
        return self

    def append_points(self, label: str, points: Iterable[Point]) -> "Transcript":
        points = list(points)
        self._write(label.encode(), b"L", _len(len(points)))
        for p in points:
            self._write(b"", b"P", p.to_bytes())
        return self

    # challenges ---------------------------------------------------------------------------------------
    def challenge_bytes(self, label: str, n: int) -> bytes:
        self._write(label.encode(), b"C", _len(n))
        out = hashlib.shake_256(self._h.digest()).digest(n)
        self._write(b"challenge", b"B", out)
        return out

    def challenge_int(self, label: str, bits: int) -> int:
        """Uniform in [0, 2^bits)."""
        raw = int.from_bytes(self.challenge_bytes(label, (bits + 7) // 8), "big")
        return raw >> ((8 - bits % 8) % 8)

    def challenge_below(self, label: str, bound: int) -> int:
        """Uniform in [0, bound), with 128 extra bits so the modular bias is negligible."""
        return self.challenge_int(label, bound.bit_length() + 128) % bound

    def challenge_scalar(self, label: str) -> int:
        return self.challenge_below(label, Q)

    def challenge_signed_q(self, label: str) -> int:
        """Uniform in [-Q, Q] (the CGGMP21 challenge e in +-q)."""
        return self.challenge_below(label, 2 * Q + 1) - Q

    def challenge_bits(self, label: str, m: int) -> list[int]:
        raw = self.challenge_bytes(label, (m + 7) // 8)
        return [(raw[i // 8] >> (i % 8)) & 1 for i in range(m)]
