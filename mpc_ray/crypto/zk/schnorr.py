"""Schnorr proof of knowledge of x with X = x G (optionally over another base)."""

from __future__ import annotations

from dataclasses import dataclass

from ..secp256k1 import Q, Point, random_scalar
from ..transcript import Transcript
from .common import require, require_point, require_scalar

NAME = "schnorr"


@dataclass(frozen=True)
class Commitment:
    """First message A = alpha G; may be sent a round before the challenge is known."""

    a: Point


@dataclass(frozen=True)
class Proof:
    a: Point
    z: int


class Nonce:
    """The prover's secret alpha. `repr` redacted."""

    __slots__ = ("alpha",)

    def __init__(self) -> None:
        self.alpha = random_scalar()

    def commitment(self, base: Point | None = None) -> Commitment:
        return Commitment((base or Point.generator()) * self.alpha)

    def __repr__(self) -> str:
        return "schnorr.Nonce(<redacted>)"


def _challenge(transcript: Transcript, x_pub: Point, a: Point, base: Point) -> int:
    t = transcript.fork()
    t.append_bytes("proof", NAME.encode())
    t.append_point("base", base)
    t.append_point("X", x_pub)
    t.append_point("A", a)
    return t.challenge_scalar("e")


def prove(transcript: Transcript, x: int, x_pub: Point, nonce: Nonce | None = None, base: Point | None = None) -> Proof:
    base = base or Point.generator()
    nonce = nonce or Nonce()
    a = base * nonce.alpha
    e = _challenge(transcript, x_pub, a, base)
    return Proof(a, (nonce.alpha + e * x) % Q)


def verify(transcript: Transcript, proof: Proof, x_pub: Point, base: Point | None = None) -> None:
    base = base or Point.generator()
    require_point(proof.a, "schnorr.commitment")
    require_point(x_pub, "schnorr.statement")
    require_scalar(proof.z, "schnorr.range_z")
    e = _challenge(transcript, x_pub, proof.a, base)
    require(base * proof.z == proof.a + x_pub * e, "schnorr.equation")
