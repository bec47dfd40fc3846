"""Pi-fac: N0 = p q has no small factor (CGGMP21 2021 revision, Fig. 28, "no small factor"): the BitForge fix.

The prover commits to p and q with the VERIFIER's ring-Pedersen parameters (N^, s, t), which it cannot open
twice, and proves in zero knowledge that it knows p, q with N0 = p q and |p|, |q| <= 2^(ell+eps) sqrt(N0); with N0
of the level's size this forces both factors far above 2^ell, so N0 = (small prime) * (rest) is rejected.

  P = s^p t^mu, Q = s^q t^nu, A = s^alpha t^x, B = s^beta t^y, T = Q^alpha t^r, sigma (R = s^N0 t^sigma)
  e <- +-q (curve order) from the transcript
  z1 = alpha + e p, z2 = beta + e q, w1 = x + e mu, w2 = y + e nu, v = r + e (sigma - nu p)
  verifier: s^z1 t^w1 = A P^e, s^z2 t^w2 = B Q^e, Q^z1 t^v = T R^e, and z1, z2 in +-2^(ell+eps) sqrt(N0).

Ranges follow the paper: alpha, beta in +-2^(ell+eps) sqrt(N0); mu, nu in +-2^ell N^; sigma in +-2^ell N0 N^;
r in +-2^(ell+eps) N0 N^; x, y in +-2^(ell+eps) N^. The verifier also bounds sigma, w1, w2, v by the largest
values an honest prover can produce (not in the paper; it never rejects an honest proof and caps the size of
every exponent before any exponentiation).
"""

from __future__ import annotations

from dataclasses import dataclass

import gmpy2
from gmpy2 import mpz

from ..paillier import PaillierSecretKey
from ..params import SecurityLevel
from ..ring_pedersen import RingPedersenParams, RingPedersenSecret
from ..secp256k1 import Q as CURVE_Q
from ..transcript import Transcript
from .common import require, require_abs_at_most, require_int, require_unit, sample_signed

NAME = "pi_fac"


@dataclass(frozen=True)
class Proof:
    cap_p: int  # P = s^p t^mu mod N^
    cap_q: int  # Q = s^q t^nu mod N^
    cap_a: int  # A = s^alpha t^x mod N^
    cap_b: int  # B = s^beta t^y mod N^
    cap_t: int  # T = Q^alpha t^r mod N^
    sigma: int
    z1: int
    z2: int
    w1: int
    w2: int
    v: int


@dataclass(frozen=True)
class _Bounds:
    """The +- bounds of the proof for one (N0, N^, level); one place so prover and verifier agree."""

    alpha: mpz  # 2^(ell+eps) sqrt(N0): alpha, beta, and the z1, z2 range check
    mu: mpz  # 2^ell N^
    sigma: mpz  # 2^ell N0 N^
    r: mpz  # 2^(ell+eps) N0 N^
    x: mpz  # 2^(ell+eps) N^
    w: mpz  # largest honest |w1|, |w2|: x + q mu
    v: mpz  # largest honest |v|: r + q (sigma + mu N0), as p < N0

    @classmethod
    def of(cls, n0: mpz, n_hat: mpz, level: SecurityLevel) -> "_Bounds":
        two_l = mpz(1) << level.ell
        two_le = mpz(1) << (level.ell + level.eps)
        mu = two_l * n_hat
        sigma = two_l * n0 * n_hat
        r = two_le * n0 * n_hat
        x = two_le * n_hat
        return cls(
            alpha=two_le * gmpy2.isqrt(n0),
            mu=mu,
            sigma=sigma,
            r=r,
            x=x,
            w=x + CURVE_Q * mu,
            v=r + CURVE_Q * (sigma + mu * n0),
        )


def _challenge(
    transcript: Transcript, rp: RingPedersenParams, n0: mpz, cmt: tuple[int, int, int, int, int, int],
    level: SecurityLevel,
) -> int:
    t = transcript.fork()
    t.append_bytes("proof", NAME.encode())
    t.append_int("ell", level.ell)
    t.append_int("eps", level.eps)
    t.append_int("N0", n0)
    t.append_int("N^", rp.n)
    t.append_int("s", rp.s)
    t.append_int("t", rp.t)
    t.append_ints("P,Q,A,B,T,sigma", cmt)
    return t.challenge_signed_q("e")


