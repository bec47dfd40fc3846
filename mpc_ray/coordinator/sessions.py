"""Run a protocol among share-holder actors: begin, route sealed envelopes round by round, collect results.

The coordinator only moves `SealedEnvelope`s (signed; direct ones encrypted to their recipient), so it learns
nothing secret. Many sessions of one protocol run side by side in one call per holder per round (batching keeps
the Ray round trips per presignature low).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import ray
from ray.exceptions import GetTimeoutError, RayActorError

from .. import telemetry as tm  # a span per protocol round
from ..errors import PartyUnavailable  # noqa: F401  (old import path)
from ..node.holder import BeginRequest, StepResult
from ..requests.grants import GRANTED_PROTOCOLS, GrantSigner

try:  # Ray >= 2.44
    from ray.exceptions import ActorUnavailableError
except ImportError:  # pragma: no cover
    ActorUnavailableError = RayActorError  # type: ignore[misc,assignment]

UNAVAILABLE = (GetTimeoutError, RayActorError, ActorUnavailableError)


@dataclass
class SessionSpec:
    protocol: str
    parties: list[int]
    params: dict[str, Any]


def new_sid(protocol: str) -> bytes:
    return protocol.encode() + b":" + secrets.token_bytes(16)


def gather(calls: Mapping[int, Any], timeout: float, mark_down: Callable[[int], None] | None = None) -> dict[int, Any]:
    """ray.get on {party: ObjectRef}, every answer read before the first failure is raised (an answer left unread
    is logged by Ray as an unhandled error, although the caller got the refusal): an unavailable party becomes
    PartyUnavailable (after `mark_down(party)`); a holder's own refusal or ProtocolAbort propagates as it is."""
    out: dict[int, Any] = {}
    first: BaseException | None = None
    for party, ref in calls.items():
        try:
            out[party] = ray.get(ref, timeout=timeout)
        except UNAVAILABLE as exc:
            if mark_down is not None:
                mark_down(party)
            first = first or PartyUnavailable(party, type(exc).__name__)
        except Exception as exc:  # noqa: BLE001 - raised below, once the other answers are read
            first = first or exc
    if first is not None:
        raise first
    return out


def route(parties: Sequence[int], sids: Sequence[bytes], results: Mapping[int, list[StepResult]]
          ) -> dict[int, list[tuple[bytes, list[Any]]]]:
    """Each party's step input: for every session, the envelopes of the other parties addressed to it. Only those
    a party's own answer carries in its own name: a holder cannot hand in an envelope under another party's name
    (a bad signature there would name that party)."""
    by_sid = {i: {r.sid: r for r in results[i]} for i in parties}
    return {
        i: [
            (sid, [env for j in parties if j != i for env in by_sid[j][sid].envelopes
                   if env.recipient in (0, i) and env.sender == j])
            for sid in sids
        ]
        for i in parties
    }


def finished(parties: Sequence[int], sids: Sequence[bytes],
             results: Mapping[int, list[StepResult]]) -> dict[bytes, dict[int, Any]] | None:
    """{sid: {party: result}} once every session is done at every party, else None."""
    if not all(r.done for i in parties for r in results[i]):
        return None
    by_sid = {i: {r.sid: r for r in results[i]} for i in parties}
    return {sid: {i: by_sid[i][sid].result for i in parties} for sid in sids}


def run_sessions(
    holders: Mapping[int, Any], spec: SessionSpec, count: int = 1, timeout: float = 30.0,
    sids: Sequence[bytes] | None = None,
    observe: Callable[[int, dict[int, list[StepResult]]], None] | None = None,
    grants: GrantSigner | None = None,
) -> dict[bytes, dict[int, Any]]:
    """Run `count` sessions of one protocol among `spec.parties` on holder actors; {sid: {party: result}}.
    `observe(round, answers)` sees every round's answers (presigning keeps its round-3 broadcasts for
    identification, coordinator/identify.py). `grants`: the coordinator's key, which signs one grant for the
    whole batch where the protocol needs one (presign, aux, identify: requests/grants.py)."""
    sids = list(sids) if sids is not None else [new_sid(spec.protocol) for _ in range(count)]
    parties = sorted(spec.parties)
    reqs = [BeginRequest(spec.protocol, sid, parties, spec.params) for sid in sids]
    args: tuple[Any, ...] = (reqs,)
    if grants is not None and spec.protocol in GRANTED_PROTOCOLS:
        args = (reqs, grants.for_begin(reqs, time.time()))
    try:
        with tm.round_span(spec.protocol, 1, parties, len(sids)):
            results: dict[int, list[StepResult]] = gather({i: holders[i].begin.remote(*args) for i in parties},
                                                           timeout)
        rnd = 1
        if observe is not None:
            observe(rnd, results)
        while (done := finished(parties, sids, results)) is None:
            inputs = route(parties, sids, results)
            rnd += 1
            with tm.round_span(spec.protocol, rnd, parties, len(sids)):
                results = gather({i: holders[i].step.remote(inputs[i]) for i in parties}, timeout)
            if observe is not None:
                observe(rnd, results)
        return done
    except BaseException:
        for i in parties:  # best effort: let the other holders wipe the secrets of the failed sessions now
            try:
                holders[i].drop_sessions.remote(sids)
            except Exception:  # noqa: BLE001 - a dead holder has nothing to drop
                pass
        raise
