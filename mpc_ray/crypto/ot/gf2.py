"""Bit matrices and GF(2^256) on Python ints: what the KOS consistency check needs, batched.

A bit vector is a Python int (bit j = entry j). The check needs two things that are slow bit by bit in Python:
transposing the kappa x m matrix that OT extension builds column by column, and sum_j chi_j * t_j over GF(2^256) for
hundreds of rows. Both go through byte strings in which every bit owns a byte (`bits_le`), so that slicing and big
integer arithmetic do the work in C. A carry-less product is an ordinary integer product of "spread" operands in
which every bit owns a 24-bit slot: no slot's sum of at most 2^24 - 1 terms can carry into the next, and the parity
of each slot is the coefficient over GF(2). The sum of many products is taken before the parities are read, so one
unspread serves a whole batch.

GF(2^256) is GF(2)[x] / (x^256 + x^10 + x^5 + x^2 + 1), an irreducible pentanomial (tests/test_dkls23_ot.py checks
irreducibility with Rabin's test).
"""

from __future__ import annotations

from gmpy2 import mpz

FIELD_BITS = 256
_MASK = (1 << FIELD_BITS) - 1
_SLOT = 3  # bytes per bit in a spread integer: sums of up to 2^24 - 1 products never carry between slots
MAX_TERMS = (1 << (8 * _SLOT)) // FIELD_BITS - 1  # products one spread sum may hold
_TO01 = bytes.maketrans(b"01", b"\x00\x01")
_PARITY = bytes(0x30 + (b & 1) for b in range(256))  # low bit of a byte as an ASCII "0"/"1"


def bits_le(x: int, n: int) -> bytes:
    """n bytes, byte j = bit j of x (0 or 1); x must be below 2^n."""
    return format(x, f"0{n}b").encode().translate(_TO01)[::-1]


def spread(x: int, n: int = FIELD_BITS) -> mpz:
    """x < 2^n with bit j moved to bit 24 j."""
    buf = bytearray(_SLOT * n)
    buf[0::_SLOT] = bits_le(x, n)
    return mpz(int.from_bytes(buf, "little"))


def unspread(value: mpz, n: int) -> int:
    """The parity of each of the n 24-bit slots of a sum of spread products, as an n-bit int."""
    raw = int(value).to_bytes(_SLOT * n, "little")
    return int(raw[0::_SLOT].translate(_PARITY)[::-1], 2)


def clmul(a: int, b: int) -> int:
    """Carry-less product of two 256-bit polynomials (degree < 511)."""
    return unspread(spread(a) * spread(b), 2 * FIELD_BITS)


def gf_reduce(r: int) -> int:
    """r mod x^256 + x^10 + x^5 + x^2 + 1."""
    while r >> FIELD_BITS:
        hi = r >> FIELD_BITS
        r = (r & _MASK) ^ hi ^ (hi << 2) ^ (hi << 5) ^ (hi << 10)
    return r


def gf_mul(a: int, b: int) -> int:
    return gf_reduce(clmul(a, b))


class BitMatrix:
    """An m x k bit matrix (k a multiple of 8) given by its k columns (m-bit ints), read by rows.

    `row(j)` is row j as a k-bit int, `row_bytes(j)` its k/8 bytes little-endian, `spread_row(j)` its spread form.
    """

    __slots__ = ("m", "k", "_packed", "_spread")

    def __init__(self, columns: list[int], m: int) -> None:
        k = len(columns)
        if k % 8:
            raise ValueError("column count must be a multiple of 8")
        self.m, self.k = m, k
        colbits = [bits_le(c, m) for c in columns]
        kb = k // 8
        packed = bytearray(m * kb)
        for g in range(kb):  # byte g of every row holds columns 8g .. 8g+7: OR eight one-bit-per-byte strings
            acc = 0
            for b in range(8):
                acc |= int.from_bytes(colbits[8 * g + b], "little") << b
            packed[g::kb] = acc.to_bytes(m, "little")
        spread_buf = bytearray(_SLOT * k * m)
        for i, bits in enumerate(colbits):
            spread_buf[_SLOT * i :: _SLOT * k] = bits
        self._packed = bytes(packed)
        self._spread = spread_buf

    def row_bytes(self, j: int) -> bytes:
        kb = self.k // 8
        return self._packed[kb * j : kb * (j + 1)]

    def row(self, j: int) -> int:
        return int.from_bytes(self.row_bytes(j), "little")

    def spread_row(self, j: int) -> mpz:
        width = _SLOT * self.k
        return mpz(int.from_bytes(self._spread[width * j : width * (j + 1)], "little"))


def spread_many(raw: bytes, count: int) -> list[mpz]:
    """Split `raw` (count * 32 bytes) into 256-bit little-endian elements, each in spread form."""
    total = FIELD_BITS * count
    buf = bytearray(_SLOT * total)
    buf[0::_SLOT] = bits_le(int.from_bytes(raw, "little"), total)
    width = _SLOT * FIELD_BITS
    return [mpz(int.from_bytes(buf[width * j : width * (j + 1)], "little")) for j in range(count)]


def inner_product(chi_spread: list[mpz], matrix: BitMatrix, rows: int) -> int:
    """sum_{j < rows} chi_j * row_j in GF(2^256), for 256-column matrices and at most MAX_TERMS rows."""
    if matrix.k != FIELD_BITS or not 0 <= rows <= min(MAX_TERMS, matrix.m, len(chi_spread)):
        raise ValueError("need 256-bit rows, at most MAX_TERMS of them")
    acc = mpz(0)
    for j in range(rows):
        acc += chi_spread[j] * matrix.spread_row(j)
    return gf_reduce(unspread(acc, 2 * FIELD_BITS))


__all__ = ["BitMatrix", "FIELD_BITS", "bits_le", "clmul", "gf_mul", "gf_reduce", "inner_product", "spread",
           "spread_many", "unspread"]
