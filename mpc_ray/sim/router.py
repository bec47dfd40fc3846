"""Run round-based parties in one process: deliver each round's envelopes, collect outputs.

`tamper` sees every envelope in flight and may return a changed one (or None to drop it): tests use it to play
a malicious party or a lying network.
"""

from __future__ import annotations

from typing import Callable, Mapping

from ..protocols.base import Envelope, RoundParty

Tamper = Callable[[Envelope], Envelope | None]


def run_parties(parties: Mapping[int, RoundParty], tamper: Tamper | None = None) -> dict[int, object]:
    """Drive every party to completion. Every party processes each round, as it would on its own node; then the
    first error (in party order) propagates unchanged, e.g. a ProtocolAbort naming the culprit."""
    in_flight: list[Envelope] = []
    for party in parties.values():
        in_flight.extend(party.start())
    while not all(p.done for p in parties.values()):
        if tamper is not None:
            in_flight = [e for e in (tamper(env) for env in in_flight) if e is not None]
        inboxes: dict[int, list[Envelope]] = {i: [] for i in parties}
        for env in in_flight:
            targets = [env.recipient] if env.recipient is not None else [i for i in parties if i != env.sender]
            for t in targets:
                if t in inboxes:
                    inboxes[t].append(env)
        in_flight = []
        errors: list[Exception] = []
        for i, party in parties.items():
            try:
                in_flight.extend(party.receive(inboxes[i]))
            except Exception as exc:  # noqa: BLE001 - re-raised below once the round is complete
                errors.append(exc)
        if errors:
            raise errors[0]
    return {i: p.output for i, p in parties.items()}