def prove(
    transcript: Transcript, *, sk: PaillierSecretKey, verifier_rp: RingPedersenParams, level: SecurityLevel
) -> Proof:
    """Proof that sk.public.n has no small factor, made against the verifier's ring-Pedersen parameters.

    Only `sk.p`, `sk.q` and `sk.public.n` are read, and not validated: an unbalanced key gives a proof that the
    verifier rejects (that is what the BitForge test feeds it).
    """
    rp = verifier_rp.params  # the prover does not know the factors of N^: no CRT, cached fixed-base tables
    n_hat = mpz(rp.n)
    p, q, n0 = mpz(sk.p), mpz(sk.q), mpz(sk.public.n)
    bd = _Bounds.of(n0, n_hat, level)

    alpha, beta = sample_signed(bd.alpha), sample_signed(bd.alpha)
    mu, nu = sample_signed(bd.mu), sample_signed(bd.mu)
    sigma = sample_signed(bd.sigma)
    r = sample_signed(bd.r)
    x, y = sample_signed(bd.x), sample_signed(bd.x)

    cap_p = rp.fast_commit(p, mu)
    cap_q = rp.fast_commit(q, nu)
    cap_a = rp.fast_commit(alpha, x)
    cap_b = rp.fast_commit(beta, y)
    cap_t = rp.pow(cap_q, alpha) * rp.fast_commit(0, r) % n_hat
    cmt = (cap_p, cap_q, cap_a, cap_b, cap_t, sigma)
    e = mpz(_challenge(transcript, rp, n0, cmt, level))

    return Proof(
        cap_p=int(cap_p),
        cap_q=int(cap_q),
        cap_a=int(cap_a),
        cap_b=int(cap_b),
        cap_t=int(cap_t),
        sigma=int(sigma),
        z1=int(alpha + e * p),
        z2=int(beta + e * q),
        w1=int(x + e * mu),
        w2=int(y + e * nu),
        v=int(r + e * (sigma - nu * p)),
    )


def verify(
    transcript: Transcript,
    proof: Proof,
    *,
    n0: int,
    verifier_rp: RingPedersenParams | RingPedersenSecret,
    level: SecurityLevel,
) -> None:
    """Raise ProofError("pi_fac.<check>") unless `proof` shows that `n0` has no small factor.

    `verifier_rp` is the verifier's own parameters; given the `RingPedersenSecret`, the exponentiations mod N^
    use CRT (`fast_commit`, `pow`).
    """
    rp = verifier_rp.params
    n_hat = mpz(rp.n)
    require(isinstance(proof, Proof), f"{NAME}.type_proof", "not a pi_fac proof")
    require_int(n0, f"{NAME}.type_n0")
    n0 = mpz(n0)
    # the paper asks N0 > 2^(4 ell); the level's modulus size is the stronger demand in practice
    min_bits = max(level.modulus_bits, 4 * level.ell + 1)
    require(n0 > 0 and n0.bit_length() >= min_bits, f"{NAME}.short_n0", f"below {min_bits} bits")

    for name in ("p", "q", "a", "b", "t"):
        require_unit(getattr(proof, "cap_" + name), n_hat, f"{NAME}.unit_{name}")
    bd = _Bounds.of(n0, n_hat, level)
    require_abs_at_most(proof.sigma, bd.sigma, f"{NAME}.range_sigma")
    require_abs_at_most(proof.z1, bd.alpha, f"{NAME}.range_z1")
    require_abs_at_most(proof.z2, bd.alpha, f"{NAME}.range_z2")
    require_abs_at_most(proof.w1, bd.w, f"{NAME}.range_w1")
    require_abs_at_most(proof.w2, bd.w, f"{NAME}.range_w2")
    require_abs_at_most(proof.v, bd.v, f"{NAME}.range_v")

    cap_p, cap_q, cap_a, cap_b, cap_t = (
        mpz(c) for c in (proof.cap_p, proof.cap_q, proof.cap_a, proof.cap_b, proof.cap_t)
    )
    sigma, z1, z2, w1, w2, v = (mpz(c) for c in (proof.sigma, proof.z1, proof.z2, proof.w1, proof.w2, proof.v))
    e = mpz(_challenge(transcript, rp, n0, (cap_p, cap_q, cap_a, cap_b, cap_t, sigma), level))

    commit, power = verifier_rp.fast_commit, verifier_rp.pow
    require(commit(z1, w1) == cap_a * power(cap_p, e) % n_hat, f"{NAME}.equation_p", "s^z1 t^w1 != A P^e")
    require(commit(z2, w2) == cap_b * power(cap_q, e) % n_hat, f"{NAME}.equation_q", "s^z2 t^w2 != B Q^e")
    # Q^z1 t^v = T R^e with R = s^N0 t^sigma, rearranged as Q^z1 t^(v - e sigma) = T s^(e N0): one fewer power
    lhs = power(cap_q, z1) * commit(0, v - e * sigma) % n_hat
    require(lhs == cap_t * commit(e * n0, 0) % n_hat, f"{NAME}.equation_t", "Q^z1 t^v != T R^e")
