"""Round-based party state machines (sans-I/O).

A protocol is a subclass of `RoundParty` that declares the message types of each round and implements
``round1()`` and ``round<k+1>(inbox)`` for k = 1..len(ROUNDS); the last handler returns the party's output.
The base class validates every envelope (session id, round, sender, recipient, duplicates, decodability) and
turns anything a peer got wrong into `ProtocolAbort` naming that peer. Moving envelopes is the caller's job:
`mpc_ray.sim` in one process, the node/coordinator actors on Ray.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator, Sequence

from ..errors import ProofError, ProtocolAbort
from .wire import WireError, decode, encode


@dataclass(frozen=True)
class Envelope:
    """One message on the wire. `recipient` None means broadcast. Signing/encryption is the node layer's job."""

    sid: bytes
    round: int
    sender: int
    recipient: int | None
    payload: bytes


@dataclass
class Outbox:
    """What a round sends: at most one broadcast message and one direct message per peer."""

    # Any, not Any | None (like Inbound): None means no broadcast, and `_emit` checks the rest against ROUNDS
    broadcast: Any = None
    direct: dict[int, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Inbound:
    # Any, not Any | None: a handler reads only what its round declares, and the base class checked that it arrived
    broadcast: Any
    direct: Any


class RoundParty:
    NAME: ClassVar[str]
    # (broadcast type or None, direct type or None) for each round 1..R
    ROUNDS: ClassVar[tuple[tuple[type | None, type | None], ...]]

    def __init__(self, sid: bytes, party: int, parties: Sequence[int]) -> None:
        parties = tuple(sorted(parties))
        if len(set(parties)) != len(parties) or party not in parties:
            raise ValueError("party must be one of distinct parties")
        if not sid:
            raise ValueError("session id must not be empty")
        self.sid = bytes(sid)
        self.party = party
        self.parties = parties
        self.others = tuple(p for p in parties if p != party)
        self._waiting_for = 0  # the round whose messages we expect next
        self.output: Any = None
        self.done = False

    def round1(self) -> Outbox:
        """This party's round-1 messages; each later round k is `round{k}(inbox)`, found by name in `receive`."""
        raise NotImplementedError

    # driving ------------------------------------------------------------------------------------------
    def start(self) -> list[Envelope]:
        if self._waiting_for != 0:
            raise RuntimeError("already started")
        return self._emit(1, self.round1())

    def receive(self, envelopes: Sequence[Envelope]) -> list[Envelope]:
        """Feed all messages of the current round addressed to this party; returns the next round's."""
        r = self._waiting_for
        if r == 0 or self.done:
            raise RuntimeError("not expecting messages")
        btype, dtype = self.ROUNDS[r - 1]
        got: dict[int, dict[str, Any]] = {p: {} for p in self.others}
        for env in envelopes:
            sender = env.sender
            if sender not in got:
                raise ProtocolAbort(sender, f"{self.NAME}.unknown_sender", reporter=self.party)
            if env.sid != self.sid:
                raise ProtocolAbort(sender, f"{self.NAME}.wrong_session", reporter=self.party)
            if env.round != r:
                raise ProtocolAbort(sender, f"{self.NAME}.wrong_round", reporter=self.party)
            kind = "broadcast" if env.recipient is None else "direct"
            if env.recipient is not None and env.recipient != self.party:
                raise ProtocolAbort(sender, f"{self.NAME}.misaddressed", reporter=self.party)
            tp = btype if kind == "broadcast" else dtype
            if tp is None or kind in got[sender]:
                raise ProtocolAbort(sender, f"{self.NAME}.round{r}.unexpected_{kind}", reporter=self.party)
            try:
                got[sender][kind] = decode(env.payload, tp)
            except WireError as exc:
                raise ProtocolAbort(sender, f"{self.NAME}.round{r}.decode", str(exc), reporter=self.party) from None
        inbox = {}
        for sender, msgs in got.items():
            for kind, tp in (("broadcast", btype), ("direct", dtype)):
                if tp is not None and kind not in msgs:
                    raise ProtocolAbort(sender, f"{self.NAME}.round{r}.missing_{kind}", reporter=self.party)
            inbox[sender] = Inbound(msgs.get("broadcast"), msgs.get("direct"))
        result = getattr(self, f"round{r + 1}")(inbox)
        if r == len(self.ROUNDS):
            self.output = result
            self.done = True
            self._waiting_for = -1
            return []
        return self._emit(r + 1, result)

    def _emit(self, r: int, out: Outbox) -> list[Envelope]:
        btype, dtype = self.ROUNDS[r - 1]
        envs = []
        if btype is not None:
            if not isinstance(out.broadcast, btype):
                raise TypeError(f"round {r} broadcast must be {btype.__name__}")
            envs.append(Envelope(self.sid, r, self.party, None, encode(out.broadcast)))
        if dtype is not None:
            if set(out.direct) != set(self.others):
                raise TypeError(f"round {r} must send one direct message to every peer")
            for peer in self.others:
                envs.append(Envelope(self.sid, r, self.party, peer, encode(out.direct[peer])))
        self._waiting_for = r
        return envs

    # helpers for subclasses ---------------------------------------------------------------------------
    @contextmanager
    def blame(self, culprit: int) -> Iterator[None]:
        """Turn a failed proof or invalid value from `culprit` into an abort that names it."""
        try:
            yield
        except ProofError as exc:
            raise ProtocolAbort(culprit, f"{self.NAME}.{exc.check}", exc.detail, reporter=self.party) from None

    def abort(self, culprit: int, check: str, detail: str = "") -> ProtocolAbort:
        return ProtocolAbort(culprit, f"{self.NAME}.{check}", detail, reporter=self.party)
