"""Pi-enc: Paillier encryption in range (CGGMP21, Fig. 14).

Statement: the prover's Paillier key N0 and a ciphertext K = (1 + N0)^k rho^N0 mod N0^2 with k in +-2^ell, proven
against the verifier's ring-Pedersen parameters (N-hat, s, t).

    prover:   alpha <- +-2^(ell+eps), mu <- +-2^ell N-hat, r <- Z*_N0, gamma <- +-2^(ell+eps) N-hat
              S = s^k t^mu, A = (1 + N0)^alpha r^N0, C = s^alpha t^gamma
    challenge e in +-q (Fiat-Shamir over every public input and commitment)
    response: z1 = alpha + e k, z2 = r rho^e mod N0, z3 = gamma + e mu
    verifier: z1 in +-2^(ell+eps); (1 + N0)^z1 z2^N0 = A K^e mod N0^2; s^z1 t^z3 = C S^e mod N-hat

This module also holds the helpers that Pi-log* and Pi-dec share (same setup, same Paillier and ring-Pedersen
equations), so the three proofs check their inputs identically.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Callable, Union

import gmpy2
from gmpy2 import mpz

from ...errors import InvalidInput
from ..paillier import PaillierPublicKey, PaillierSecretKey, sample_unit
from ..params import SecurityLevel, level as as_level
from ..ring_pedersen import RingPedersenParams, RingPedersenSecret
from ..secp256k1 import Q
from ..transcript import Transcript
from .common import require, require_int, require_range, require_unit
# shared helpers that live in pi_aff_g: fixed-base tables for s^a t^b (cached per (N-hat, s, t)) and the faster
# CRT r^N of the prover's own key
from .pi_aff_g import ModN2, rp_commit

NAME = "pi_enc"

RingPedersen = Union[RingPedersenParams, RingPedersenSecret]
_MPZ = type(mpz(0))


@dataclass(frozen=True)
class Proof:
    S: int  # s^k t^mu mod N-hat
    A: int  # (1 + N0)^alpha r^N0 mod N0^2
    C: int  # s^alpha t^gamma mod N-hat
    z1: int
    z2: int
    z3: int


# ---------------------------------------------------------------------------------------------------------------
# helpers shared with pi_log_star and pi_dec
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    """The public parameters both sides use, as mpz, validated once."""

    n0: mpz  # prover's Paillier modulus
    n0sq: mpz  # N0^2, recomputed here rather than trusted from the key object
    rp: RingPedersenParams  # verifier's (N-hat, s, t)
    commit: Callable[[int, int], mpz]  # s^a t^b mod N-hat through cached fixed-base tables
    level: SecurityLevel


def is_int(value: object) -> bool:
    return isinstance(value, (int, _MPZ)) and not isinstance(value, bool)


def sample_signed(bound: int) -> mpz:
    """Uniform integer in [-bound, bound]."""
    bound = int(bound)
    return mpz(secrets.randbelow(2 * bound + 1) - bound)


def setup(name: str, prover_pk: PaillierPublicKey, verifier_rp: RingPedersen, level: SecurityLevel) -> Setup:
    """Caller-supplied parameters. Wrong types are a local bug (InvalidInput); a too-short N0 is the prover's
    fault (ProofError), since its modulus arrived from it during aux-info."""
    if not isinstance(prover_pk, PaillierPublicKey) or not is_int(prover_pk.n):
        raise InvalidInput(f"{name}: prover_pk must be a PaillierPublicKey")
    if not isinstance(verifier_rp, (RingPedersenParams, RingPedersenSecret)):
        raise InvalidInput(f"{name}: verifier_rp must be RingPedersenParams or RingPedersenSecret")
    try:
        lv = as_level(level)
    except ValueError:
        raise InvalidInput(f"{name}: unknown security level") from None
    rp = verifier_rp.params
    if not (is_int(rp.n) and is_int(rp.s) and is_int(rp.t)):
        raise InvalidInput(f"{name}: malformed ring-Pedersen parameters")
    rp = RingPedersenParams(mpz(rp.n), mpz(rp.s), mpz(rp.t))
    if not rp.is_well_formed():
        raise InvalidInput(f"{name}: malformed ring-Pedersen parameters")
    n0 = mpz(prover_pk.n)
    # the notes: reject any N shorter than the level demands (range proofs are unsound for small N0)
    require(n0 % 2 == 1 and n0.bit_length() >= lv.modulus_bits, f"{name}.modulus_N0", "too short or even")
    # fixed-base tables beat both plain powmods (~5x) and the RingPedersenSecret's CRT `commit` (~2x), so both
    # sides use them; the secret is accepted for the interface's sake and its CRT would be the slower path
    return Setup(n0, n0 * n0, rp, lambda a, b: rp_commit(rp, a, b), lv)


def prover_setup(
    name: str,
    prover_pk: PaillierPublicKey,
    verifier_rp: RingPedersen,
    level: SecurityLevel,
    prover_sk: PaillierSecretKey | None,
    rho: object,
) -> Setup:
    """Setup for the prover, plus the witness checks its arithmetic needs (rho a unit, so rho^e exists for e < 0).
    Raises InvalidInput: these are local mistakes, not a peer's."""
    if prover_sk is not None:
        if not isinstance(prover_sk, PaillierSecretKey) or prover_sk.public.n != prover_pk.n:
            raise InvalidInput(f"{name}: prover_sk does not match prover_pk")
    st = setup(name, prover_pk, verifier_rp, level)
    if not is_int(rho) or not (0 < rho < st.n0 and gmpy2.gcd(mpz(rho), st.n0) == 1):
        raise InvalidInput(f"{name}: rho must be a unit mod N0")
    return st


