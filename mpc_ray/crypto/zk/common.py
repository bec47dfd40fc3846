"""Helpers shared by every proof: verifier checks (each raises a named `ProofError`), prover-side input checks
(each raises `InvalidInput`: a local mistake, not a peer's), sampling and the size guards."""

from __future__ import annotations

import functools
import inspect
import secrets
from dataclasses import fields
from typing import Any, Callable, Mapping, NoReturn, TypeGuard, TypeVar

import gmpy2
from gmpy2 import mpz

from ...errors import InvalidInput, ProofError
from ..paillier import PaillierKey, PaillierPublicKey, affine, split_key
from ..params import SecurityLevel
from ..ring_pedersen import RingPedersenParams, RingPedersenSecret
from ..secp256k1 import Q, Point

_MPZ = type(mpz(0))

# --------------------------------------------------------------------------------------------------------------
# verifier checks
# --------------------------------------------------------------------------------------------------------------


def is_int(value: Any) -> TypeGuard[int]:
    """int or mpz, never bool (mpz is an int to mypy: gmpy2 has no types)."""
    return isinstance(value, (int, _MPZ)) and not isinstance(value, bool)


def require(condition: bool, check: str, detail: str = "") -> None:
    if not condition:
        raise ProofError(check, detail)


def require_int(value: Any, check: str) -> None:
    require(is_int(value), check, "not an integer")


def require_abs_at_most(value: Any, bound: int, check: str, detail: str = "out of range") -> None:
    """|value| <= bound."""
    require_int(value, check)
    require(abs(value) <= bound, check, detail)


def require_range(value: Any, bits: int, check: str) -> None:
    """|value| <= 2^bits."""
    require_abs_at_most(value, 1 << bits, check, f"outside +-2^{bits}")


def require_unit(value: Any, n: int, check: str) -> None:
    """value in Z*_n."""
    require_int(value, check)
    require(0 < value < n and gmpy2.gcd(mpz(value), mpz(n)) == 1, check, "not a unit")


def require_ciphertext(value: Any, pk: PaillierPublicKey, check: str) -> None:
    """value in Z*_{N^2}."""
    require_unit(value, pk.n2, check)


def require_scalar(value: Any, check: str) -> None:
    require_int(value, check)
    require(0 <= value < Q, check, "scalar out of range")


def require_point(value: Any, check: str) -> None:
    require(isinstance(value, Point) and not value.is_identity, check, "not a non-identity point")


def require_proof_type(proof: Any, cls: type, name: str) -> None:
    require(isinstance(proof, cls), f"{name}.type_proof", f"not a {name} proof")


def check_types(name: str, values: Mapping[str, object]) -> None:
    """Every named value is an integer before any arithmetic: garbage gives ProofError, never TypeError."""
    for label, value in values.items():
        require_int(value, f"{name}.type_{label}")


def require_fields(proof: Any, cls: type, name: str) -> None:
    """The proof's own type, then every field's, in field order: a str/None/bytes/bool field is a named failure."""
    require_proof_type(proof, cls, name)
    for f in fields(cls):
        value = getattr(proof, f.name)
        tp = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        if tp == "Point":
            require(isinstance(value, Point), f"{name}.type_{f.name}", "not a point")
        else:
            require_int(value, f"{name}.type_{f.name}")


def require_modulus(n: int, level: SecurityLevel, check: str) -> None:
    """A modulus as long as the level demands, so that +-2^(ell'+eps) cannot wrap around N/2."""
    require_int(n, check)
    require(n > 0 and n % 2 == 1 and int(n).bit_length() >= level.modulus_bits, check, "modulus too short")


def z_bound(n_hat: int, level: SecurityLevel) -> mpz:
    """Largest |gamma + e m| an honest prover sends: 2^(ell+eps) N^ + q 2^ell N^ (gamma <- +-2^(ell+eps) N^,
    m <- +-2^ell N^, |e| <= q). Not a check of the paper: a size guard so that a peer cannot make the verifier
    exponentiate by a huge ring-Pedersen response; honest proofs always meet it."""
    n_hat = mpz(n_hat)
    return (n_hat << (level.ell + level.eps)) + Q * (n_hat << level.ell)


