"""Checks shared by every verifier."""

from __future__ import annotations

import gmpy2
from gmpy2 import mpz

from ...errors import ProofError
from ..secp256k1 import Q, Point


def require(condition: bool, check: str, detail: str = "") -> None:
    if not condition:
        raise ProofError(check, detail)


def require_int(value, check: str) -> None:
    require(isinstance(value, (int, type(mpz(0)))) and not isinstance(value, bool), check, "not an integer")


def require_range(value, bits: int, check: str) -> None:
    """|value| <= 2^bits."""
    require_int(value, check)
    require(abs(value) <= (1 << bits), check, f"outside +-2^{bits}")


def require_unit(value, n, check: str) -> None:
    """value in Z*_n."""
    require_int(value, check)
    require(0 < value < n and gmpy2.gcd(mpz(value), mpz(n)) == 1, check, "not a unit")


def require_scalar(value, check: str) -> None:
    require_int(value, check)
    require(0 <= value < Q, check, "scalar out of range")


def require_point(value, check: str) -> None:
    require(isinstance(value, Point) and not value.is_identity, check, "not a non-identity point")
