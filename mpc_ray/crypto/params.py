"""Security levels of the CGGMP21 family (see docs: protocol notes)."""

from __future__ import annotations

from dataclasses import dataclass

from .secp256k1 import Q


@dataclass(frozen=True)
class SecurityLevel:
    name: str
    prime_bits: int  # each safe prime of a Paillier-Blum modulus
    modulus_bits: int  # minimum accepted Paillier N
    m: int  # repetitions of the binary-challenge proofs (pi_mod, pi_prm)
    ell: int = 256
    ell_prime: int = 1280
    eps: int = 512
    production: bool = True


LEVEL_128 = SecurityLevel("128", prime_bits=1536, modulus_bits=3071, m=128)
LEVEL_112 = SecurityLevel("112", prime_bits=1024, modulus_bits=2047, m=80)
LEVELS = {"128": LEVEL_128, "112": LEVEL_112}
DEFAULT_LEVEL = LEVEL_128

assert Q.bit_length() == 256


def level(name: str | int | SecurityLevel) -> SecurityLevel:
    if isinstance(name, SecurityLevel):
        return name
    try:
        return LEVELS[str(name)]
    except KeyError:
        raise ValueError(f"unknown security level {name!r}; choose one of {sorted(LEVELS)}") from None