def rp_equation(
    verifier_rp: RingPedersenParams | RingPedersenSecret, z_s: int, z_t: int, commitment: int, s_commit: int, e: int
) -> bool:
    """s^z_s t^z_t == commitment * s_commit^e mod N^ (both commitments already checked to be units), with the
    verifier's fastest arithmetic (CRT when it passes its own `RingPedersenSecret`)."""
    n_hat = mpz(verifier_rp.params.n)
    lhs = verifier_rp.fast_commit(z_s, z_t) % n_hat
    return bool(lhs == mpz(commitment) * verifier_rp.pow(mpz(s_commit), e) % n_hat)  # gmpy2 is untyped: Any


def affine_equation(key: PaillierKey, c: mpz | None, z_x: int, z_y: int, w: mpz, a: mpz, d: mpz, e: int) -> bool:
    """c^z_x (1 + N)^z_y w^N == A d^e mod N^2 (c None: the encryption equation (1 + N)^z_y w^N == A d^e). Every
    value already checked to be a unit; `key` computes (by CRT when the verifier owns N)."""
    n2 = key.public.n2
    return bool(affine(key, c, z_x, z_y, w) == mpz(a) * key.powmod_n2(d, e) % n2)  # gmpy2 is untyped: Any


def verifier_keys(
    pk0: PaillierKey, verifier_rp: RingPedersenParams | RingPedersenSecret
) -> tuple[PaillierPublicKey, PaillierKey, RingPedersenParams]:
    """(N0's public key, the key to compute mod N0^2 with, the verifier's ring-Pedersen parameters).

    In CGGMP21 a party's ring-Pedersen parameters share its Paillier modulus, so a verifier that passes its own
    `RingPedersenSecret` (or N0's secret key) checks the N0^2 equation of pi_aff_g and pi_mul_star by CRT as well.
    """
    pub0, key0 = split_key(pk0)
    if isinstance(verifier_rp, RingPedersenSecret) and mpz(verifier_rp.paillier.public.n) == mpz(pub0.n):
        key0 = verifier_rp.paillier
    return pub0, key0, verifier_rp.params


F = TypeVar("F", bound=Callable[..., None])


def guarded(name: str) -> Callable[[F], F]:
    """Decorate a verifier: any stray exception becomes ProofError("<name>.malformed") (never crash on peer
    data); a ProofError passes through. The message names only the exception type, never a value."""

    def decorate(verify: F) -> F:
        signature = inspect.signature(verify)

        @functools.wraps(verify)
        def checked(*args: Any, **kwargs: Any) -> None:
            signature.bind(*args, **kwargs)  # a wrong call stays the caller's TypeError, as without the guard
            try:
                verify(*args, **kwargs)
            except ProofError:
                raise
            except Exception as exc:  # noqa: BLE001 - malformed peer input must surface as a named failure
                raise ProofError(f"{name}.malformed", type(exc).__name__) from None

        return checked  # type: ignore[return-value]

    return decorate


# --------------------------------------------------------------------------------------------------------------
# prover side
# --------------------------------------------------------------------------------------------------------------


def sample_signed(bound: int) -> mpz:
    """Uniform integer in [-bound, bound] (the paper's +-bound)."""
    bound = int(bound)
    return mpz(secrets.randbelow(2 * bound + 1) - bound)


class RangeNonces:
    """The prover's alpha, mu, gamma behind one pair of ring-Pedersen commitments. `repr` is redacted."""

    __slots__ = ("alpha", "mu", "gamma")

    def __init__(self, alpha: mpz, mu: mpz, gamma: mpz) -> None:
        self.alpha, self.mu, self.gamma = alpha, mu, gamma

    def __repr__(self) -> str:
        return "RangeNonces(<redacted>)"


def _sample_range_nonces(n_hat: mpz, alpha_bound: int, level: SecurityLevel) -> RangeNonces:
    return RangeNonces(
        alpha=sample_signed(alpha_bound),
        mu=sample_signed(n_hat << level.ell),
        gamma=sample_signed(n_hat << (level.ell + level.eps)),
    )


def _range_binding(rp: RingPedersenParams, alpha_bound: int, level: SecurityLevel) -> tuple[int, ...]:
    return (int(rp.n), int(rp.s), int(rp.t), int(alpha_bound), level.ell, level.eps)


