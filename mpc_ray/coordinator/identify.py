"""Who made a presigning inconsistent: the coordinator's side of identification (CGGMP21 Sec. 4.3).

A holder whose presigning ended in PresignInconsistent answers `PresignFailed` and keeps the run
(node/identify.py). For the first failed session of a batch the coordinator then decides, in this order:

1. The round-3 broadcasts (delta_j, Delta_j, S_j) it relayed are public, and it re-runs round 4's sums on them
   itself (`broadcasts_consistent`). Every honest holder saw exactly those broadcasts, its own among them, so it
   reached the same verdict. A holder that claims the opposite is lying: if the sums fail, one that answered with a
   presignature (`presign.identify.claimed_success`: e.g. it broadcast another delta than its own); if they hold,
   one that answered PresignFailed (`presign.identify.claimed_inconsistent`). No identification is needed then.
2. Otherwise every signer runs `IdentifyParty` on its kept run, in an ``identify`` session routed like any other,
   and reports whom its checks name (`IdentifyReport`). A report is only evidence about the others: an honest
   party's always names a cheater, a cheater's may name anyone, and nobody reports on itself. The party named by a
   strict majority of the other signers is excluded with the reporter's check (e.g. ``presign.identify.pi_dec...``).
   Failing that, a signer that named no other signer although the sums really failed is excluded
   (`presign.identify.no_culprit`): identification is complete, an honest party always names someone.
3. What remains is a dispute: with two signers (2-of-n) each names the other, and the coordinator cannot see whose
   proofs failed (they travel encrypted to their verifier). At least one party of every accusing pair is corrupt,
   so the pair is recorded and never again put in one signer set (dispute control); a party in dispute with at
   least t distinct parties is excluded (`presign.identify.disputes`): were it honest, t parties would be corrupt,
   more than a t-of-n key tolerates. So a cheater that always accuses back loses each of its signer sets in turn.

Exclusion is an availability measure of this coordinator, not a security boundary (the holders check everything
themselves); `Coordinator.readmit` ends it (`PartyHealth`, coordinator/health.py). The coordinator is not a trust
anchor: whoever can call it over Ray could readmit anyway, so readmission takes no admin signature.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import ray

from .. import telemetry as tm
from ..crypto.secp256k1 import Q, Point, sum_points
from ..errors import InvalidInput, MpcError, ProtocolAbort
from ..node.envelope import BROADCAST
from ..node.holder import BeginRequest, StepResult
from ..node.identify import IdentifyReport, PresignFailed
from ..protocols.ecdsa.presign import LogProof, PresignParty, Round3
from ..protocols.wire import WireError, decode
from ..errors import PartyUnavailable
from .sessions import UNAVAILABLE, finished, new_sid, route

if TYPE_CHECKING:
    from .ecdsa_engine import EcdsaKey
    from .health import PartyHealth
    from .state import CoordinatorState

ROUND3 = PresignParty.ROUNDS.index((Round3, LogProof)) + 1  # the round whose broadcast carries delta_i, Delta_i, S_i
_CHECK = re.compile(r"(presign\.identify|envelope)\.[a-z0-9_.]{1,64}")  # what an honest holder's report can name


class BroadcastLog:
    """`run_sessions(observe=...)` for presigning: the round-3 broadcasts as relayed, {sid: {party: [envelope]}}.
    Only envelopes a party's own answer carried in its own name (those are all that `route` relays)."""

    def __init__(self) -> None:
        self.by_sid: dict[bytes, dict[int, list[Any]]] = {}

    def __call__(self, rnd: int, answers: Mapping[int, list[StepResult]]) -> None:
        for party, results in answers.items():
            for r in results:
                for env in r.envelopes:
                    if env.recipient == BROADCAST and env.round == ROUND3 and env.sender == party:
                        self.by_sid.setdefault(r.sid, {}).setdefault(party, []).append(env)