def encrypt(st: Setup, m: int, r: mpz, sk: PaillierSecretKey | None) -> mpz:
    """(1 + N0)^m r^N0 mod N0^2, with (1 + N0)^m = 1 + m N0 (no powmod) and r^N0 by CRT when the key is ours."""
    r_n = ModN2(sk.public, sk).pow_n(r) if sk is not None else gmpy2.powmod(r, st.n0, st.n0sq)
    return (1 + (mpz(m) % st.n0) * st.n0) * r_n % st.n0sq


def mask_randomness(st: Setup, r: mpz, rho: int, e: int, sk: PaillierSecretKey | None) -> mpz:
    """r rho^e mod N0 (e may be negative: rho is a unit)."""
    rho_e = sk.powmod_n(mpz(rho), e) if sk is not None else gmpy2.powmod(mpz(rho), e, st.n0)
    return r * rho_e % st.n0


def bind_setup(t: Transcript, name: str, st: Setup) -> None:
    """Proof name, level and every setup parameter, so a proof cannot move to other keys or parameters."""
    t.append_bytes("proof", name.encode())
    t.append_bytes("level", st.level.name.encode())
    t.append_ints("bounds", [st.level.ell, st.level.eps])
    t.append_int("N0", st.n0)
    t.append_int("Nhat", st.rp.n)
    t.append_int("s", st.rp.s)
    t.append_int("t", st.rp.t)


def check_types(name: str, fields: dict[str, object]) -> None:
    """Every integer field is an int before any arithmetic: garbage gives ProofError, never TypeError."""
    for field, value in fields.items():
        require_int(value, f"{name}.type_{field}")


def check_ciphertext(name: str, st: Setup, label: str, value: int) -> None:
    """value in Z*_{N0^2} (0, N0^2 and multiples of a factor of N0 are refused)."""
    require_unit(value, st.n0sq, f"{name}.ciphertext_{label}")


def check_rp_unit(name: str, st: Setup, label: str, value: int) -> None:
    """value in Z*_{N-hat}."""
    require_unit(value, st.rp.n, f"{name}.unit_{label}")


def response_bound(st: Setup, inner_bits: int) -> int:
    """Bound on gamma + e mu for gamma in +-2^inner_bits N-hat and mu in +-2^ell N-hat: a DoS cap on the
    ring-Pedersen exponent that no honest response exceeds (the paper sets no range for it)."""
    n_hat = int(st.rp.n)
    return (n_hat << inner_bits) + Q * (n_hat << st.level.ell)


def require_abs_at_most(value: int, bound: int, check: str) -> None:
    require(abs(value) <= bound, check, "response out of range")


def paillier_equation(st: Setup, z1: mpz, z2: mpz, a: mpz, c: mpz, e: int) -> bool:
    """(1 + N0)^z1 z2^N0 == A C^e mod N0^2 (C and A already checked to be units)."""
    lhs = (1 + (z1 % st.n0) * st.n0) * gmpy2.powmod(z2, st.n0, st.n0sq) % st.n0sq
    return lhs == a * gmpy2.powmod(c, e, st.n0sq) % st.n0sq


