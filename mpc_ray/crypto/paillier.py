"""Paillier encryption over gmpy2 with g = 1 + N.

The secret key uses CRT (mod p^2 and q^2) for decryption and for encryption under the own key, about 4x cheaper
than working mod N^2. Plaintexts are signed: decryption returns the representative in (-N/2, N/2].

Both key classes offer the same arithmetic (`one_plus_n_pow`, `r_pow_n`, `powmod_n`, `powmod_n2`): the public key
computes plainly, the secret key by CRT. Code that may or may not own a key takes the one `split_key` hands it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NoReturn, Union

import gmpy2
from gmpy2 import mpz

from ..errors import InvalidInput
from .fixed_base import FixedBase
from .primes import refuse_test_prime


def sample_unit(n: int) -> mpz:
    """Uniform element of Z*_n."""
    n = mpz(n)
    while True:
        r = mpz(secrets.randbelow(int(n)))
        if r > 0 and gmpy2.gcd(r, n) == 1:
            return r


def is_unit(x: int, n: int) -> bool:
    x, n = mpz(x), mpz(n)
    return bool(0 < x < n and gmpy2.gcd(x, n) == 1)  # bool(): gmpy2 has no types, mypy sees Any


def crt_powmod(base: mpz, exp: int, p: mpz, q: mpz, pinv_q: mpz, exp_q: int | None = None) -> mpz:
    """base^exp mod pq from the two halves; `pinv_q` is p^-1 mod q. `p` and `q` may be prime powers.

    `exp_q`, when given, is the exponent for the q half (each half may take its own reduced exponent)."""
    xp = gmpy2.powmod(base, exp, p)
    xq = gmpy2.powmod(base, exp if exp_q is None else exp_q, q)
    return xp + p * ((xq - xp) * pinv_q % q)


@dataclass(frozen=True)
class PaillierPublicKey:
    n: mpz
    n2: mpz

    @classmethod
    def from_n(cls, n: int) -> "PaillierPublicKey":
        n = mpz(n)
        return cls(n, n * n)

    @property
    def public(self) -> "PaillierPublicKey":
        """Self, so that code takes a public or a secret key alike (`key.public.n`)."""
        return self

    def one_plus_n_pow(self, m: int) -> mpz:
        """(1 + N)^m mod N^2 = 1 + mN mod N^2 (binomial theorem: no exponentiation); m may be negative."""
        return (1 + (mpz(m) % self.n) * self.n) % self.n2

    def r_pow_n(self, r: mpz) -> mpz:
        """r^N mod N^2 (the randomness part of a ciphertext)."""
        return gmpy2.powmod(r, self.n, self.n2)

    def powmod_n(self, base: mpz, exp: int) -> mpz:
        """base^exp mod N (exp may be negative, base must be a unit)."""
        return gmpy2.powmod(base, mpz(exp), self.n)

    def powmod_n2(self, base: mpz, exp: int) -> mpz:
        """base^exp mod N^2 (exp may be negative, base must be a unit)."""
        return gmpy2.powmod(base, mpz(exp), self.n2)

    def encrypt_with(self, m: int, r: mpz) -> mpz:
        """(1 + N)^m r^N mod N^2; m may be negative."""
        return self.one_plus_n_pow(m) * self.r_pow_n(r) % self.n2

    def encrypt(self, m: int) -> tuple[mpz, mpz]:
        r = sample_unit(self.n)
        return self.encrypt_with(m, r), r

    def add(self, c1: mpz, c2: mpz) -> mpz:
        return c1 * c2 % self.n2

    def mul(self, c: mpz, k: int) -> mpz:
        """Enc(k * m) from Enc(m); negative k uses the inverse of c."""
        return gmpy2.powmod(c, mpz(k), self.n2)

    def is_valid_ciphertext(self, c: object) -> bool:
        """c in Z*_{N^2}."""
        return is_unit(c, self.n2) if isinstance(c, (int, type(mpz(0)))) else False

    def bits(self) -> int:
        return int(self.n.bit_length())


class PaillierSecretKey:
    """Paillier-Blum secret key. Holds the primes; `repr` is redacted."""

    __slots__ = (
        "p", "q", "public", "_p2", "_q2", "_p2inv_q2", "_pinv_q", "_hp", "_hq", "_phi", "_rn_exp", "test_only"
    )

    def __init__(self, p: int, q: int, *, test_only: bool = False) -> None:
        p, q = mpz(p), mpz(q)
        if p == q:
            raise ValueError("p and q must differ")
        if not test_only:
            refuse_test_prime(int(p))
            refuse_test_prime(int(q))
        self.p, self.q = p, q
        self.test_only = test_only
        self.public = PaillierPublicKey.from_n(p * q)
        self._p2, self._q2 = p * p, q * q
        self._p2inv_q2 = gmpy2.invert(self._p2, self._q2)
        self._pinv_q = gmpy2.invert(p, q)
        n = self.public.n
        # h_p = L_p((1+N)^(p-1) mod p^2)^-1 mod p, same for q
        self._hp = gmpy2.invert((gmpy2.powmod(1 + n, p - 1, self._p2) - 1) // p, p)
        self._hq = gmpy2.invert((gmpy2.powmod(1 + n, q - 1, self._q2) - 1) // q, q)
        self._phi = (p - 1) * (q - 1)
        # r^N mod p^2 = (r^(q mod p-1) mod p)^p mod p^2, and the same for q (see r_pow_n)
        self._rn_exp = (q % (p - 1), p % (q - 1))

    @property
    def phi(self) -> mpz:
        return self._phi

    def __repr__(self) -> str:
        return f"PaillierSecretKey(N={int(self.public.n).bit_length()} bits, <redacted>)"

    def decrypt(self, c: mpz) -> int:
        """Signed plaintext in (-N/2, N/2]."""
        p, q, n = self.p, self.q, self.public.n
        mp = (gmpy2.powmod(c, p - 1, self._p2) - 1) // p * self._hp % p
        mq = (gmpy2.powmod(c, q - 1, self._q2) - 1) // q * self._hq % q
        m = mp + p * ((mq - mp) * self._pinv_q % q)
        return int(m - n) if m > n // 2 else int(m)

    def decrypt_unsigned(self, c: mpz) -> int:
        m = self.decrypt(c)
        return m % int(self.public.n)

    def one_plus_n_pow(self, m: int) -> mpz:
        """(1 + N)^m mod N^2 = 1 + mN mod N^2 (no exponentiation)."""
        return self.public.one_plus_n_pow(m)

    def r_pow_n(self, r: mpz) -> mpz:
        """r^N mod N^2 by CRT.

        If r^q = a + kp then (a + kp)^p = a^p mod p^2, so r^N mod p^2 is one exponentiation mod p (exponent
        q mod p-1) and one mod p^2 (exponent p): about 1.5x faster than r^(N mod p(p-1)) mod p^2.
        """
        p, q, p2, q2 = self.p, self.q, self._p2, self._q2
        eq_p, ep_q = self._rn_exp
        xp = gmpy2.powmod(gmpy2.powmod(r % p, eq_p, p), p, p2)
        xq = gmpy2.powmod(gmpy2.powmod(r % q, ep_q, q), q, q2)
        return xp + p2 * ((xq - xp) * self._p2inv_q2 % q2)

    def encrypt_with(self, m: int, r: mpz) -> mpz:
        return self.one_plus_n_pow(m) * self.r_pow_n(r) % self.public.n2

    def encrypt(self, m: int) -> tuple[mpz, mpz]:
        r = sample_unit(self.public.n)
        return self.encrypt_with(m, r), r

    def powmod_n(self, base: mpz, exp: int) -> mpz:
        """base^exp mod N by CRT, a long exponent reduced mod p-1 and q-1 (Fermat), so a huge exponent costs no more
        than a small one. The base must be a unit."""
        p, q, exp = self.p, self.q, mpz(exp)
        # reduce only a long exponent: a short negative one (a challenge e) stays short, gmpy2 inverts the base
        ep = exp if -(p - 1) < exp < p - 1 else exp % (p - 1)
        eq = exp if -(q - 1) < exp < q - 1 else exp % (q - 1)
        return crt_powmod(base, ep, p, q, self._pinv_q, eq)

    def powmod_n_many(self, base: mpz, exps: Iterable[int]) -> list[mpz]:
        """base^e mod N for every e of `exps` by CRT, exponents reduced mod p-1 and q-1, with a fixed-base table per
        prime built for this call (one base, many exponents: about 3x faster than `powmod_n` each). Unit base."""
        p, q, pm1, qm1 = self.p, self.q, self.p - 1, self.q - 1
        t_p, t_q = FixedBase(mpz(base) % p, p, p.bit_length()), FixedBase(mpz(base) % q, q, q.bit_length())
        out: list[mpz] = []
        for e in exps:
            xp, xq = t_p.pow(mpz(e) % pm1), t_q.pow(mpz(e) % qm1)
            out.append(xp + p * ((xq - xp) * self._pinv_q % q))
        return out

    def powmod_n2(self, base: mpz, exp: int) -> mpz:
        """base^exp mod N^2 by CRT (exp may be negative, base must be a unit)."""
        if exp < 0:
            base, exp = gmpy2.invert(base, self.public.n2), -exp
        return crt_powmod(base, exp, self._p2, self._q2, self._p2inv_q2)

    def recover_randomness(self, c: mpz, m: int) -> mpz:
        """The r with c = Enc(m; r): needed by pi_dec / identification proofs."""
        n = self.public.n
        c0 = c * gmpy2.invert(1 + (mpz(m) % n) * n, self.public.n2) % self.public.n2
        # c0 = r^N mod N^2, so r = c0^(N^-1 mod phi) mod N
        return gmpy2.powmod(c0 % n, gmpy2.invert(n, self._phi), n)


PaillierKey = Union[PaillierPublicKey, PaillierSecretKey]


def affine(key: PaillierKey, c: mpz | None, x: int, y: int, r: mpz, *, rn: mpz | None = None) -> mpz:
    """c^x (1 + N)^y r^N mod N^2, the affine operation on ciphertexts: Enc(x m + y) for c = Enc(m). With c None it
    is the encryption (1 + N)^y r^N. `key` computes: by CRT when it is the secret key. Bases must be units.
    `rn`, when given, is r^N mod N^2 already computed (a `PaillierNonce`'s): then no r^N is computed here."""
    n2 = key.public.n2
    enc = key.encrypt_with(y, r) if rn is None else key.one_plus_n_pow(y) * rn % n2
    return enc if c is None else key.powmod_n2(c, x) * enc % n2


class PaillierNonce:
    """Encryption randomness made ahead of use: r <- Z*_N and r^N mod N^2, for one modulus N.

    r^N is the expensive half of an encryption (1 + N)^m r^N and of a proof's commitment (1 + N)^alpha r^N, and it
    depends on nothing but r and N, so it can be computed while the node is idle (protocols/ecdsa/precompute.py,
    which states why this keeps the protocol's security). The constructor samples r itself and computes r^N, so
    the pair is right by construction; `take` hands it out once, and only for the modulus it was made for.
    Secret (r opens the ciphertext it randomises): `repr` is redacted and pickling is refused."""

    __slots__ = ("n", "_r", "_rn")

    def __init__(self, key: PaillierKey) -> None:
        pub, computer = split_key(key)
        r = sample_unit(pub.n)
        self.n: mpz = pub.n
        self._r: mpz | None = r
        self._rn: mpz | None = computer.r_pow_n(r)  # by CRT when the key is a secret key

    @property
    def used(self) -> bool:
        return self._r is None

    def take(self, key: PaillierKey) -> tuple[mpz, mpz]:
        """(r, r^N mod N^2), once. InvalidInput when `key` has another modulus or the nonce was taken before."""
        if key.public.n != self.n:
            raise InvalidInput("Paillier nonce made for another modulus")
        r, rn = self._r, self._rn
        if r is None or rn is None:
            raise InvalidInput("Paillier nonce already used")
        self._r = self._rn = None
        return r, rn

    def __repr__(self) -> str:
        state = "used" if self._r is None else "unused"
        return f"PaillierNonce(N={int(self.n).bit_length()} bits, {state}, <redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("PaillierNonce holds secret encryption randomness and cannot be pickled")


def nonce_pair(key: PaillierKey, nonce: PaillierNonce | None) -> tuple[mpz, mpz]:
    """(r, r^N mod N^2) under `key`: the nonce's when given (bound to the key's modulus, single use), else fresh
    ones (r^N by CRT when `key` is a secret key)."""
    if nonce is not None:
        return nonce.take(key)
    r = sample_unit(key.public.n)
    return r, key.r_pow_n(r)


def encrypt_nonce(key: PaillierKey, m: int, nonce: PaillierNonce | None) -> tuple[mpz, mpz]:
    """(Enc(m; r), r), with r from `nonce` when given (`nonce_pair`). Without a nonce it is `key.encrypt(m)`."""
    if nonce is None:
        return key.encrypt(m)
    r, rn = nonce.take(key)
    return key.one_plus_n_pow(m) * rn % key.public.n2, r


def split_key(key: PaillierKey) -> tuple[PaillierPublicKey, PaillierKey]:
    """(public key, key to compute with): a caller that owns the key passes the secret key and gets CRT speed from
    the same methods (`r_pow_n`, `powmod_n`, `powmod_n2`, `one_plus_n_pow`) the public key computes plainly."""
    if isinstance(key, PaillierSecretKey):
        return key.public, key
    return key, key


def generate_keypair(
    prime_bits: int, *, primes: tuple[int, int] | None = None, test_only: bool = False
) -> tuple[PaillierSecretKey, PaillierPublicKey]:
    """A fresh Paillier-Blum key from two new safe primes (or the given ones)."""
    from .primes import generate_safe_prime

    if primes is None:
        p = generate_safe_prime(prime_bits)
        q = generate_safe_prime(prime_bits)
        while q == p:
            q = generate_safe_prime(prime_bits)
    else:
        p, q = primes
    sk = PaillierSecretKey(p, q, test_only=test_only)
    return sk, sk.public
