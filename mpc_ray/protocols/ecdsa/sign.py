"""One-round signing with a presignature: sigma_i = k_i m + r chi_i, combined, normalised to low-s, verified.

A combiner (the coordinator) holds only `PresignaturePublic`; if the combined signature does not verify it checks
each partial sigma_i R == m (k_i R) + r (chi_i R) and names the party whose partial fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping

import coincurve

from ...crypto.secp256k1 import Q, Point
from ...errors import InvalidInput, ProtocolAbort
from ...types import Signature
from ..base import Inbound, Outbox, RoundParty
from .presign import PresignaturePublic, PresignatureShare


def digest_to_int(digest: bytes) -> int:
    if not isinstance(digest, (bytes, bytearray)) or len(digest) != 32:
        raise InvalidInput("ECDSA signs a 32-byte digest")
    return int.from_bytes(digest, "big") % Q


def partial_sign(share: PresignatureShare, digest: bytes) -> int:
    """sigma_i. Consumes the presignature share (a second call raises)."""
    m = digest_to_int(digest)
    k, chi = share.take()
    return (k * m + share.public.r * chi) % Q


@lru_cache(maxsize=256)
def _verifier(public_key: bytes) -> coincurve.PublicKey:
    return coincurve.PublicKey(public_key)  # parsed once per key: sign_many verifies thousands under one key


def verify_ecdsa(public_key: Point, digest: bytes, r: int, s: int) -> bool:
    sig = coincurve.ecdsa.cdata_to_der(coincurve.ecdsa.deserialize_compact(r.to_bytes(32, "big") + s.to_bytes(32, "big")))
    return _verifier(public_key.to_bytes()).verify(sig, bytes(digest), hasher=None)


def combine(public: PresignaturePublic, public_key: Point, digest: bytes, partials: Mapping[int, int]) -> Signature:
    """Sum the partial signatures, normalise, verify; on failure name the party whose partial is wrong."""
    m = digest_to_int(digest)
    signers = list(public.signers)
    for j in signers:
        if j not in partials:
            raise ProtocolAbort(j, "sign.missing_partial")
        v = partials[j]
        if not isinstance(v, int) or not 0 <= v < Q:
            raise ProtocolAbort(j, "sign.partial_range")
    r = public.r
    s = sum(partials[j] for j in signers) % Q
    ok = s != 0 and verify_ecdsa(public_key, digest, r, s if s <= Q // 2 else Q - s)
    if not ok:
        for idx, j in enumerate(signers):
            if public.R * partials[j] != public.k_points[idx] * m + public.chi_points[idx] * r:
                raise ProtocolAbort(j, "sign.partial_signature")
        raise ProtocolAbort(signers[0], "sign.verify", "combined signature invalid with valid partials")
    recovery_id = 1 if public.R.has_odd_y() else 0
    if public.R.x() >= Q:  # x(R) overflowed the order: recovery ids 2/3, probability ~2^-128
        raise ProtocolAbort(signers[0], "sign.r_overflow", "x(R) >= q; discard this presignature")
    if s > Q // 2:
        s, recovery_id = Q - s, recovery_id ^ 1
    return Signature.ecdsa(r, s, recovery_id)


@dataclass(frozen=True)
class Partial:
    sigma: int


class SignParty(RoundParty):
    """The signing round as a state machine: broadcast sigma_i, output the combined signature."""

    NAME = "sign"
    ROUNDS = ((Partial, None),)

    def __init__(self, sid: bytes, share: PresignatureShare, public_key: Point, digest: bytes) -> None:
        super().__init__(sid, share.party, share.public.signers)
        digest_to_int(digest)
        self._share, self._public_key, self._digest = share, public_key, bytes(digest)

    def round1(self) -> Outbox:
        self._sigma = partial_sign(self._share, self._digest)
        return Outbox(broadcast=Partial(self._sigma))

    def round2(self, inbox: dict[int, Inbound]) -> Signature:
        partials = {j: m.broadcast.sigma for j, m in inbox.items()}
        partials[self.party] = self._sigma
        return combine(self._share.public, self._public_key, self._digest, partials)