def rp_equation(st: Setup, z_s: mpz, z_t: mpz, commitment: mpz, s_commit: mpz, e: int) -> bool:
    """s^z_s t^z_t == commitment * s_commit^e mod N-hat (both commitments already checked to be units)."""
    n_hat = st.rp.n
    return st.commit(z_s, z_t) % n_hat == commitment * gmpy2.powmod(s_commit, e, n_hat) % n_hat


# ---------------------------------------------------------------------------------------------------------------
# Pi-enc
# ---------------------------------------------------------------------------------------------------------------


def _challenge(transcript: Transcript, st: Setup, K: mpz, S: mpz, A: mpz, C: mpz) -> int:
    t = transcript.fork()
    bind_setup(t, NAME, st)
    t.append_int("K", K)
    t.append_int("S", S)
    t.append_int("A", A)
    t.append_int("C", C)
    return t.challenge_signed_q("e")


def prove(
    transcript: Transcript,
    *,
    prover_pk: PaillierPublicKey,
    verifier_rp: RingPedersen,
    K: int,
    k: int,
    rho: int,
    level: SecurityLevel,
    prover_sk: PaillierSecretKey | None = None,
) -> Proof:
    """Prove K = Enc_N0(k; rho) with k in +-2^ell. `prover_sk` (optional, the prover's own key) makes r^N0 and
    rho^e use CRT. The witness range is not enforced here: an out-of-range k gives a proof that fails range_z1."""
    st = prover_setup(NAME, prover_pk, verifier_rp, level, prover_sk, rho)
    if not is_int(K) or not is_int(k):
        raise InvalidInput(f"{NAME}: K and k must be integers")
    lv, n_hat = st.level, st.rp.n
    alpha = sample_signed(1 << (lv.ell + lv.eps))
    mu = sample_signed((1 << lv.ell) * n_hat)
    gamma = sample_signed((1 << (lv.ell + lv.eps)) * n_hat)
    r = sample_unit(st.n0)
    S = st.commit(k, mu)
    A = encrypt(st, alpha, r, prover_sk)
    C = st.commit(alpha, gamma)
    e = _challenge(transcript, st, mpz(K), S, A, C)
    z1 = alpha + e * mpz(k)
    z2 = mask_randomness(st, r, rho, e, prover_sk)
    z3 = gamma + e * mu
    return Proof(int(S), int(A), int(C), int(z1), int(z2), int(z3))


def verify(
    transcript: Transcript,
    proof: Proof,
    *,
    prover_pk: PaillierPublicKey,
    verifier_rp: RingPedersen,
    K: int,
    level: SecurityLevel,
) -> None:
    """Return None or raise ProofError naming the failed check."""
    st = setup(NAME, prover_pk, verifier_rp, level)
    require(isinstance(proof, Proof), f"{NAME}.type_proof", "not a pi_enc proof")
    check_types(NAME, {"K": K, "S": proof.S, "A": proof.A, "C": proof.C,
                       "z1": proof.z1, "z2": proof.z2, "z3": proof.z3})
    lv = st.level
    # ranges before membership before equations: cheap rejections first, and no huge exponent is ever used
    require_range(proof.z1, lv.ell + lv.eps, f"{NAME}.range_z1")
    require_abs_at_most(proof.z3, response_bound(st, lv.ell + lv.eps), f"{NAME}.range_z3")
    check_ciphertext(NAME, st, "K", K)
    check_ciphertext(NAME, st, "A", proof.A)
    check_rp_unit(NAME, st, "S", proof.S)
    check_rp_unit(NAME, st, "C", proof.C)
    require_unit(proof.z2, st.n0, f"{NAME}.unit_z2")
    K_, S, A, C = mpz(K), mpz(proof.S), mpz(proof.A), mpz(proof.C)
    z1, z2, z3 = mpz(proof.z1), mpz(proof.z2), mpz(proof.z3)
    e = _challenge(transcript, st, K_, S, A, C)
    # the ring-Pedersen check is the cheaper one (CRT for the verifier's own parameters): run it first
    require(rp_equation(st, z1, z3, C, S, e), f"{NAME}.equation_rp")
    require(paillier_equation(st, z1, z2, A, K_, e), f"{NAME}.equation_enc")
