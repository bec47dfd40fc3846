"""Pi-aff-g: Paillier affine operation with group commitment in range (CGGMP21, Section 6.2, Fig. 15).

Statement, under the verifier-side key N0 (the verifier owns N0 and the ring-Pedersen parameters (N^, s, t)) and
the prover's key N1:

    D = C^x (1+N0)^y rho^N0 mod N0^2,    Y = (1+N1)^y rho_y^N1 mod N1^2,    X = x G,
    x in +-2^ell,  y in +-2^ell'.

The proof guarantees x in +-2^(ell+eps) and y in +-2^(ell'+eps) (the range checks on z1 and z2 are what stop the
Alpha-Rays style attacks, so they are never skipped). The protocol calls it with y = -beta, hence negative y.

    Prover: alpha <- +-2^(ell+eps), beta <- +-2^(ell'+eps), r <- Z*_N0, r_y <- Z*_N1,
            gamma, delta <- +-2^(ell+eps) N^, m, mu <- +-2^ell N^
            A = C^alpha (1+N0)^beta r^N0, B_x = alpha G, B_y = (1+N1)^beta r_y^N1,
            E = s^alpha t^gamma, S = s^x t^m, F = s^beta t^delta, T = s^y t^mu (mod N^)
            z1 = alpha + e x, z2 = beta + e y, z3 = gamma + e m, z4 = delta + e mu, w = r rho^e, w_y = r_y rho_y^e
    Verifier: z1 in +-2^(ell+eps), z2 in +-2^(ell'+eps); C^z1 (1+N0)^z2 w^N0 = A D^e mod N0^2; z1 G = B_x + e X;
              (1+N1)^z2 w_y^N1 = B_y Y^e mod N1^2; s^z1 t^z3 = E S^e, s^z2 t^z4 = F T^e mod N^

Cost. (1+N)^m mod N^2 is 1 + mN, never a powmod. Prover (passing its own `PaillierSecretKey` as `pk1`): two full
exponentiations mod N0^2 (C^alpha, r^N0), r_y^N1 by CRT, the four ring-Pedersen commitments from cached fixed-base
tables of the verifier's s, t (no powmod at all), and two 256-bit ones for w, w_y. Verifier (passing its own
`RingPedersenSecret`, which sits on N0 in CGGMP21): the N0^2 equation by CRT, the N1^2 one with two full
exponentiations (w_y^N1, Y^e: it does not know N1), the ring-Pedersen equations through `RingPedersenSecret.commit`.

This module also holds the small helpers that pi_mul and pi_mul_star share (sampling, CRT-or-plain arithmetic).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any, Callable

import gmpy2
from gmpy2 import mpz

from ...errors import InvalidInput, ProofError
from ..paillier import PaillierPublicKey, PaillierSecretKey, sample_unit
from ..params import SecurityLevel
from ..ring_pedersen import RingPedersenParams, RingPedersenSecret
from ..secp256k1 import Q, Point
from ..transcript import Transcript
from .common import require, require_int, require_point, require_range, require_unit

NAME = "pi_aff_g"

_MPZ = type(mpz(0))


# --------------------------------------------------------------------------------------------------------------
# shared helpers (also used by pi_mul and pi_mul_star)
# --------------------------------------------------------------------------------------------------------------


def sample_pm(bits: int) -> mpz:
    """Uniform integer in [-2^bits, 2^bits] (the paper's +-2^bits)."""
    bound = 1 << bits
    return mpz(secrets.randbelow(2 * bound + 1) - bound)


def sample_pm_scaled(bits: int, n: int) -> mpz:
    """Uniform integer in [-2^bits * n, 2^bits * n] (the paper's +-2^bits * N^)."""
    bound = int(n) << bits
    return mpz(secrets.randbelow(2 * bound + 1) - bound)


def split_key(key: PaillierPublicKey | PaillierSecretKey) -> tuple[PaillierPublicKey, PaillierSecretKey | None]:
    """(public key, secret key or None): a caller that owns the key passes the secret key to get CRT speed."""
    if isinstance(key, PaillierSecretKey):
        return key.public, key
    return key, None


def is_int(value: Any) -> bool:
    return isinstance(value, (int, _MPZ)) and not isinstance(value, bool)


class ModN2:
    """Exponentiation mod N^2 for one Paillier key, through CRT (mod p^2, q^2) when the factorisation is known.

    Bases must be units (the verifiers check that first); exponents may be negative.
    """

    __slots__ = ("n", "n2", "_sk", "_crt")

    def __init__(self, pk: PaillierPublicKey, sk: PaillierSecretKey | None = None) -> None:
        self.n, self.n2 = mpz(pk.n), mpz(pk.n2)
        self._sk = sk
        self._crt: tuple[mpz, mpz, mpz, mpz, mpz, mpz, mpz] | None = None
        if sk is not None:
            p, q = mpz(sk.p), mpz(sk.q)
            p2, q2 = p * p, q * q
            # exponents for w^N: N = pq, so w^N mod p^2 = (w^(q mod p-1) mod p)^p mod p^2 (see pow_n)
            self._crt = (p, q, p2, q2, gmpy2.invert(p2, q2), q % (p - 1), p % (q - 1))

    def pow(self, base: mpz, exp: int) -> mpz:
        if self._sk is not None:
            return self._sk.powmod_n2(base, mpz(exp))
        return gmpy2.powmod(base, mpz(exp), self.n2)

    def pow_n(self, base: mpz) -> mpz:
        """base^N mod N^2 (the randomness part of a ciphertext).

        With the factorisation: if w^q = a + kp then (a + kp)^p = a^p mod p^2, so w^N mod p^2 is one exponentiation
        mod p (exponent q mod p-1) and one mod p^2 (exponent p): about 1.5x faster than w^(N mod p(p-1)) mod p^2.
        """
        if self._crt is None:
            return gmpy2.powmod(base, self.n, self.n2)
        p, q, p2, q2, p2inv_q2, eq_p, ep_q = self._crt
        xp = gmpy2.powmod(gmpy2.powmod(base % p, eq_p, p), p, p2)
        xq = gmpy2.powmod(gmpy2.powmod(base % q, ep_q, q), q, q2)
        return xp + p2 * ((xq - xp) * p2inv_q2 % q2)

    def one_plus_n_pow(self, m: int) -> mpz:
        """(1+N)^m mod N^2 = 1 + mN mod N^2: no exponentiation (binomial theorem)."""
        return (1 + (mpz(m) % self.n) * self.n) % self.n2


def mod_n_pow(sk: PaillierSecretKey | None, n: mpz) -> Callable[[mpz, int], mpz]:
    """base^exp mod n, by CRT when the factorisation of n is known (small exponents: w = r rho^e)."""
    if sk is not None:
        return lambda base, exp: sk.powmod_n(base, mpz(exp))
    return lambda base, exp: gmpy2.powmod(base, mpz(exp), n)


def owned_key(
    verifier_rp: RingPedersenParams | RingPedersenSecret, pk: PaillierPublicKey
) -> PaillierSecretKey | None:
    """The verifier's Paillier secret key when its ring-Pedersen secret sits on the same modulus as `pk`.

    In CGGMP21 a party's ring-Pedersen parameters share its Paillier modulus, so the verifier of pi_aff_g and
    pi_mul_star can check the N0^2 equation by CRT as well.
    """
    if isinstance(verifier_rp, RingPedersenSecret) and mpz(verifier_rp.paillier.public.n) == mpz(pk.n):
        return verifier_rp.paillier
    return None


# Fixed-base tables for ring-Pedersen commitments (spec: "pregenerated table for fixed-base multiexp").
# s and t of a peer stay the same for the life of a committee while every pi_enc / pi_aff_g / pi_mul_star / pi_log*
# against that peer commits with them, so a table of g^(2^(w i)) turns each s^a t^b into about
# (|a| + |b|) / w multiplications plus one bucket pass, instead of |a| + |b| squarings: ~3.5x faster in Python.
_FB_WINDOW = 5
_FB_EXTRA_BITS = 1024  # tables cover exponents up to |N^| + 1024 bits (>= 2^(ell+eps) N^); larger ones fall back


class _FixedBase:
    __slots__ = ("powers", "max_bits")

    def __init__(self, g: mpz, n: mpz, max_bits: int) -> None:
        count = -(-max_bits // _FB_WINDOW)
        powers = [g % n]
        cur = powers[0]
        for _ in range(count - 1):
            cur = gmpy2.powmod(cur, 1 << _FB_WINDOW, n)
            powers.append(cur)
        self.powers = powers
        self.max_bits = count * _FB_WINDOW


@lru_cache(maxsize=16)
def _rp_tables(n: mpz, s: mpz, t: mpz) -> tuple[_FixedBase, _FixedBase]:
    bits = int(n).bit_length() + _FB_EXTRA_BITS
    return _FixedBase(s, n, bits), _FixedBase(t, n, bits)


def _bucket_product(terms: list[tuple[_FixedBase, mpz]], n: mpz) -> mpz:
    """prod g_j^(e_j) for e_j >= 0 (Yao / BGMW bucket method over base-2^w digits)."""
    mask = (1 << _FB_WINDOW) - 1
    buckets: list[mpz | None] = [None] * (mask + 1)
    for table, e in terms:
        powers = table.powers
        i = 0
        while e:
            d = int(e & mask)
            if d:
                b = buckets[d]
                buckets[d] = powers[i] if b is None else b * powers[i] % n
            e >>= _FB_WINDOW
            i += 1
    acc: mpz | None = None
    res: mpz | None = None
    for d in range(mask, 0, -1):  # res = prod_d buckets[d]^d by running products
        b = buckets[d]
        if b is not None:
            acc = b if acc is None else acc * b % n
        if acc is not None:
            res = acc if res is None else res * acc % n
    return mpz(1) if res is None else res


def rp_commit(params: RingPedersenParams, a: int, b: int) -> mpz:
    """s^a t^b mod N^ with cached fixed-base tables (a, b may be negative). Same value as `params.commit`."""
    n = mpz(params.n)
    ts, tt = _rp_tables(n, mpz(params.s), mpz(params.t))
    a, b = mpz(a), mpz(b)
    if max(abs(a).bit_length(), abs(b).bit_length()) > ts.max_bits:
        return params.commit(a, b)
    pos = [(tab, e) for tab, e in ((ts, a), (tt, b)) if e > 0]
    neg = [(tab, -e) for tab, e in ((ts, a), (tt, b)) if e < 0]
    res = _bucket_product(pos, n) if pos else mpz(1)
    if neg:  # one inversion for both negative exponents
        res = res * gmpy2.invert(_bucket_product(neg, n), n) % n
    return res


def rp_arith(
    verifier_rp: RingPedersenParams | RingPedersenSecret,
) -> tuple[RingPedersenParams, Callable[[int, int], mpz], Callable[[mpz, int], mpz]]:
    """(params, commit(a, b) = s^a t^b mod N^, pow(base, exp) mod N^), by CRT when the verifier owns them."""
    if isinstance(verifier_rp, RingPedersenSecret):
        sk = verifier_rp.paillier
        return verifier_rp.params, verifier_rp.commit, lambda base, exp: sk.powmod_n(base, mpz(exp))
    params = verifier_rp.params
    n = mpz(params.n)
    return params, lambda a, b: rp_commit(params, a, b), lambda base, exp: gmpy2.powmod(base, mpz(exp), n)


def require_fields(proof: Any, cls: type, name: str) -> None:
    """Type checks before anything else: a str/None/bytes/bool field is a named failure, never a TypeError."""
    require(isinstance(proof, cls), f"{name}.type_proof", f"not a {name} proof")
    for f in fields(cls):
        value = getattr(proof, f.name)
        tp = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        if tp == "Point":
            require(isinstance(value, Point), f"{name}.type_{f.name}", "not a point")
        else:
            require(is_int(value), f"{name}.type_{f.name}", "not an integer")


def require_modulus(n: int, level: SecurityLevel, check: str) -> None:
    """A modulus as long as the level demands, so that +-2^(ell'+eps) cannot wrap around N/2."""
    require_int(n, check)
    require(n > 0 and n % 2 == 1 and int(n).bit_length() >= level.modulus_bits, check, "modulus too short")


def require_ciphertext(value: Any, pk: PaillierPublicKey, check: str) -> None:
    """value in Z*_{N^2}."""
    require_unit(value, pk.n2, check)


def z_bound(n_hat: int, level: SecurityLevel) -> mpz:
    """Largest |gamma + e m| an honest prover sends: 2^(ell+eps) N^ + q 2^ell N^ (gamma, delta <- +-2^(ell+eps) N^,
    m, mu <- +-2^ell N^, |e| <= q). Not a check of the paper: a size guard so that a peer cannot make the verifier
    exponentiate by a huge z3/z4; honest proofs always meet it."""
    n_hat = mpz(n_hat)
    return (n_hat << (level.ell + level.eps)) + Q * (n_hat << level.ell)


def require_witness_unit(value: Any, n: int, name: str, what: str) -> mpz:
    """Prover side: a randomiser must be a unit (rho^e with e < 0 needs its inverse). A local mistake: InvalidInput."""
    if not is_int(value) or not (0 < value < n and gmpy2.gcd(mpz(value), mpz(n)) == 1):
        raise InvalidInput(f"{name}: {what} must be a unit mod N")
    return mpz(value)


def require_input_ciphertext(value: Any, pk: PaillierPublicKey, name: str, what: str) -> mpz:
    """Prover side: a base ciphertext must be in Z*_{N^2} (C^alpha with alpha < 0 needs its inverse)."""
    if not is_int(value) or not pk.is_valid_ciphertext(mpz(value)):
        raise InvalidInput(f"{name}: {what} must be a ciphertext in Z*_(N^2)")
    return mpz(value)


def require_witness_int(value: Any, name: str, what: str) -> mpz:
    if not is_int(value):
        raise InvalidInput(f"{name}: {what} must be an integer")
    return mpz(value)


def guarded(name: str, fn: Callable[[], None]) -> None:
    """Run a verifier body; any stray exception becomes a named ProofError (never crash on peer data)."""
    try:
        fn()
    except ProofError:
        raise
    except Exception as exc:  # noqa: BLE001 - malformed peer input must surface as a named failure
        raise ProofError(f"{name}.malformed", type(exc).__name__) from None


# --------------------------------------------------------------------------------------------------------------
# pi_aff_g
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proof:
    """Commitments (A, B_x, B_y, E, S, F, T) and responses (z1..z4, w, w_y), named as in the paper."""

    A: int  # C^alpha (1+N0)^beta r^N0 mod N0^2
    B_x: Point  # alpha G
    B_y: int  # (1+N1)^beta r_y^N1 mod N1^2
    E: int  # s^alpha t^gamma mod N^
    S: int  # s^x t^m mod N^
    F: int  # s^beta t^delta mod N^
    T: int  # s^y t^mu mod N^
    z1: int
    z2: int
    z3: int
    z4: int
    w: int
    w_y: int


def _challenge(
    transcript: Transcript,
    pk0: PaillierPublicKey,
    pk1: PaillierPublicKey,
    rp: RingPedersenParams,
    C: int,
    D: int,
    Y: int,
    X: Point,
    proof_commitments: tuple[int, Point, int, int, int, int, int],
    level: SecurityLevel,
) -> int:
    A, B_x, B_y, E, S, F, T = proof_commitments
    t = transcript.fork()
    t.append_bytes("proof", NAME.encode())
    t.append_bytes("level", level.name.encode())
    t.append_ints("bounds", [level.ell, level.ell_prime, level.eps])
    t.append_int("N0", pk0.n)
    t.append_int("N1", pk1.n)
    t.append_ints("rp", [rp.n, rp.s, rp.t])
    t.append_int("C", C)
    t.append_int("D", D)
    t.append_int("Y", Y)
    t.append_point("X", X)
    t.append_int("A", A)
    t.append_point("B_x", B_x)
    t.append_int("B_y", B_y)
    t.append_ints("ESFT", [E, S, F, T])
    return t.challenge_signed_q("e")


def prove(
    transcript: Transcript,
    *,
    pk0: PaillierPublicKey,
    pk1: PaillierPublicKey | PaillierSecretKey,
    verifier_rp: RingPedersenParams | RingPedersenSecret,
    C: int,
    D: int,
    Y: int,
    X: Point,
    x: int,
    y: int,
    rho: int,
    rho_y: int,
    level: SecurityLevel,
) -> Proof:
    """Prove the statement above. `pk1` may be the prover's own `PaillierSecretKey` (CRT for B_y and w_y).

    The prover does not check its witness: an out-of-range x or y yields a proof that the verifier rejects.
    """
    pub0, _ = split_key(pk0)
    pub1, sk1 = split_key(pk1)
    rp = verifier_rp.params  # the prover only ever uses the verifier's public parameters
    n_hat = mpz(rp.n)
    ell, ellp, eps = level.ell, level.ell_prime, level.eps
    m0, m1 = ModN2(pub0), ModN2(pub1, sk1)
    C = require_input_ciphertext(C, pub0, NAME, "C")
    x = require_witness_int(x, NAME, "x")
    y = require_witness_int(y, NAME, "y")
    rho = require_witness_unit(rho, m0.n, NAME, "rho")
    rho_y = require_witness_unit(rho_y, m1.n, NAME, "rho_y")

    alpha = sample_pm(ell + eps)
    beta = sample_pm(ellp + eps)
    r = sample_unit(pub0.n)
    r_y = sample_unit(pub1.n)
    gamma = sample_pm_scaled(ell + eps, n_hat)
    m = sample_pm_scaled(ell, n_hat)
    delta = sample_pm_scaled(ell + eps, n_hat)
    mu = sample_pm_scaled(ell, n_hat)

    A = m0.pow(C, alpha) * m0.one_plus_n_pow(beta) % m0.n2 * m0.pow_n(r) % m0.n2
    B_x = Point.base_mul(int(alpha))
    B_y = m1.one_plus_n_pow(beta) * m1.pow_n(r_y) % m1.n2
    E = rp_commit(rp, alpha, gamma)
    S = rp_commit(rp, x, m)
    F = rp_commit(rp, beta, delta)
    T = rp_commit(rp, y, mu)

    e = mpz(_challenge(transcript, pub0, pub1, rp, C, D, Y, X, (A, B_x, B_y, E, S, F, T), level))
    w = r * gmpy2.powmod(rho, e, m0.n) % m0.n
    w_y = r_y * mod_n_pow(sk1, m1.n)(rho_y, e) % m1.n
    return Proof(
        A=int(A),
        B_x=B_x,
        B_y=int(B_y),
        E=int(E),
        S=int(S),
        F=int(F),
        T=int(T),
        z1=int(alpha + e * x),
        z2=int(beta + e * y),
        z3=int(gamma + e * m),
        z4=int(delta + e * mu),
        w=int(w),
        w_y=int(w_y),
    )


def verify(
    transcript: Transcript,
    proof: Proof,
    *,
    pk0: PaillierPublicKey | PaillierSecretKey,
    pk1: PaillierPublicKey,
    verifier_rp: RingPedersenParams | RingPedersenSecret,
    C: int,
    D: int,
    Y: int,
    X: Point,
    level: SecurityLevel,
) -> None:
    """Return None or raise ProofError("pi_aff_g.<check>"). Pass the own `RingPedersenSecret` for CRT speed."""
    guarded(NAME, lambda: _verify(transcript, proof, pk0, pk1, verifier_rp, C, D, Y, X, level))


def _verify(
    transcript: Transcript,
    proof: Proof,
    pk0: PaillierPublicKey | PaillierSecretKey,
    pk1: PaillierPublicKey,
    verifier_rp: RingPedersenParams | RingPedersenSecret,
    C: int,
    D: int,
    Y: int,
    X: Point,
    level: SecurityLevel,
) -> None:
    n = NAME
    # 1. types of every proof field
    require_fields(proof, Proof, n)
    pub0, sk0 = split_key(pk0)
    pub1, _ = split_key(pk1)
    sk0 = sk0 or owned_key(verifier_rp, pub0)
    rp, commit, pow_hat = rp_arith(verifier_rp)
    n_hat = mpz(rp.n)
    ell, ellp, eps = level.ell, level.ell_prime, level.eps

    # 2. moduli long enough for the ranges not to wrap
    require_modulus(pub0.n, level, f"{n}.modulus_N0")
    require_modulus(pub1.n, level, f"{n}.modulus_N1")
    require_modulus(rp.n, level, f"{n}.modulus_rp")

    # 3. statement: ciphertexts in Z*_{N^2}, X not the identity
    require_ciphertext(C, pub0, f"{n}.ciphertext_C")
    require_ciphertext(D, pub0, f"{n}.ciphertext_D")
    require_ciphertext(Y, pub1, f"{n}.ciphertext_Y")
    require_point(X, f"{n}.point_X")

    # 4. commitments: group membership
    require_ciphertext(proof.A, pub0, f"{n}.ciphertext_A")
    require_point(proof.B_x, f"{n}.point_B_x")
    require_ciphertext(proof.B_y, pub1, f"{n}.ciphertext_B_y")
    for label in ("E", "S", "F", "T"):
        require_unit(getattr(proof, label), n_hat, f"{n}.commitment_{label}")

    # 5. ranges (paper: z1, z2) and a size guard on z3, z4 that honest proofs always meet
    require_range(proof.z1, ell + eps, f"{n}.range_z1")
    require_range(proof.z2, ellp + eps, f"{n}.range_z2")
    z34_bound = z_bound(n_hat, level)
    require(abs(proof.z3) <= z34_bound, f"{n}.range_z3", "too large")
    require(abs(proof.z4) <= z34_bound, f"{n}.range_z4", "too large")

    # 6. units
    require_unit(proof.w, pub0.n, f"{n}.unit_w")
    require_unit(proof.w_y, pub1.n, f"{n}.unit_w_y")

    e = mpz(
        _challenge(
            transcript,
            pub0,
            pub1,
            rp,
            C,
            D,
            Y,
            X,
            (proof.A, proof.B_x, proof.B_y, proof.E, proof.S, proof.F, proof.T),
            level,
        )
    )
    z1, z2, z3, z4 = mpz(proof.z1), mpz(proof.z2), mpz(proof.z3), mpz(proof.z4)

    # 7. equations; cheapest first so that a bad proof costs little
    # z1 G = B_x + e X
    require(Point.base_mul(int(z1)) == proof.B_x + X * int(e), f"{n}.equation_X")

    # C^z1 (1+N0)^z2 w^N0 = A D^e mod N0^2
    m0 = ModN2(pub0, sk0)
    lhs = m0.pow(mpz(C), z1) * m0.one_plus_n_pow(z2) % m0.n2 * m0.pow_n(mpz(proof.w)) % m0.n2
    rhs = mpz(proof.A) * m0.pow(mpz(D), e) % m0.n2
    require(lhs == rhs, f"{n}.equation_D")

    # (1+N1)^z2 w_y^N1 = B_y Y^e mod N1^2
    m1 = ModN2(pub1)
    lhs = m1.one_plus_n_pow(z2) * m1.pow_n(mpz(proof.w_y)) % m1.n2
    rhs = mpz(proof.B_y) * m1.pow(mpz(Y), e) % m1.n2
    require(lhs == rhs, f"{n}.equation_Y")

    # s^z1 t^z3 = E S^e,  s^z2 t^z4 = F T^e  mod N^
    require(commit(z1, z3) == mpz(proof.E) * pow_hat(mpz(proof.S), e) % n_hat, f"{n}.equation_rp_E")
    require(commit(z2, z4) == mpz(proof.F) * pow_hat(mpz(proof.T), e) % n_hat, f"{n}.equation_rp_F")
