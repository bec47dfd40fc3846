"""The one-time pairwise setup of DKLs23 for a committee, as a round party (sans-I/O; `mpc_ray.sim` or the node layer
moves its envelopes).

Every ordered pair (i, j) runs the batched Verified Simplest OT with i as base-OT sender, so i ends as the OT-extension
receiver ("Bob") toward j and j as the extension sender ("Alice", with Delta) toward i; both directions run in the
same rounds. The first round also carries each side's zero-sharing contribution. Every round is direct (pairwise)
only: the node layer encrypts direct messages. Aborts name the peer whose message failed:
"dkls23.base_ot.point_b", ".dlog_proof", ".point_a", ".response", ".opening", ".shape"; "dkls23.zero.contribution".

Output: `{peer: PairSetup}`: the extension sender and receiver states toward that peer and the zero-sharing seeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, NoReturn, Sequence

from ...crypto.ot._common import SEED_BYTES, SecretHolder, abort, u32
from ...crypto.ot.base_ot import (
    KAPPA,
    BaseOTMsg1,
    BaseOTMsg2,
    BaseOTMsg3,
    BaseOTMsg4,
    BaseOTMsg5,
    BaseOTReceiver,
    BaseOTSender,
)
from ...crypto.ot.kos import OTEReceiverSetup, OTESenderSetup
from ...errors import InvalidInput
from ..base import Inbound, Outbox, RoundParty
from ..common import random_seed
from .zero_share import ZeroSeeds, pair_seed


@dataclass(frozen=True)
class SetupMsg1:
    """Round 1, to each peer: my base-OT sender's first message and my zero-sharing contribution."""

    base_ot: BaseOTMsg1
    zero_contribution: bytes


class PairSetup(SecretHolder):
    """What one party keeps toward one peer: `ote_sender` (I am Alice), `ote_receiver` (I am Bob)."""

    __slots__ = ("peer", "ote_sender", "ote_receiver")

    def __init__(self, peer: int, ote_sender: OTESenderSetup, ote_receiver: OTEReceiverSetup) -> None:
        self.peer, self.ote_sender, self.ote_receiver = peer, ote_sender, ote_receiver


class SetupOutput(SecretHolder):
    __slots__ = ("party", "pairs", "zero_seeds")

    def __init__(self, party: int, pairs: dict[int, PairSetup], zero_seeds: ZeroSeeds) -> None:
        self.party, self.pairs, self.zero_seeds = party, pairs, zero_seeds

    def to_secret_bytes(self) -> bytes:
        """For the node's encrypted store only: length-prefixed parts (party, zero seeds, then per peer its sender
        and receiver setups). The in-memory record of used extension ids is not kept: the node keeps it durably."""
        parts = [u32(self.party), self.zero_seeds.to_secret_bytes()]
        for peer in sorted(self.pairs):
            pair = self.pairs[peer]
            parts += [u32(peer), pair.ote_sender.to_secret_bytes(), pair.ote_receiver.to_secret_bytes()]
        return b"".join(len(x).to_bytes(4, "big") + x for x in parts)

    @classmethod
    def from_secret_bytes(cls, data: bytes) -> "SetupOutput":
        if not isinstance(data, (bytes, bytearray)):
            raise InvalidInput("a serialized setup is bytes")
        data, parts, k = bytes(data), [], 0
        while k < len(data):
            n = int.from_bytes(data[k : k + 4], "big")
            if k + 4 + n > len(data):
                raise InvalidInput("truncated DKLs23 setup")
            parts.append(data[k + 4 : k + 4 + n])
            k += 4 + n
        if len(parts) < 2 or (len(parts) - 2) % 3 or len(parts[0]) != 4:
            raise InvalidInput("malformed DKLs23 setup")
        party, pairs = int.from_bytes(parts[0], "big"), {}
        for i in range(2, len(parts), 3):
            peer = int.from_bytes(parts[i], "big")
            sender, receiver = OTESenderSetup.from_secret_bytes(parts[i + 1]), OTEReceiverSetup.from_secret_bytes(
                parts[i + 2])
            if {sender.me, receiver.me} != {party} or {sender.peer, receiver.peer} != {peer} or peer in pairs:
                raise InvalidInput("a pair of the DKLs23 setup names other parties")
            pairs[peer] = PairSetup(peer, sender, receiver)
        zero = ZeroSeeds.from_secret_bytes(parts[1])
        if zero.me != party or set(zero.peers) != set(pairs):
            raise InvalidInput("the zero-sharing seeds do not match the pairs")
        return cls(party, pairs, zero)

    def fresh(self) -> "SetupOutput":
        """A copy as stored, for one session: its own in-memory records of used extension ids, empty (the seeds
        are shared: nothing changes them)."""
        return SetupOutput(self.party, {p: PairSetup(p, s.ote_sender.fresh(), s.ote_receiver.fresh())
                                        for p, s in self.pairs.items()}, self.zero_seeds)

    def without(self, peers: Iterable[int]) -> "SetupOutput":
        """This setup less its pairs (and zero-sharing seeds) with `peers`: what is left after they are retired."""
        gone = set(peers)
        return SetupOutput(self.party, {p: s for p, s in self.pairs.items() if p not in gone},
                           self.zero_seeds.without(gone))


