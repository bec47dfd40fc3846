"""Batched Verified Simplest OT (Doerner, Kondi, Lee, shelat 2018, "Secure Two-party Threshold ECDSA from ECDSA
Assumptions", Protocol 7 "VSOT"; the base OT that DKLs19 and DKLs23 use) over secp256k1.

Statement: the sender ends with `count` pairs of random 32-byte pads (rho0_i, rho1_i); the receiver, with choice
bits omega_i, ends with rho{omega_i}_i and learns nothing of the other pad; the sender learns nothing of omega.

    1. S -> R  B = b G and a Schnorr proof of b (bound to session, sender, receiver).
    2. R -> S  A_i = a_i G + omega_i B for every i.         R: rho{omega_i}_i = H(i, A_i, a_i B)
               S: rho0_i = H(i, A_i, b A_i), rho1_i = H(i, A_i, b (A_i - B))
    3. S -> R  challenges xi_i = H'(H'(rho0_i)) xor H'(H'(rho1_i))
    4. R -> S  responses rho'_i = H'(H'(rho{omega_i}_i)) xor omega_i xi_i;   S checks rho'_i = H'(H'(rho0_i))
    5. S -> R  openings H'(rho0_i), H'(rho1_i);   R checks opening{omega_i} = H'(rho{omega_i}_i) and
               H'(opening0) xor H'(opening1) = xi_i

Every hash input carries (session id, sender, receiver, index), so no pad of one instance, pair or session can stand
in for another's. Every received point is checked (on the curve by the decoder, not the identity here) before it is
multiplied; every failed check raises `ProtocolAbort` naming the peer, with a check name "dkls23.base_ot.*".
Sans-I/O: the two classes only turn messages into messages.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import TypeVar

from ...errors import InvalidInput, ProofError
from ..secp256k1 import Point, random_scalar
from ..transcript import Transcript
from ..zk import schnorr
from ._common import SEED_BYTES, SecretHolder, abort, hash_parts, u32

KAPPA = 256  # base OTs per pair and direction: the OT-extension width (computational security parameter)
_TAG_PAD = b"dkls23/base_ot/pad"
_TAG_H1 = b"dkls23/base_ot/h1"  # H' of the verification
_T = TypeVar("_T")


@dataclass(frozen=True)
class BaseOTMsg1:
    """Sender -> receiver: B = b G and a proof of b."""

    b_pub: Point
    proof: schnorr.Proof


@dataclass(frozen=True)
class BaseOTMsg2:
    """Receiver -> sender: A_i = a_i G + omega_i B."""

    a_pubs: list[Point]


@dataclass(frozen=True)
class BaseOTMsg3:
    """Sender -> receiver: the challenges xi_i."""

    challenges: list[bytes]


@dataclass(frozen=True)
class BaseOTMsg4:
    """Receiver -> sender: the responses rho'_i."""

    responses: list[bytes]


@dataclass(frozen=True)
class BaseOTMsg5:
    """Sender -> receiver: the openings H'(rho0_i), H'(rho1_i)."""

    openings0: list[bytes]
    openings1: list[bytes]


def _context(sid: bytes, sender: int, receiver: int) -> bytes:
    return hash_parts(b"dkls23/base_ot/context", bytes(sid), u32(sender), u32(receiver))


def _pad(ctx: bytes, i: int, a_pub: Point, shared: Point) -> bytes:
    return hash_parts(_TAG_PAD, ctx, u32(i), a_pub.to_bytes(), shared.to_bytes(), size=SEED_BYTES)


def _h1(data: bytes) -> bytes:
    return hash_parts(_TAG_H1, data, size=SEED_BYTES)


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def _proof_transcript(ctx: bytes) -> Transcript:
    return Transcript("dkls23/base_ot/dlog").append_bytes("context", ctx)