def broadcasts_consistent(broadcasts: Mapping[int, list[Any]], signers: Sequence[int], public_key: Point) -> bool | None:
    """Round 4's sums on the relayed round-3 broadcasts: delta = sum delta_j != 0, delta G = sum Delta_j,
    sum S_j = delta Y. None when they cannot be read (not one decodable broadcast per signer: then no honest holder
    reached its sums either)."""
    r3 = {}
    for p in signers:
        envs = broadcasts.get(p, [])
        if len(envs) != 1:
            return None
        try:
            r3[p] = decode(envs[0].body, Round3)
        except (WireError, ValueError):
            return None
    delta = sum(m.delta for m in r3.values()) % Q
    if delta == 0:
        return False
    if Point.base_mul(delta) != sum_points(m.Delta for m in r3.values()):
        return False
    return sum_points(m.S for m in r3.values()) == public_key * delta


def judge_reports(signers: Sequence[int],
                  reports: Mapping[int, Any]) -> tuple[list[ProtocolAbort], list[tuple[int, int]]]:
    """(convictions, accusations) from the identify reports of one really inconsistent presigning (steps 2-3 of the
    module docstring). Accusations (reporter, accused) only matter when nobody is convicted."""
    parties = sorted(signers)
    named: dict[int, IdentifyReport] = {}
    for v in parties:
        r = reports.get(v)
        if isinstance(r, IdentifyReport) and type(r.culprit) is int and r.culprit in parties and r.culprit != v:
            named[v] = r
    votes = Counter(r.culprit for r in named.values())
    majority = [c for c in parties if 2 * votes[c] > len(parties) - 1]
    if len(majority) == 1:
        c = majority[0]
        v = min(v for v, r in named.items() if r.culprit == c)
        r = named[v]
        check = r.check if isinstance(r.check, str) and _CHECK.fullmatch(r.check) else "presign.identify.report"
        detail = r.detail[:200] if isinstance(r.detail, str) else ""
        return [ProtocolAbort(c, check, detail, reporter=v)], []
    silent = [v for v in parties if v not in named]
    if silent:
        return [ProtocolAbort(v, "presign.identify.no_culprit", "named no other signer although the sums failed")
                for v in silent], []
    return [], [(v, r.culprit) for v, r in named.items()]  # type: ignore[misc]


def settle_presign(state: CoordinatorState, key: EcdsaKey | None, signers: Sequence[int], worker: int | None,
                   out: dict[bytes, dict[int, Any]], log: BroadcastLog) -> tuple[dict[bytes, dict[int, Any]], MpcError | None]:
    """Split a presign batch's results into the good sessions and, if any failed, the error to raise once those are
    pooled: ProtocolAbort naming the convicted party (already excluded); for a dispute, ProtocolAbort(0,
    ``presign.identify.dispute``), naming no party; PartyUnavailable for a signer that did not identify."""
    failed = [sid for sid, res in out.items() if any(isinstance(r, PresignFailed) for r in res.values())]
    if not failed:
        return out, None
    ok = {sid: res for sid, res in out.items() if sid not in failed}
    actors = state.presigners(signers, worker)
    try:
        if key is None:
            raise InvalidInput("presigning for a key this coordinator does not know")
        # one failed session suffices to find a culprit; the others' kept runs are wiped below
        return ok, _judge(state, key.public_key, sorted(signers), actors, failed[0], out[failed[0]], log)
    except MpcError as exc:  # PartyUnavailable (marked down): the good sessions are pooled all the same
        return ok, exc
    finally:
        for p in signers:
            try:
                actors[p].drop_sessions.remote(failed)
            except Exception:  # noqa: BLE001 - a dead holder keeps nothing; a live one wipes it after KEEP_S
                pass


