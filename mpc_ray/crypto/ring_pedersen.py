"""Ring-Pedersen parameters (N, s, t) with t = r^2 mod N, s = t^lambda mod N.

Commitments s^a t^b mod N are what the range proofs of CGGMP21 are made against: a verifier's own (N, s, t)
binds the prover, and the verifier can check them with CRT since it knows its own factorisation.

Who computes s^a t^b, and how (`fast_commit` on either class picks the right one):
- anyone with only the public `RingPedersenParams` (every prover, and a verifier handed bare parameters): cached
  fixed-base tables of s and t (`rp_commit`), about 4x faster than two plain exponentiations;
- the owner, through its `RingPedersenSecret`: t^(lambda a + b) by CRT, the exponent reduced mod p-1 and q-1,
  which is exact since s = t^lambda (at level 128 about 2.5x faster than the CRT of s^a and t^b apart, and a
  little faster than the tables).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from functools import lru_cache

import gmpy2
from gmpy2 import mpz

from .fixed_base import FixedBase
from .paillier import PaillierSecretKey, sample_unit

# --------------------------------------------------------------------------------------------------------------
# fast commitments without the factorisation: fixed-base tables of s and t
# --------------------------------------------------------------------------------------------------------------

_FB_EXTRA_BITS = 1024  # rp_commit tables cover exponents up to |N| + 1024 bits (>= 2^(ell+eps) N^); larger fall back


# s and t of a peer stay the same for the life of a committee while every pi_enc / pi_aff_g / pi_mul_star / pi_log*
# / pi_fac against that peer commits with them, so their tables are built once and cached (public values only).
@lru_cache(maxsize=16)
def _rp_tables(n: mpz, s: mpz, t: mpz) -> tuple[FixedBase, FixedBase]:
    bits = int(n).bit_length() + _FB_EXTRA_BITS
    return FixedBase(s, n, bits), FixedBase(t, n, bits)


def rp_commit(params: "RingPedersenParams", a: int, b: int) -> mpz:
    """s^a t^b mod N with cached fixed-base tables (a, b may be negative). Same value as `params.commit`.

    Prefer `params.fast_commit(a, b)`; this module-level function is what it calls (benchmarks wrap it by name)."""
    n = mpz(params.n)
    ts, tt = _rp_tables(n, mpz(params.s), mpz(params.t))
    a, b = mpz(a), mpz(b)
    if max(abs(a).bit_length(), abs(b).bit_length()) > ts.max_bits:
        return params.commit(a, b)
    pos = [(tab, e) for tab, e in ((ts, a), (tt, b)) if e > 0]
    neg = [(tab, -e) for tab, e in ((ts, a), (tt, b)) if e < 0]
    res = FixedBase.product(pos, n) if pos else mpz(1)
    if neg:  # one inversion for both negative exponents
        res = res * gmpy2.invert(FixedBase.product(neg, n), n) % n
    return res


# --------------------------------------------------------------------------------------------------------------
# parameters and the owner's secret
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RingPedersenParams:
    n: mpz
    s: mpz
    t: mpz

    @property
    def params(self) -> "RingPedersenParams":
        """Self, so that verifiers accept params or the owner's `RingPedersenSecret` (CRT) alike."""
        return self

    def commit(self, a: int, b: int) -> mpz:
        """s^a t^b mod N (a, b may be negative) by two plain exponentiations: the reference value."""
        return gmpy2.powmod(self.s, mpz(a), self.n) * gmpy2.powmod(self.t, mpz(b), self.n) % self.n

    def fast_commit(self, a: int, b: int) -> mpz:
        """s^a t^b mod N, the fastest way without the factorisation: cached fixed-base tables (`rp_commit`)."""
        return rp_commit(self, a, b)

    def pow(self, base: mpz, exp: int) -> mpz:
        """base^exp mod N (exp may be negative, base must be a unit)."""
        return gmpy2.powmod(base, mpz(exp), self.n)

    def is_well_formed(self) -> bool:
        n = self.n
        return bool(  # gmpy2 is untyped: the comparisons are Any to mypy
            n > 1
            and n % 2 == 1
            and 0 < self.s < n
            and 0 < self.t < n
            and gmpy2.gcd(self.s, n) == 1
            and gmpy2.gcd(self.t, n) == 1
            and self.s != self.t
        )


class RingPedersenSecret:
    """lambda with s = t^lambda, plus the factorisation for fast (CRT) commitments. `repr` is redacted; the
    secrets (lambda, the Paillier key) stay in this object."""

    __slots__ = ("params", "lam", "paillier", "_lam_exact")

    def __init__(self, params: RingPedersenParams, lam: int, paillier: PaillierSecretKey) -> None:
        self.params, self.lam, self.paillier = params, mpz(lam), paillier
        # `commit` uses s = t^lambda. Always true of `generate_ring_pedersen`; a secret assembled from values that do
        # not satisfy it (the pi_prm tests build such on purpose) keeps the two-exponentiation form, so `commit`
        # is s^a t^b either way. One CRT exponentiation, once.
        self._lam_exact = paillier.powmod_n(params.t, self.lam) == mpz(params.s) % mpz(params.n)

    def __repr__(self) -> str:
        return "RingPedersenSecret(<redacted>)"

    def commit(self, a: int, b: int) -> mpz:
        """s^a t^b mod N = t^(lambda a + b) mod N by CRT, the exponent reduced mod p-1 and q-1 (exact, negative a or b
        included: t is a unit and s = t^lambda). Verifier side: the verifier owns these parameters."""
        sk, p = self.paillier, self.params
        if self._lam_exact:
            return sk.powmod_n(p.t, self.lam * mpz(a) + mpz(b))
        return sk.powmod_n(p.s, a) * sk.powmod_n(p.t, b) % p.n

    def fast_commit(self, a: int, b: int) -> mpz:
        """s^a t^b mod N, the owner's fastest way: `commit`."""
        return self.commit(a, b)

    def pow(self, base: mpz, exp: int) -> mpz:
        """base^exp mod N by CRT (exp may be negative, base must be a unit)."""
        return self.paillier.powmod_n(base, exp)


def generate_ring_pedersen(sk: PaillierSecretKey) -> RingPedersenSecret:
    """Fresh (s, t) on the Paillier modulus of `sk`."""
    n = sk.public.n
    r = sample_unit(n)
    t = r * r % n
    lam = mpz(secrets.randbelow(int(sk.phi)))
    s = sk.powmod_n(t, lam)
    return RingPedersenSecret(RingPedersenParams(n, s, t), lam, sk)