def _check_party(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value < 2**32:
        raise InvalidInput(f"{what} must be an integer in [1, 2**32)")
    return value


class _Role(SecretHolder):
    __slots__ = ("sid", "me", "peer", "count", "_ctx", "_step")

    def _init(self, sid: bytes, me: int, peer: int, count: int) -> None:
        if not isinstance(sid, (bytes, bytearray)) or not sid:
            raise InvalidInput("session id must be non-empty bytes")
        _check_party(me, "party")
        _check_party(peer, "peer")
        if me == peer:
            raise InvalidInput("an OT needs two distinct parties")
        if not isinstance(count, int) or not 1 <= count <= 4096:
            raise InvalidInput("count must be in [1, 4096]")
        self.sid, self.me, self.peer, self.count = bytes(sid), me, peer, count
        self._step = 0

    def _advance(self, expected: int) -> None:
        if self._step != expected:
            raise RuntimeError("base OT step called out of order")  # a local bug, never a peer's fault
        self._step = expected + 1

    def _list(self, values: object, kind: type[_T], check: str) -> list[_T]:
        """A list of exactly `count` values of `kind` from the peer (the wire decoder already checked the types when
        the message came over the wire; this guards direct callers too)."""
        if not isinstance(values, list) or len(values) != self.count or not all(isinstance(v, kind) for v in values):
            raise abort(self.peer, check, self.me, f"expected {self.count} values")
        return values

    def _seeds(self, values: object, check: str) -> list[bytes]:
        values = self._list(values, bytes, check)
        if any(len(v) != SEED_BYTES for v in values):
            raise abort(self.peer, check, self.me, "wrong length")
        return values


class BaseOTSender(_Role):
    """The sender of `count` random OTs with `peer`; `output()` gives the pad pairs after `message5`."""

    __slots__ = ("_b", "_b_pub", "_pads0", "_pads1", "_done")

    def __init__(self, sid: bytes, me: int, peer: int, count: int = KAPPA) -> None:
        self._init(sid, me, peer, count)
        self._ctx = _context(self.sid, me, peer)
        self._b = random_scalar()
        self._b_pub = Point.base_mul(self._b)
        self._pads0: list[bytes] = []
        self._pads1: list[bytes] = []
        self._done = False

    def message1(self) -> BaseOTMsg1:
        self._advance(0)
        return BaseOTMsg1(self._b_pub, schnorr.prove(_proof_transcript(self._ctx), self._b, self._b_pub))

    def message3(self, msg: BaseOTMsg2) -> BaseOTMsg3:
        self._advance(1)
        if not isinstance(msg, BaseOTMsg2):
            raise abort(self.peer, "base_ot.shape", self.me, "not a BaseOTMsg2")
        a_pubs = self._list(msg.a_pubs, Point, "base_ot.shape")
        for a_pub in a_pubs:
            if a_pub.is_identity:  # a_i G + omega_i B is the identity only for a receiver who knows b or a_i = 0
                raise abort(self.peer, "base_ot.point_a", self.me, "identity")
        b_b = self._b_pub * self._b  # b B, so that b (A_i - B) = b A_i - b B costs one multiplication
        challenges = []
        for i, a_pub in enumerate(a_pubs):
            shared0 = a_pub * self._b
            rho0, rho1 = _pad(self._ctx, i, a_pub, shared0), _pad(self._ctx, i, a_pub, shared0 - b_b)
            self._pads0.append(rho0)
            self._pads1.append(rho1)
            challenges.append(_xor(_h1(_h1(rho0)), _h1(_h1(rho1))))
        return BaseOTMsg3(challenges)

    def message5(self, msg: BaseOTMsg4) -> BaseOTMsg5:
        self._advance(2)
        if not isinstance(msg, BaseOTMsg4):
            raise abort(self.peer, "base_ot.shape", self.me, "not a BaseOTMsg4")
        responses = self._seeds(msg.responses, "base_ot.shape")
        ok = True
        for rho0, response in zip(self._pads0, responses):
            ok &= hmac.compare_digest(response, _h1(_h1(rho0)))  # all compared: no early exit on secret data
        if not ok:
            raise abort(self.peer, "base_ot.response", self.me, "a response does not match its challenge")
        self._done = True
        return BaseOTMsg5([_h1(r) for r in self._pads0], [_h1(r) for r in self._pads1])

    def output(self) -> tuple[list[bytes], list[bytes]]:
        """(rho0_i, rho1_i) for every i; only after the receiver's responses passed."""
        if not self._done:
            raise RuntimeError("base OT sender has not finished")
        return list(self._pads0), list(self._pads1)


class BaseOTReceiver(_Role):
    """The receiver of `count` random OTs from `peer` with choice bits `choices` (bit i = omega_i; random if None)."""

    __slots__ = ("choices", "_pads", "_challenges", "_done")

    def __init__(self, sid: bytes, me: int, peer: int, count: int = KAPPA, choices: int | None = None) -> None:
        self._init(sid, me, peer, count)
        if choices is None:
            choices = secrets.randbits(count)
        if not isinstance(choices, int) or isinstance(choices, bool) or not 0 <= choices < 1 << count:
            raise InvalidInput("choices must be a count-bit integer")
        self._ctx = _context(self.sid, peer, me)
        self.choices = choices
        self._pads: list[bytes] = []
        self._done = False

    def message2(self, msg: BaseOTMsg1) -> BaseOTMsg2:
        self._advance(0)
        if not isinstance(msg, BaseOTMsg1) or not isinstance(msg.b_pub, Point):
            raise abort(self.peer, "base_ot.shape", self.me, "not a BaseOTMsg1")
        b_pub = msg.b_pub
        if b_pub.is_identity:
            raise abort(self.peer, "base_ot.point_b", self.me, "identity")
        try:
            if not isinstance(msg.proof, schnorr.Proof):
                raise ProofError("schnorr.type_proof")
            schnorr.verify(_proof_transcript(self._ctx), msg.proof, b_pub)
        except ProofError as exc:
            raise abort(self.peer, "base_ot.dlog_proof", self.me, exc.check) from None
        a_pubs = []
        for i in range(self.count):
            a = random_scalar()
            a_pub = Point.base_mul(a)
            if (self.choices >> i) & 1:
                a_pub = a_pub + b_pub
            self._pads.append(_pad(self._ctx, i, a_pub, b_pub * a))
            a_pubs.append(a_pub)
        return BaseOTMsg2(a_pubs)

    def message4(self, msg: BaseOTMsg3) -> BaseOTMsg4:
        self._advance(1)
        if not isinstance(msg, BaseOTMsg3):
            raise abort(self.peer, "base_ot.shape", self.me, "not a BaseOTMsg3")
        self._challenges = self._seeds(msg.challenges, "base_ot.shape")
        responses = []
        for i, (rho, xi) in enumerate(zip(self._pads, self._challenges)):
            r = _h1(_h1(rho))
            responses.append(_xor(r, xi) if (self.choices >> i) & 1 else r)
        return BaseOTMsg4(responses)

    def finish(self, msg: BaseOTMsg5) -> None:
        self._advance(2)
        if not isinstance(msg, BaseOTMsg5):
            raise abort(self.peer, "base_ot.shape", self.me, "not a BaseOTMsg5")
        open0 = self._seeds(msg.openings0, "base_ot.shape")
        open1 = self._seeds(msg.openings1, "base_ot.shape")
        ok = True
        for i, rho in enumerate(self._pads):
            mine = open1[i] if (self.choices >> i) & 1 else open0[i]
            ok &= hmac.compare_digest(mine, _h1(rho))
            ok &= hmac.compare_digest(_xor(_h1(open0[i]), _h1(open1[i])), self._challenges[i])
        if not ok:
            raise abort(self.peer, "base_ot.opening", self.me, "an opening does not match the pad or challenge")
        self._done = True

    def output(self) -> tuple[int, list[bytes]]:
        """(choice bits, rho{omega_i}_i for every i); only after the sender's openings passed."""
        if not self._done:
            raise RuntimeError("base OT receiver has not finished")
        return self.choices, list(self._pads)
