"""Pairwise zero-sharing (DKLs23 section 3, functionality F_Zero, realised by pairwise seeds and a PRF).

Statement: every pair {i, j} of a committee holds a seed s_ij that only the two know; for a session id and a signer
set S, party i's share is zeta_i = sum_{j in S, j > i} PRF(s_ij, sid, S) - sum_{j in S, j < i} PRF(s_ij, sid, S), so
sum_{i in S} zeta_i = 0 and, while one pair of honest signers keeps its seed, the honest shares are uniform subject
to that sum. DKLs23 adds zeta_i to the key shares so that each session's additive shares are fresh.

Each seed is H(setup id, i, j, c_i, c_j) of one random contribution from each side, so neither side alone fixes it
(an outsider who saw one contribution still does not know the seed). The contributions travel encrypted (the node
layer's direct messages).
"""

from __future__ import annotations

from typing import Iterable

from ...crypto.ot._common import SEED_BYTES, SecretHolder, hash_parts, u32
from ...crypto.secp256k1 import Q
from ...errors import InvalidInput


def pair_seed(setup_id: bytes, me: int, peer: int, mine: bytes, theirs: bytes) -> bytes:
    """The seed of pair {me, peer} from both contributions, the same on both sides."""
    (lo, c_lo), (hi, c_hi) = sorted(((me, mine), (peer, theirs)))
    return hash_parts(b"dkls23/zero/seed", setup_id, u32(lo), u32(hi), c_lo, c_hi)


class ZeroSeeds(SecretHolder):
    """Party `me`'s seeds with every peer of its committee."""

    __slots__ = ("me", "_seeds")

    def __init__(self, me: int, seeds: dict[int, bytes]) -> None:
        if any(p == me or not isinstance(s, bytes) or len(s) != SEED_BYTES for p, s in seeds.items()):
            raise InvalidInput("need one 32-byte seed per peer")
        self.me, self._seeds = me, dict(seeds)

    def to_secret_bytes(self) -> bytes:
        """For the node's encrypted store only: me, then (peer, seed) per peer."""
        return u32(self.me) + b"".join(u32(p) + self._seeds[p] for p in sorted(self._seeds))

    @classmethod
    def from_secret_bytes(cls, data: bytes) -> "ZeroSeeds":
        step = 4 + SEED_BYTES
        if not isinstance(data, (bytes, bytearray)) or len(data) < 4 or (len(data) - 4) % step:
            raise InvalidInput("malformed zero-sharing seeds")
        data = bytes(data)
        seeds = {int.from_bytes(data[k : k + 4], "big"): data[k + 4 : k + step] for k in range(4, len(data), step)}
        if len(seeds) != (len(data) - 4) // step:
            raise InvalidInput("malformed zero-sharing seeds (a peer twice)")
        return cls(int.from_bytes(data[:4], "big"), seeds)

    def without(self, peers: Iterable[int]) -> "ZeroSeeds":
        """The seeds with every peer but `peers`."""
        gone = set(peers)
        return ZeroSeeds(self.me, {p: s for p, s in self._seeds.items() if p not in gone})

    @property
    def peers(self) -> tuple[int, ...]:
        return tuple(sorted(self._seeds))

    def share(self, sid: bytes, signers: list[int] | tuple[int, ...]) -> int:
        """zeta_me for session `sid` among `signers` (which include me and only peers with a seed)."""
        signers = tuple(sorted(signers))
        if self.me not in signers or len(set(signers)) != len(signers):
            raise InvalidInput("signers must be distinct and include this party")
        if any(p != self.me and p not in self._seeds for p in signers):
            raise InvalidInput("no zero-sharing seed with one of the signers")
        label = b"".join(u32(p) for p in signers)
        zeta = 0
        for peer in signers:
            if peer == self.me:
                continue
            v = int.from_bytes(hash_parts(b"dkls23/zero/prf", self._seeds[peer], bytes(sid), label, size=48), "big")
            zeta += v if peer > self.me else -v
        return zeta % Q
