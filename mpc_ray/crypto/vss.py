"""Feldman VSS over secp256k1 and Lagrange coefficients.

A t-of-n sharing ("threshold" t = number of signers) is a polynomial of degree t - 1; its commitment vector has
exactly t points. Parties are identified by 1..n; the share of party j is f(j).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .secp256k1 import Q, Point, random_scalar, sum_points


class Polynomial:
    """Secret polynomial over Z_Q. `repr` is redacted."""

    __slots__ = ("coefficients",)

    def __init__(self, coefficients: Sequence[int]) -> None:
        self.coefficients = [c % Q for c in coefficients]

    @classmethod
    def random(cls, degree: int, constant: int | None = None) -> "Polynomial":
        coeffs = [random_scalar() for _ in range(degree + 1)]
        if constant is not None:
            coeffs[0] = constant % Q
        return cls(coeffs)

    def __call__(self, x: int) -> int:
        acc = 0
        for c in reversed(self.coefficients):
            acc = (acc * x + c) % Q
        return acc

    def commitments(self) -> list[Point]:
        return [Point.base_mul(c) for c in self.coefficients]

    def __repr__(self) -> str:
        return f"Polynomial(degree={len(self.coefficients) - 1}, <redacted>)"


def evaluate_commitments(commitments: Sequence[Point], x: int) -> Point:
    """sum_k C_k x^k: the public image f(x) G of a share."""
    terms = []
    power = 1
    for c in commitments:
        terms.append(c * power)
        power = power * x % Q
    return sum_points(terms)


def verify_share(commitments: Sequence[Point], x: int, share: int) -> bool:
    return 0 <= share < Q and Point.base_mul(share) == evaluate_commitments(commitments, x)


def lagrange_coefficient(i: int, signers: Sequence[int], x: int = 0) -> int:
    """lambda_i of the signer set at x (default 0)."""
    if i not in signers:
        raise ValueError("party not in signer set")
    if len(set(signers)) != len(signers):
        raise ValueError("signer set has duplicates")
    num, den = 1, 1
    for j in signers:
        if j != i:
            num = num * (x - j) % Q
            den = den * (i - j) % Q
    return num * pow(den, -1, Q) % Q


@dataclass(frozen=True)
class SharingCommitment:
    points: tuple[Point, ...]

    def public_share(self, x: int) -> Point:
        return evaluate_commitments(self.points, x)
