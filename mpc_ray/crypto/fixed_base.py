"""Fixed-base exponentiation (spec: "pregenerated table for fixed-base multiexp").

One base g and modulus n, many exponents: a table of g^(32^j) turns each g^e into about |e|/5 multiplications plus
one bucket pass (Yao / BGMW), instead of |e| squarings. Used for the ring-Pedersen s and t of every peer
(`ring_pedersen.rp_commit`) and for the many powers of t that pi_prm needs (`PaillierSecretKey.powmod_n_many`).
"""

from __future__ import annotations

import gmpy2
from gmpy2 import mpz

_WINDOW = 5  # base-32 digits, so gmpy2.digits(e, 32) yields them
_DIGIT = {c: i for i, c in enumerate("0123456789abcdefghijklmnopqrstuv")}


class FixedBase:
    """g^e mod n for many exponents 0 <= e < 2^max_bits with one base g (Yao / BGMW bucket method, 5-bit digits).

    The table costs about `max_bits` squarings once; each power then takes about max_bits/5 + 62 multiplications,
    about 4x faster than gmpy2.powmod at 1536 to 3072 bits. Tables of several bases with one modulus share the
    buckets of one pass (`product`). Not constant time (neither is gmpy2.powmod).
    """

    __slots__ = ("n", "powers", "max_bits")

    def __init__(self, g: mpz, n: mpz, max_bits: int) -> None:
        count = -(-max_bits // _WINDOW)
        cur = mpz(g) % n
        powers = [cur]
        for _ in range(count - 1):
            cur = gmpy2.powmod(cur, 1 << _WINDOW, n)
            powers.append(cur)
        self.n = mpz(n)
        self.powers = powers
        self.max_bits = count * _WINDOW

    def pow(self, e: mpz) -> mpz:
        """g^e mod n for 0 <= e < 2^max_bits."""
        return FixedBase.product([(self, e)], self.n)

    @staticmethod
    def product(terms: list[tuple["FixedBase", mpz]], n: mpz) -> mpz:
        """prod g_j^(e_j) mod n for tables mod n and exponents 0 <= e_j < 2^max_bits."""
        buckets: list[mpz | None] = [None] * (1 << _WINDOW)
        for table, e in terms:
            powers = table.powers
            # digits most significant first; digit j from the right weighs 32^j
            for j, ch in enumerate(reversed(gmpy2.digits(e, 1 << _WINDOW))):
                d = _DIGIT[ch]
                if d:
                    b = buckets[d]
                    buckets[d] = powers[j] if b is None else b * powers[j] % n
        acc: mpz | None = None
        res: mpz | None = None
        for d in range(len(buckets) - 1, 0, -1):  # res = prod_d buckets[d]^d by running products
            b = buckets[d]
            if b is not None:
                acc = b if acc is None else acc * b % n
            if acc is not None:
                res = acc if res is None else res * acc % n
        return mpz(1) if res is None else res