class DKLs23Setup(RoundParty):
    NAME = "dkls23.setup"
    ROUNDS = ((None, SetupMsg1), (None, BaseOTMsg2), (None, BaseOTMsg3), (None, BaseOTMsg4), (None, BaseOTMsg5))

    def __init__(self, sid: bytes, party: int, parties: Sequence[int]) -> None:
        super().__init__(sid, party, parties)
        self._senders = {p: BaseOTSender(self.sid, party, p, KAPPA) for p in self.others}
        self._receivers = {p: BaseOTReceiver(self.sid, party, p, KAPPA) for p in self.others}
        self._contrib = {p: random_seed() for p in self.others}
        self._zero: dict[int, bytes] = {}

    def __repr__(self) -> str:  # holds base-OT secrets
        return f"DKLs23Setup(party={self.party}, <secret redacted>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("DKLs23Setup holds OT secrets and cannot be pickled")

    def round1(self) -> Outbox:
        return Outbox(direct={p: SetupMsg1(self._senders[p].message1(), self._contrib[p]) for p in self.others})

    def round2(self, inbox: dict[int, Inbound]) -> Outbox:
        out = {}
        for p in self.others:
            msg: SetupMsg1 = inbox[p].direct
            if not isinstance(msg.zero_contribution, bytes) or len(msg.zero_contribution) != SEED_BYTES:
                raise abort(p, "zero.contribution", self.party, "not 32 bytes")
            self._zero[p] = pair_seed(self.sid, self.party, p, self._contrib[p], msg.zero_contribution)
            out[p] = self._receivers[p].message2(msg.base_ot)
        return Outbox(direct=out)

    def round3(self, inbox: dict[int, Inbound]) -> Outbox:
        return Outbox(direct={p: self._senders[p].message3(inbox[p].direct) for p in self.others})

    def round4(self, inbox: dict[int, Inbound]) -> Outbox:
        return Outbox(direct={p: self._receivers[p].message4(inbox[p].direct) for p in self.others})

    def round5(self, inbox: dict[int, Inbound]) -> Outbox:
        return Outbox(direct={p: self._senders[p].message5(inbox[p].direct) for p in self.others})

    def round6(self, inbox: dict[int, Inbound]) -> SetupOutput:
        pairs = {}
        for p in self.others:
            self._receivers[p].finish(inbox[p].direct)
            delta, pads = self._receivers[p].output()
            seeds0, seeds1 = self._senders[p].output()
            pairs[p] = PairSetup(
                p,
                OTESenderSetup(self.sid, self.party, p, delta, pads),
                OTEReceiverSetup(self.sid, self.party, p, seeds0, seeds1),
            )
        return SetupOutput(self.party, pairs, ZeroSeeds(self.party, self._zero))
