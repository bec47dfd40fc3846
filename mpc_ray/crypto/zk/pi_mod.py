"""Pi-mod: N is a Paillier-Blum modulus (CGGMP21, Fig. 16), made non-interactive with Fiat-Shamir.

The prover knows N = p q with p, q = 3 mod 4 and gcd(N, phi(N)) = 1. It sends w with Jacobi(w, N) = -1; for each of
m challenges y_i in Z*_N it answers z_i = y_i^(N^-1 mod phi) and x_i, a principal 4th root of (-1)^a_i w^b_i y_i.
Soundness error 2^-m, so the full `level.m` repetitions are always used.

Beyond the paper's equations the verifier checks (see the protocol notes and the 2025 erratum): N odd, N > 1,
N not prime, N long enough for the level, w a unit with Jacobi symbol -1, every x_i, z_i a unit, every a_i, b_i a
bit, every list of length m. Structural checks run before any exponentiation.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import gmpy2
from gmpy2 import mpz

from ...errors import ProofError
from ..paillier import PaillierSecretKey
from ..params import SecurityLevel
from ..transcript import Transcript
from .common import require, require_int, require_unit

NAME = "pi_mod"

# Honest N gives a non-unit challenge with negligible probability (finding one factors N); a modulus with tiny
# factors may give many, so resampling is capped and running out rejects the proof.
_MAX_DRAWS = 256


@dataclass(frozen=True)
class Proof:
    w: int
    x: list[int]
    a: list[int]
    b: list[int]
    z: list[int]


def _challenges(transcript: Transcript, n: mpz, w: mpz, level: SecurityLevel) -> list[mpz]:
    """The m challenges y_i in Z*_N, bound to N, w and the level; non-units are redrawn deterministically."""
    t = transcript.fork()
    t.append_bytes("proof", NAME.encode())
    t.append_int("m", level.m)
    t.append_int("N", n)
    t.append_int("w", w)
    ys: list[mpz] = []
    for _ in range(level.m):
        for _attempt in range(_MAX_DRAWS):
            y = mpz(t.challenge_below("y", int(n)))
            if y > 0 and gmpy2.gcd(y, n) == 1:
                ys.append(y)
                break
        else:
            raise _error("challenge_y", "no unit challenge found")
    return ys


def _error(check: str, detail: str = "") -> ProofError:
    return ProofError(f"{NAME}.{check}", detail)


class _Crt:
    """Exponentiation mod N = p q from the halves, exponents reduced mod p-1 and q-1 (bases must be units)."""

    __slots__ = ("p", "q", "pm1", "qm1", "pinv_q")

    def __init__(self, p: mpz, q: mpz) -> None:
        self.p, self.q = p, q
        self.pm1, self.qm1 = p - 1, q - 1
        self.pinv_q = gmpy2.invert(p, q)

    def combine(self, xp: mpz, xq: mpz) -> mpz:
        return xp + self.p * ((xq - xp) * self.pinv_q % self.q)

    def pow2(self, base: mpz, ep: mpz, eq: mpz) -> mpz:
        """base^e mod N given e mod p-1 and e mod q-1."""
        return self.combine(gmpy2.powmod(base, ep, self.p), gmpy2.powmod(base, eq, self.q))


def _sample_w(n: mpz) -> mpz:
    """A uniform unit of Z*_N with Jacobi symbol -1 (rejection sampling, about two tries)."""
    while True:
        w = mpz(secrets.randbelow(int(n)))
        if w > 0 and gmpy2.jacobi(w, n) == -1 and gmpy2.gcd(w, n) == 1:
            return w


def prove(transcript: Transcript, *, sk: PaillierSecretKey, level: SecurityLevel) -> Proof:
    """Proof that sk.public.n is a Paillier-Blum modulus.

    The key is not validated: a key that is not Paillier-Blum yields a proof that fails verification (this is
    what a cheating prover would send), never an exception from the root extraction.
    """
    p, q = mpz(sk.p), mpz(sk.q)
    n = p * q
    crt = _Crt(p, q)
    w = _sample_w(n)
    ys = _challenges(transcript, n, w, level)

    # z_i = y_i^(N^-1 mod phi): per prime, N^-1 mod p-1 and q-1. If N is not invertible (not a Paillier modulus)
    # there is no N-th root; send y_i, which fails verification.
    try:
        zp, zq = gmpy2.invert(n, crt.pm1), gmpy2.invert(n, crt.qm1)
    except ZeroDivisionError:
        zp = zq = mpz(1)
    # Principal 4th root of a quadratic residue u mod p = 3 mod 4 is u^(((p+1)/4)^2) (square root twice).
    rp = ((p + 1) // 4) ** 2 % crt.pm1
    rq = ((q + 1) // 4) ** 2 % crt.qm1
    # Legendre symbols of -1 and w, so the QR test of (-1)^a w^b y is a product of signs.
    m1 = (gmpy2.legendre(p - 1, p), gmpy2.legendre(q - 1, q))
    lw = (gmpy2.legendre(w, p), gmpy2.legendre(w, q))
    options = ((0, 0, 1, 1), (1, 0, m1[0], m1[1]), (0, 1, lw[0], lw[1]), (1, 1, m1[0] * lw[0], m1[1] * lw[1]))

    xs: list[int] = []
    a_bits: list[int] = []
    b_bits: list[int] = []
    zs: list[int] = []
    for y in ys:
        ly = (gmpy2.legendre(y, p), gmpy2.legendre(y, q))
        a, b = 0, 0
        for oa, ob, sp, sq in options:
            if sp * ly[0] == 1 and sq * ly[1] == 1:
                a, b = oa, ob
                break
        y_res = y * w % n if b else y
        if a:
            y_res = n - y_res
        xs.append(int(crt.pow2(y_res, rp, rq)))
        zs.append(int(crt.pow2(y, zp, zq)))
        a_bits.append(a)
        b_bits.append(b)
    return Proof(int(w), xs, a_bits, b_bits, zs)


def _require_list(value: Any, m: int, check: str) -> None:
    require(isinstance(value, (list, tuple)) and len(value) == m, check, f"expected a list of {m} values")


def _require_bit(value: Any, check: str) -> None:
    require_int(value, check)
    require(value in (0, 1), check, "not a bit")


def verify(transcript: Transcript, proof: Proof, *, n: int, level: SecurityLevel) -> None:
    """Raise ProofError("pi_mod.<check>") unless `proof` shows that `n` is a Paillier-Blum modulus."""
    m = level.m
    require(isinstance(proof, Proof), f"{NAME}.type_proof", "not a pi_mod proof")
    # the statement N
    require_int(n, f"{NAME}.type_n")
    n = mpz(n)
    require(n > 1 and n.bit_length() >= level.modulus_bits, f"{NAME}.short_n", f"below {level.modulus_bits} bits")
    require(n % 2 == 1, f"{NAME}.even_n", "N is even")
    require(not gmpy2.is_prime(n), f"{NAME}.prime_n", "N is prime")
    # shapes before any value is read, so short or wrong-typed lists fail here and not with an IndexError
    for field in ("x", "a", "b", "z"):
        _require_list(getattr(proof, field), m, f"{NAME}.length")
    # w: a unit with Jacobi symbol -1 (gcd first: a non-unit also has Jacobi 0, name the precise failure)
    w = proof.w
    require_int(w, f"{NAME}.range_w")
    require(0 < w < n, f"{NAME}.range_w", "w outside (0, N)")
    w = mpz(w)
    require(gmpy2.gcd(w, n) == 1, f"{NAME}.gcd_w", "gcd(w, N) != 1")
    require(gmpy2.jacobi(w, n) == -1, f"{NAME}.jacobi_w", "Jacobi(w, N) != -1")
    for i in range(m):
        require_unit(proof.x[i], n, f"{NAME}.unit_x")
        require_unit(proof.z[i], n, f"{NAME}.unit_z")
        _require_bit(proof.a[i], f"{NAME}.bit_a")
        _require_bit(proof.b[i], f"{NAME}.bit_b")

    ys = _challenges(transcript, n, w, level)
    for i, y in enumerate(ys):
        require(gmpy2.powmod(mpz(proof.z[i]), n, n) == y, f"{NAME}.equation_z", f"z_{i}^N != y_{i}")
        rhs = y * w % n if proof.b[i] else y
        if proof.a[i]:
            rhs = n - rhs
        require(gmpy2.powmod(mpz(proof.x[i]), 4, n) == rhs, f"{NAME}.equation_x", f"x_{i}^4 != (-1)^a w^b y_{i}")