def _judge(state: CoordinatorState, public_key: Point, signers: list[int], actors: Mapping[int, Any], sid: bytes,
           results: dict[int, Any], log: BroadcastLog) -> ProtocolAbort:
    consistent = broadcasts_consistent(log.by_sid.get(sid, {}), signers, public_key)
    if consistent is None:
        tm.metrics.abort("presign.identify.inconclusive")  # counted, but no party to name
        return ProtocolAbort(0, "presign.identify.inconclusive", "the relayed round-3 broadcasts are unreadable")
    claims_failed = {p: isinstance(results.get(p), PresignFailed) for p in signers}
    if consistent:
        liars = [ProtocolAbort(p, "presign.identify.claimed_inconsistent", "the relayed broadcasts sum correctly")
                 for p in signers if claims_failed[p]]
    else:
        liars = [ProtocolAbort(p, "presign.identify.claimed_success", "the relayed broadcasts do not sum correctly")
                 for p in signers if not claims_failed[p]]
    if liars:
        return _convict(state.health, liars)
    reports = run_identify(state, actors, signers, sid)
    convictions, accusations = judge_reports(signers, reports)
    if convictions:
        return _convict(state.health, convictions)
    return _dispute(state.health, signers, accusations)


def _convict(health: PartyHealth, aborts: list[ProtocolAbort]) -> ProtocolAbort:
    for a in aborts:
        health.exclude(a)  # counted in mpc_aborts_total by check, shown in status()["excluded"]
    return aborts[0]


def _dispute(health: PartyHealth, signers: list[int], accusations: list[tuple[int, int]]) -> ProtocolAbort:
    partners = health.dispute(accusations, signers)
    convicted = [ProtocolAbort(p, "presign.identify.disputes", f"accused by or accusing {sorted(partners[p])}")
                 for p in signers if len(partners[p]) >= len(signers)]
    if convicted:
        return _convict(health, convicted)
    pairs = sorted(tuple(sorted(a)) for a in {frozenset(x) for x in accusations})
    tm.metrics.abort("presign.identify.dispute")  # counted; status()["disputes"] lists the pairs
    return ProtocolAbort(0, "presign.identify.dispute", f"signers {pairs} name each other; those sets are not used")


def run_identify(state: CoordinatorState, actors: Mapping[int, Any], signers: list[int],
                 presign_sid: bytes) -> dict[int, Any]:
    """The identify session for one failed presigning, on the actors that ran it: {party: IdentifyReport}. A party
    that does not take part (no answer, an error, not done after its one round) is marked down: PartyUnavailable."""
    sid = new_sid("identify")
    req = BeginRequest("identify", sid, signers, {"presign_sid": presign_sid})
    grant = state.grants.for_begin([req], time.time())  # only the coordinator starts identification (grants.py)
    try:
        with tm.round_span("identify", 1, signers, 1):
            results = _answers(state, sid, {p: actors[p].begin.remote([req], grant) for p in signers})
        inputs = route(signers, [sid], results)
        with tm.round_span("identify", 2, signers, 1):
            results = _answers(state, sid, {p: actors[p].step.remote(inputs[p]) for p in signers})
        done = finished(signers, [sid], results)
        if done is None:
            p = next(p for p in signers if not all(r.done for r in results[p]))
            state.health.mark_down(p)
            raise PartyUnavailable(p, "identification not finished after its round")
        return dict(done[sid])
    except BaseException:
        for p in signers:
            try:
                actors[p].drop_sessions.remote([sid])
            except Exception:  # noqa: BLE001 - a dead holder has nothing to drop
                pass
        raise


def _answers(state: CoordinatorState, sid: bytes, refs: Mapping[int, Any]) -> dict[int, list[StepResult]]:
    out = {}
    for p, ref in refs.items():
        try:
            answer = ray.get(ref, timeout=state.cfg.round_timeout_s)
        except UNAVAILABLE as exc:
            state.health.mark_down(p)
            raise PartyUnavailable(p, type(exc).__name__) from None
        except Exception as exc:  # noqa: BLE001 - refusing identification reads as not answering (a crash does too)
            state.health.mark_down(p)
            raise PartyUnavailable(p, f"identification refused: {type(exc).__name__}") from None
        if not (isinstance(answer, list) and len(answer) == 1 and isinstance(answer[0], StepResult)
                and answer[0].sid == sid and isinstance(answer[0].envelopes, list)):
            state.health.mark_down(p)
            raise PartyUnavailable(p, "malformed identification answer")
        out[p] = answer
    return out
