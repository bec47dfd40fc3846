"""Bit matrices and GF(2^256) on Python ints: what the KOS consistency check needs, batched.

OT extension builds a kappa x m bit matrix column by column (one PRG output per column) and needs it by rows (one
output hash per row, and sum_j chi_j * t_j over GF(2^256) for the check). Both steps are slow bit by bit in Python,
so they run as whole-matrix big-integer operations in C:

* The transpose is Eklundh's: the 256 columns, each padded to 256 * ceil(m / 256) bits, form one integer made of
  256 x 256 blocks, and 8 delta swaps (shift, xor, mask over the whole integer) exchange the off-diagonal
  sub-blocks of every size at once. Row j = 256 b + c ends as the 256-bit word c * blocks + b.
* A carry-less product is an ordinary integer product of "spread" operands in which every bit owns a byte. The
  binary string of the transposed integer is all rows spread at once (`bytes.translate` maps "0"/"1" to 0/1). With
  one factor cut to 255 bits no byte of a product exceeds 255, so nothing carries and the low bit of each byte is
  the coefficient over GF(2); the 256th bit is added back as a plain xor of the rows that have it.

GF(2^256) is GF(2)[x] / (x^256 + x^10 + x^5 + x^2 + 1), an irreducible pentanomial (tests/crypto/test_dkls23_ot.py checks
irreducibility with Rabin's test).
"""

from __future__ import annotations

import operator
from functools import lru_cache, reduce

from gmpy2 import mpz

FIELD_BITS = 256
_WORD_BYTES = FIELD_BITS // 8
_MASK = (1 << FIELD_BITS) - 1
_TO01 = bytes.maketrans(b"01", b"\x00\x01")
_TO_ASCII = bytes.maketrans(b"\x00\x01", b"01")
_SPREAD_BITS = 8  # bits per spread slot: a product of a 255-bit and a 256-bit operand sums at most 255 terms per slot
_LOW_BITS = mpz(int.from_bytes(b"\x01" * (2 * FIELD_BITS), "little"))  # bit 0 of every slot of a spread product
_TOP_SHIFT = _SPREAD_BITS * (FIELD_BITS - 1)


def bits_le(x: int, n: int) -> bytes:
    """n bytes, byte j = bit j of x (0 or 1); x must be below 2^n."""
    return format(x, f"0{n}b").encode().translate(_TO01)[::-1]


def spread(x: int, n: int = FIELD_BITS) -> mpz:
    """x < 2^n with bit j moved to bit 8 j."""
    return mpz.from_bytes(format(x, f"0{n}b").encode().translate(_TO01), "big")


def unspread(value: int, n: int) -> int:
    """The n-bit int whose bit j is bit 8 j of `value` (a spread value whose bytes are all 0 or 1)."""
    return int(int(value).to_bytes(n, "little").translate(_TO_ASCII)[::-1], 2)


def clmul(a: int, b: int) -> int:
    """Carry-less product of two 256-bit polynomials (degree < 511)."""
    low = mpz(spread(a & (_MASK >> 1)) * spread(b)) & _LOW_BITS
    product = unspread(low, 2 * FIELD_BITS)
    return product ^ (b << (FIELD_BITS - 1)) if a >> (FIELD_BITS - 1) else product


def gf_reduce(r: int) -> int:
    """r mod x^256 + x^10 + x^5 + x^2 + 1."""
    while r >> FIELD_BITS:
        hi = r >> FIELD_BITS
        r = (r & _MASK) ^ hi ^ (hi << 2) ^ (hi << 5) ^ (hi << 10)
    return r


def gf_mul(a: int, b: int) -> int:
    return gf_reduce(clmul(a, b))


