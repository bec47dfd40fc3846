"""What Pi-enc, Pi-log* and Pi-dec share: one statement shape and one sigma protocol.

Each proves something about a ciphertext C = (1 + N0)^x rho^N0 mod N0^2 under the prover's key N0, against the
verifier's ring-Pedersen parameters (N-hat, s, t), with the same three moves:

    prover:   alpha <- +-alpha_bound, mu <- +-2^ell N-hat, gamma <- +-2^(ell+eps) N-hat, r <- Z*_N0
              S = s^x t^mu, A = (1 + N0)^alpha r^N0, D = s^alpha t^gamma        (`first_message`)
    response: z1 = alpha + e x, z_enc = r rho^e mod N0, z_rp = gamma + e mu      (`responses`)
    verifier: (1 + N0)^z1 z_enc^N0 = A C^e mod N0^2, s^z1 t^z_rp = D S^e mod N-hat (`check_equations`)

Pi-enc and Pi-log* take alpha_bound = 2^(ell+eps); Pi-dec takes 2^eps B for its plaintext bound B (see pi_dec).
The setup, the input checks and the membership checks are here too, so the three proofs check their inputs
identically.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import gmpy2
from gmpy2 import mpz

from ...errors import InvalidInput
from ..paillier import PaillierNonce, PaillierPublicKey, PaillierSecretKey, nonce_pair
from ..params import SecurityLevel, level as as_level
from ..ring_pedersen import RingPedersenParams, RingPedersenSecret
from ..transcript import Transcript
from .batch import PaillierBatch
from .common import (
    PrecomputedRange,
    RangeNonces,
    affine_equation,
    is_int,
    masked_randomness,
    range_commitments,
    range_responses,
    require,
    require_unit,
    rp_equation,
)

RingPedersen = Union[RingPedersenParams, RingPedersenSecret]


@dataclass(frozen=True)
class Setup:
    """The public parameters both sides use, as mpz, validated once."""

    pk: PaillierPublicKey  # prover's key N0, rebuilt from N0 (N0^2 recomputed rather than trusted from the caller)
    rp: RingPedersenParams  # verifier's (N-hat, s, t)
    holder: RingPedersen  # what computes mod N-hat: `rp` itself, or the verifier's own secret (CRT)
    level: SecurityLevel

    @property
    def n0(self) -> mpz:
        return self.pk.n

    @property
    def n0sq(self) -> mpz:
        return self.pk.n2


def setup(name: str, prover_pk: PaillierPublicKey, verifier_rp: RingPedersen, level: SecurityLevel) -> Setup:
    """Caller-supplied parameters, for the verifier. Wrong types are a local bug (InvalidInput); a too-short N0 is
    the prover's fault (ProofError), since its modulus arrived from it during aux-info. A verifier that passes its
    own `RingPedersenSecret` computes mod N-hat by CRT."""
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
    holder = verifier_rp if isinstance(verifier_rp, RingPedersenSecret) else rp
    return Setup(PaillierPublicKey.from_n(n0), rp, holder, lv)


def prover_setup(
    name: str,
    prover_pk: PaillierPublicKey,
    verifier_rp: RingPedersen,
    level: SecurityLevel,
    prover_sk: PaillierSecretKey | None,
    rho: object,
) -> Setup:
    """Setup for the prover (the verifier's public parameters only), plus the witness checks its arithmetic needs
    (rho a unit, so rho^e exists for e < 0). Raises InvalidInput: these are local mistakes, not a peer's."""
    if prover_sk is not None:
        if not isinstance(prover_sk, PaillierSecretKey) or prover_sk.public.n != prover_pk.n:
            raise InvalidInput(f"{name}: prover_sk does not match prover_pk")
    st = setup(name, prover_pk, verifier_rp, level)
    if not is_int(rho) or not (0 < rho < st.n0 and gmpy2.gcd(mpz(rho), st.n0) == 1):
        raise InvalidInput(f"{name}: rho must be a unit mod N0")
    return Setup(st.pk, st.rp, st.rp, st.level)


def bind_setup(t: Transcript, name: str, st: Setup) -> None:
    """Proof name, level and every setup parameter, so a proof cannot move to other keys or parameters."""
    t.append_bytes("proof", name.encode())
    t.append_bytes("level", st.level.name.encode())
    t.append_ints("bounds", [st.level.ell, st.level.eps])
    t.append_int("N0", st.n0)
    t.append_int("Nhat", st.rp.n)
    t.append_int("s", st.rp.s)
    t.append_int("t", st.rp.t)


# --------------------------------------------------------------------------------------------------------------
# prover
# --------------------------------------------------------------------------------------------------------------


def first_message(
    st: Setup,
    x: mpz,
    alpha_bound: int,
    sk: PaillierSecretKey | None,
    nonce: PaillierNonce | None = None,
    range_pre: PrecomputedRange | None = None,
) -> tuple[RangeNonces, mpz, mpz, mpz, mpz]:
    """Fresh nonces and r, and (S, A, D) = (s^x t^mu, Enc(alpha; r), s^alpha t^gamma). `sk` (the prover's own key,
    optional) makes r^N0 use CRT; (1 + N0)^alpha is 1 + alpha N0, never a powmod. `nonce` (optional, made for N0
    ahead of time: crypto/paillier.py `PaillierNonce`) supplies r and r^N0, so A costs one multiplication;
    `range_pre` (optional, `common.PrecomputedRange` for the verifier's parameters) alpha, mu, gamma, D and t^mu."""
    nonces, S, D = range_commitments(st.rp, x, alpha_bound, st.level, range_pre)
    key = sk or st.pk
    r, rn = nonce_pair(key, nonce)
    A = key.one_plus_n_pow(nonces.alpha) * rn % st.n0sq
    return nonces, r, S, A, D


def responses(
    st: Setup, nonces: RangeNonces, r: mpz, x: mpz, rho: int, e: int, sk: PaillierSecretKey | None
) -> tuple[mpz, mpz, mpz]:
    """(z1, z_enc, z_rp) = (alpha + e x, r rho^e mod N0, gamma + e mu); rho^e by CRT when `sk` is given."""
    z1, z_rp = range_responses(nonces, x, e)
    return z1, masked_randomness(sk or st.pk, r, rho, e), z_rp


# --------------------------------------------------------------------------------------------------------------
# verifier
# --------------------------------------------------------------------------------------------------------------


def check_memberships(
    name: str, st: Setup, c: tuple[str, int], a: int, s: int, d: tuple[str, int], z_enc: tuple[str, int]
) -> None:
    """C and A in Z*_{N0^2}, S and D in Z*_{N-hat}, z_enc in Z*_{N0}; each pair is (label for the check, value).
    0, N0^2 and multiples of a factor of N0 are refused."""
    require_unit(c[1], st.n0sq, f"{name}.ciphertext_{c[0]}")
    require_unit(a, st.n0sq, f"{name}.ciphertext_A")
    require_unit(s, st.rp.n, f"{name}.unit_S")
    require_unit(d[1], st.rp.n, f"{name}.unit_{d[0]}")
    require_unit(z_enc[1], st.n0, f"{name}.unit_{z_enc[0]}")


def check_equations(
    name: str, st: Setup, e: int, z1: mpz, z_enc: mpz, z_rp: mpz, c: mpz, a: mpz, s: mpz, d: mpz,
    batch: PaillierBatch | None = None,
) -> None:
    """s^z1 t^z_rp = D S^e mod N-hat (the cheaper one, CRT when the verifier passed its secret), then
    (1 + N0)^z1 z_enc^N0 = A C^e mod N0^2, or into `batch` instead (crypto/zk/batch.py: the caller checks it)."""
    require(rp_equation(st.holder, z1, z_rp, d, s, e), f"{name}.equation_rp")
    if batch is not None:
        batch.add(st.pk, None, 0, z1, z_enc, a, c, e)
    else:
        require(affine_equation(st.pk, None, 0, z1, z_enc, a, c, e), f"{name}.equation_enc")
