"""Ring-Pedersen parameters (N, s, t) with t = r^2 mod N, s = t^lambda mod N.

Commitments s^a t^b mod N are what the range proofs of CGGMP21 are made against: a verifier's own (N, s, t)
binds the prover, and the verifier can check them with CRT since it knows its own factorisation.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import gmpy2
from gmpy2 import mpz

from .paillier import PaillierSecretKey, sample_unit


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
        """s^a t^b mod N (a, b may be negative)."""
        return gmpy2.powmod(self.s, mpz(a), self.n) * gmpy2.powmod(self.t, mpz(b), self.n) % self.n

    def is_well_formed(self) -> bool:
        n = self.n
        return (
            n > 1
            and n % 2 == 1
            and 0 < self.s < n
            and 0 < self.t < n
            and gmpy2.gcd(self.s, n) == 1
            and gmpy2.gcd(self.t, n) == 1
            and self.s != self.t
        )


class RingPedersenSecret:
    """lambda with s = t^lambda, plus the factorisation for fast (CRT) commitments. `repr` is redacted."""

    __slots__ = ("params", "lam", "paillier")

    def __init__(self, params: RingPedersenParams, lam: int, paillier: PaillierSecretKey) -> None:
        self.params, self.lam, self.paillier = params, mpz(lam), paillier

    def __repr__(self) -> str:
        return "RingPedersenSecret(<redacted>)"

    def commit(self, a: int, b: int) -> mpz:
        """s^a t^b mod N using CRT (verifier side: the verifier owns these parameters)."""
        sk = self.paillier
        return sk.powmod_n(self.params.s, a) * sk.powmod_n(self.params.t, b) % self.params.n


def generate_ring_pedersen(sk: PaillierSecretKey) -> RingPedersenSecret:
    """Fresh (s, t) on the Paillier modulus of `sk`."""
    n = sk.public.n
    r = sample_unit(n)
    t = r * r % n
    lam = mpz(secrets.randbelow(int(sk.phi)))
    s = sk.powmod_n(t, lam)
    return RingPedersenSecret(RingPedersenParams(n, s, t), lam, sk)