class PrecomputedRange:
    """The randomness-only half of `range_commitments`, made ahead of use: alpha, mu, gamma sampled exactly as
    there, with D = s^alpha t^gamma and t^mu, for one verifier's (N^, s, t), one alpha bound and one level (what
    `binding` records; `take` refuses any other). With it, S = s^x t^mu costs only s^x. Single use: `take` empties
    it (a reused alpha, gamma answers two challenges and gives the witness away). Secret: `repr` is redacted and
    pickling is refused (protocols/ecdsa/precompute.py keeps these in memory only)."""

    __slots__ = ("binding", "_nonces", "_d", "_t_mu")

    def __init__(self, rp: RingPedersenParams, alpha_bound: int, level: SecurityLevel) -> None:
        self.binding = _range_binding(rp, alpha_bound, level)
        nonces = _sample_range_nonces(mpz(rp.n), alpha_bound, level)
        self._nonces: RangeNonces | None = nonces
        self._d: mpz | None = rp.fast_commit(nonces.alpha, nonces.gamma)
        self._t_mu: mpz | None = rp.fast_commit(0, nonces.mu)

    @property
    def used(self) -> bool:
        return self._nonces is None

    def take(self, rp: RingPedersenParams, alpha_bound: int, level: SecurityLevel) -> tuple[RangeNonces, mpz, mpz]:
        """(nonces, D, t^mu), once; InvalidInput for other parameters, bound or level, or a second take."""
        if _range_binding(rp, alpha_bound, level) != self.binding:
            raise InvalidInput("precomputed range commitment made for other parameters")
        nonces, d, t_mu = self._nonces, self._d, self._t_mu
        if nonces is None or d is None or t_mu is None:
            raise InvalidInput("precomputed range commitment already used")
        self._nonces = self._d = self._t_mu = None
        return nonces, d, t_mu

    def __repr__(self) -> str:
        return f"PrecomputedRange({'used' if self._nonces is None else 'unused'}, <redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("PrecomputedRange holds secret proof nonces and cannot be pickled")


def range_commitments(
    rp: RingPedersenParams, x: mpz, alpha_bound: int, level: SecurityLevel, pre: PrecomputedRange | None = None
) -> tuple[RangeNonces, mpz, mpz]:
    """The ring-Pedersen half of every CGGMP21 range proof, for a witness x against the verifier's (N^, s, t):
    alpha <- +-alpha_bound, mu <- +-2^ell N^, gamma <- +-2^(ell+eps) N^, (S, D) = (s^x t^mu, s^alpha t^gamma).
    Answered by `range_responses`; checked by `rp_equation(z, z_rp, D, S, e)`. With `pre` (made for these
    parameters ahead of time) the nonces, D and t^mu are its, and only s^x is computed here."""
    if pre is not None:
        nonces, d, t_mu = pre.take(rp, alpha_bound, level)
        return nonces, rp.fast_commit(x, 0) * t_mu % mpz(rp.n), d
    nonces = _sample_range_nonces(mpz(rp.n), alpha_bound, level)
    return nonces, rp.fast_commit(x, nonces.mu), rp.fast_commit(nonces.alpha, nonces.gamma)


def range_responses(nonces: RangeNonces, x: mpz, e: int) -> tuple[mpz, mpz]:
    """(z, z_rp) = (alpha + e x, gamma + e mu)."""
    return nonces.alpha + e * x, nonces.gamma + e * nonces.mu


def masked_randomness(key: PaillierKey, r: mpz, rho: int, e: int) -> mpz:
    """r rho^e mod N, the response that opens r^N; rho^e by CRT when `key` is the prover's own secret key."""
    return r * key.powmod_n(mpz(rho), e) % key.public.n


def require_witness_int(value: Any, name: str, what: str) -> mpz:
    if not is_int(value):
        raise InvalidInput(f"{name}: {what} must be an integer")
    return mpz(value)


def require_witness_unit(value: Any, n: int, name: str, what: str) -> mpz:
    """A randomiser must be a unit (rho^e with e < 0 needs its inverse)."""
    if not is_int(value) or not (0 < value < n and gmpy2.gcd(mpz(value), mpz(n)) == 1):
        raise InvalidInput(f"{name}: {what} must be a unit mod N")
    return mpz(value)


def require_input_ciphertext(value: Any, pk: PaillierPublicKey, name: str, what: str) -> mpz:
    """A base ciphertext must be in Z*_{N^2} (C^alpha with alpha < 0 needs its inverse)."""
    if not is_int(value) or not pk.is_valid_ciphertext(mpz(value)):
        raise InvalidInput(f"{name}: {what} must be a ciphertext in Z*_(N^2)")
    return mpz(value)