def blocks(m: int) -> int:
    """256 x 256 blocks a matrix of m rows takes: its columns are padded to 256 * blocks(m) bits."""
    return -(-m // FIELD_BITS)


@lru_cache(maxsize=8)
def _swap_masks(nblk: int) -> tuple[tuple[int, int], ...]:
    """(shift, mask) of the 8 delta swaps that transpose every 256 x 256 block of a matrix stored as 256 columns of
    256 * nblk bits: at scale s, bit (column i, row 256 b + c) with bit s clear in i and set in c trades places with
    (i + s, 256 b + c - s), s (width - 1) bits higher."""
    width = FIELD_BITS * nblk
    out = []
    for s in (128, 64, 32, 16, 8, 4, 2, 1):
        word = sum(1 << c for c in range(FIELD_BITS) if c & s).to_bytes(_WORD_BYTES, "little") * nblk
        zero = bytes(len(word))
        out.append((s * (width - 1), int.from_bytes(b"".join(zero if i & s else word for i in range(FIELD_BITS)), "little")))
    return tuple(out)


@lru_cache(maxsize=8)
def _row_words(m: int) -> tuple[int, ...]:
    """For every row j < m, the index of its 256-bit word in the transposed integer: row 256 b + c is word
    c * blocks(m) + b."""
    nblk = blocks(m)
    return tuple((j & (FIELD_BITS - 1)) * nblk + (j >> 8) for j in range(m))


def _ones(x: int) -> bytes:
    """The binary digits of x as bytes 0/1, most significant first (`bin` is the fastest bit-to-character
    conversion in CPython; the "0b" prefix is mapped too and never read, callers index from the end)."""
    return bin(x).encode().translate(_TO01)


class BitMatrix:
    """An m x 256 bit matrix given by its 256 columns, read by rows.

    `columns` holds column i at bits [i w, i w + m) with w = 256 * blocks(m) (the rest zero), which is what joining
    the columns' little-endian bytes, each padded to w / 8 bytes, gives. `row(j)` is row j as a 256-bit int (bit i =
    column i), `row_bytes(j)` its 32 bytes little-endian.
    """

    __slots__ = ("m", "k", "_nblk", "_words", "_packed")

    def __init__(self, columns: int, m: int) -> None:
        if not 0 < m or not 0 <= columns < 1 << (FIELD_BITS * FIELD_BITS * blocks(m)):
            raise ValueError("need m > 0 and 256 columns of 256 * blocks(m) bits")
        self.m, self.k, self._nblk = m, FIELD_BITS, blocks(m)
        for shift, mask in _swap_masks(self._nblk):
            t = ((columns >> shift) ^ columns) & mask
            columns ^= t ^ (t << shift)
        self._words = columns
        self._packed = columns.to_bytes(_WORD_BYTES * FIELD_BITS * self._nblk, "little")

    @classmethod
    def from_columns(cls, columns: list[int], m: int) -> "BitMatrix":
        """From 256 column ints of m bits each."""
        if len(columns) != FIELD_BITS or any(not 0 <= c < 1 << m for c in columns):
            raise ValueError("need 256 columns of m bits")
        width = FIELD_BITS * blocks(m) // 8
        return cls(int.from_bytes(b"".join(c.to_bytes(width, "little") for c in columns), "little"), m)

    def row_bytes(self, j: int) -> bytes:
        if not 0 <= j < self.m:
            raise IndexError("row out of range")
        w = _WORD_BYTES * _row_words(self.m)[j]
        return self._packed[w : w + _WORD_BYTES]

    def row(self, j: int) -> int:
        return int.from_bytes(self.row_bytes(j), "little")

    def rows_bytes(self, count: int, xor: int = 0) -> list[bytes]:
        """row_bytes(j) xor `xor` (a 256-bit int, little-endian) for j < count: `xor` is applied to every word in one
        operation."""
        if not 0 <= count <= self.m or not 0 <= xor <= _MASK:
            raise ValueError("bad row count or mask")
        packed = self._packed
        if xor:
            nwords = FIELD_BITS * self._nblk
            packed = (self._words ^ int.from_bytes(xor.to_bytes(_WORD_BYTES, "little") * nwords, "little")).to_bytes(
                _WORD_BYTES * nwords, "little")
        return [packed[_WORD_BYTES * w : _WORD_BYTES * (w + 1)] for w in _row_words(self.m)[:count]]

    def spread_rows(self) -> list[mpz]:
        """Every row j < m in spread form (bit i at bit 8 i), in row order: what `inner_product` multiplies."""
        ones = _ones(self._words | 1 << (FIELD_BITS * FIELD_BITS * self._nblk))  # the guard bit keeps leading zeros
        end = len(ones)  # word w is the 256 bytes that end 256 w bytes before the end
        return [mpz.from_bytes(ones[end - FIELD_BITS * (w + 1) : end - FIELD_BITS * w], "big")
                for w in _row_words(self.m)]


def inner_product(chi_raw: bytes, matrix: BitMatrix) -> int:
    """sum_{j < m} chi_j * row_j in GF(2^256), chi_j = bytes [32 j, 32 j + 32) of `chi_raw` little-endian.

    Every chi_j is spread without its top bit (bytes 1..255 of its big-endian binary string), so no slot of a
    product exceeds 255 and the low bits of the xor of the masked products are the carry-less sum; the chi_j with
    the top bit set add row_j x^255, summed as one xor of their spread rows."""
    m = matrix.m
    if not isinstance(chi_raw, (bytes, bytearray)) or len(chi_raw) != _WORD_BYTES * m:
        raise ValueError("need one 32-byte challenge per row")
    ones = _ones(int.from_bytes(chi_raw, "little") | 1 << (FIELD_BITS * m))  # the guard bit keeps chi_(m-1)'s zeros
    end = len(ones)  # chi_j is the 256 bytes ending 256 j bytes before the end; its first (top) byte is left out
    chis = [mpz.from_bytes(ones[end - FIELD_BITS * (j + 1) + 1 : end - FIELD_BITS * j], "big") for j in range(m)]
    rows = matrix.spread_rows()
    acc = reduce(operator.xor, map(_LOW_BITS.__and__, map(operator.mul, chis, rows)), mpz(0))
    tops = [rows[j] for j, byte in enumerate(chi_raw[_WORD_BYTES - 1 :: _WORD_BYTES]) if byte & 0x80]
    if tops:
        acc ^= reduce(operator.xor, tops) << _TOP_SHIFT
    return gf_reduce(unspread(acc, 2 * FIELD_BITS))


__all__ = ["BitMatrix", "FIELD_BITS", "bits_le", "blocks", "clmul", "gf_mul", "gf_reduce", "inner_product", "spread",
           "unspread"]
