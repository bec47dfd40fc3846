"""Feldman VSS and Lagrange coefficients over any prime-order group (secp256k1 unless told otherwise).

A t-of-n sharing ("threshold" t = number of signers) is a polynomial of degree t - 1; its commitment vector has
exactly t points. Parties are identified by 1..n; the share of party j is f(j).

Every function works over the scalars mod `order` (default: secp256k1's Q) and, where points appear, over a
`group`: anything with `base_mul(k)` and `identity()`, such as a FROST suite's `Group` or a point class (secp256k1
`Point` by default). ECDSA uses the defaults; `frost_suites` passes its group and order.
"""

from __future__ import annotations

import secrets
from typing import Any, Protocol, Sequence

from ..errors import InvalidInput
from .secp256k1 import Q, Point


class GroupLike(Protocol):
    """What VSS needs of a group: its generator's multiples and its identity."""

    def base_mul(self, k: int) -> Any: ...

    def identity(self) -> Any: ...


def random_coefficients(degree: int, constant: int | None, order: int) -> list[int]:
    """degree + 1 uniform non-zero scalars mod `order` from the OS CSPRNG; the first is `constant` if given."""
    coeffs: list[int] = []
    while len(coeffs) <= degree:
        k = secrets.randbelow(order)
        if k:
            coeffs.append(k)
    if constant is not None:
        coeffs[0] = constant % order
    return coeffs


class Polynomial:
    """Secret polynomial over Z_order (coefficient 0 is the secret). `repr` is redacted."""

    __slots__ = ("coefficients", "order")

    def __init__(self, coefficients: Sequence[int], order: int = Q) -> None:
        self.order = order
        self.coefficients = [c % order for c in coefficients]

    @classmethod
    def random(cls, degree: int, constant: int | None = None, *, order: int = Q) -> "Polynomial":
        return cls(random_coefficients(degree, constant, order), order)

    def __call__(self, x: int) -> int:
        acc = 0
        for c in reversed(self.coefficients):
            acc = (acc * x + c) % self.order
        return acc

    def commitments(self, group: GroupLike = Point) -> list[Any]:
        """C_k = a_k G for every coefficient (the Feldman commitment vector)."""
        return [group.base_mul(c) for c in self.coefficients]

    def wipe(self) -> None:
        """Drop the coefficients once they are no longer needed."""
        self.coefficients = []

    def __repr__(self) -> str:
        return f"{type(self).__name__}(degree={len(self.coefficients) - 1}, <redacted>)"


def evaluate_commitments(commitments: Sequence[Any], x: int, *, group: GroupLike = Point) -> Any:
    """sum_k C_k x^k (Horner): the public image f(x) G of the share at x."""
    acc = group.identity()
    for c in reversed(commitments):
        acc = acc * x + c
    return acc


def verify_share(commitments: Sequence[Any], x: int, share: int, *, group: GroupLike = Point, order: int = Q) -> bool:
    return 0 <= share < order and group.base_mul(share) == evaluate_commitments(commitments, x, group=group)


def lagrange_coefficient(i: int, signers: Sequence[int], x: int = 0, *, order: int = Q) -> int:
    """lambda_i of the signer set at x (default 0), mod `order` (RFC 9591 derive_interpolating_value).

    Raises InvalidInput (a ValueError) when i is not a signer or the set has duplicates."""
    if i not in signers:
        raise InvalidInput("party not in signer set")
    if len(set(signers)) != len(signers):
        raise InvalidInput("signer set has duplicates")
    num, den = 1, 1
    for j in signers:
        if j != i:
            num = num * (x - j) % order
            den = den * (i - j) % order
    return num * pow(den, -1, order) % order
