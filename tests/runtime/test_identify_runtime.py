"""Identification on the runtime: the real `Coordinator` driving in-process share holders (Ray calls replaced by
direct calls, as in test_frost_runtime.py), one of them a test-only holder class whose presigning cheats with a
wrong delta_i and valid proofs. The culprit is named and excluded, signing goes on with the others, an admin
readmits it. Level 112 with TEST ONLY fixture primes (aux info injected into the holders' stores)."""

from __future__ import annotations

import hashlib
import time

import coincurve
import pytest

from mpc_ray import sim
from mpc_ray import telemetry as tm
from mpc_ray.coordinator import identify as cid
from mpc_ray.coordinator.coordinator import Coordinator, CoordinatorConfig
from mpc_ray.coordinator.sessions import PartyUnavailable, finished, new_sid, route
from mpc_ray.crypto.secp256k1 import Q
from mpc_ray.errors import InvalidInput, ProtocolAbort
from mpc_ray.node import identify as nid
from mpc_ray.node.envelope import SealedEnvelope
from mpc_ray.node.holder import BeginRequest, HolderNotReady, ShareHolder, StepResult
from mpc_ray.node.records import aux_to_bytes
from mpc_ray.protocols.base import Outbox
from mpc_ray.protocols.ecdsa.presign import PresignParty, Round3
from mpc_ray.types import Signature
from tests.support.authz import TestPrincipals
from tests.support.primes import fixture_paillier_key
from tests.support.committee import InProcessHandle, get_in_process


# test-only cheaters -------------------------------------------------------------------------------------------
class _WrongDelta(PresignParty):
    """Broadcasts delta_i + 1 in round 3 (every proof stays valid) and uses it itself: its own sums fail too, so
    it answers PresignFailed and takes part in identification like an honest party."""

    def round3(self, inbox):
        out = super().round3(inbox)
        b = out.broadcast
        self._delta_i = (b.delta + 1) % Q
        return Outbox(broadcast=Round3(self._delta_i, b.Delta, b.S, b.echo), direct=out.direct)


class _WrongDeltaQuiet(PresignParty):
    """Broadcasts delta_i + 1 but keeps its true delta_i: its own sums hold, so it answers with a presignature."""

    def round3(self, inbox):
        out = super().round3(inbox)
        b = out.broadcast
        return Outbox(broadcast=Round3((b.delta + 1) % Q, b.Delta, b.S, b.echo), direct=out.direct)


class _CheatingPresign:
    """The presign entry of a CheatingHolder's protocol table: the honest machine, made to cheat as told."""

    def __init__(self, holder):
        self.holder, self.honest = holder, holder.ecdsa

    def machine(self, req):
        m = self.honest.machine(req)
        if self.holder.cheat in ("wrong_delta", "accuse", "refuse"):
            m.__class__ = _WrongDelta
        if self.holder.cheat == "wrong_delta_quiet":
            m.__class__ = _WrongDeltaQuiet
        return m

    def finish(self, session):
        return self.honest.finish(session)


class CheatingHolder(ShareHolder):
    """A holder whose presigning cheats as `cheat` says (None: honest):
    "wrong_delta", "wrong_delta_quiet" (the classes above), "accuse" (wrong_delta, then its identify report names
    its co-signer), "refuse" (wrong_delta, then no identification), "false_alarm" (an honest run answered as
    PresignFailed)."""

    cheat: str | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.protocols["presign"] = _CheatingPresign(self)  # its entry of the protocol table

    def begin(self, requests, grant=None):
        if self.cheat == "refuse" and any(r.protocol == "identify" for r in requests):
            raise HolderNotReady("not today")
        return super().begin(requests, grant)

    def step(self, batches):
        parties = {sid: s.machine.parties for sid, s in self.sessions.items() if hasattr(s.machine, "parties")}
        out = super().step(batches)
        if self.cheat == "accuse":
            out = [StepResult(r.sid, r.envelopes, r.done, nid.IdentifyReport(
                min(p for p in parties[r.sid] if p != self.party), "presign.identify.pi_dec.made_up"))
                if isinstance(r.result, nid.IdentifyReport) else r for r in out]
        if self.cheat == "false_alarm":
            out = [StepResult(r.sid, [], True, nid.PresignFailed("presign.delta_mismatch"))
                   if isinstance(r.result, bytes) else r for r in out]
        return out


DIGEST = hashlib.sha256(b"identified").digest()


@pytest.fixture(scope="module")
def holders(tmp_path_factory):
    root = tmp_path_factory.mktemp("identify")
    hs = {i: (CheatingHolder if i == 2 else ShareHolder)(i, str(root / f"party-{i}"), kdf="min") for i in (1, 2, 3)}
    ids = [h.public_identity() for h in hs.values()]
    for h in hs.values():
        h.set_directory(ids)
    aux = sim.aux_info([1, 2, 3], "112", paillier_keys={i: fixture_paillier_key("112", i) for i in (1, 2, 3)})
    for i, h in hs.items():
        h.store.put("aux", aux_to_bytes(aux[i]))
    principals = TestPrincipals()
    principals.bootstrap(hs.values())
    return hs, principals


@pytest.fixture(scope="module")
def coordinator(holders):
    import ray

    hs, principals = holders

    mp = pytest.MonkeyPatch()
    mp.setattr(ray, "get", get_in_process)
    handles = {p: InProcessHandle(h) for p, h in hs.items()}
    c = Coordinator(CoordinatorConfig(parties=[1, 2, 3], refill=False, pool_depth=4, presign_batch=2,
                                      quorum_wait_s=0.0, security="112",
                                      coordinator_seed=principals.creds.coordinator_seed), "test",
                    holders=handles.__getitem__)
    c.create_key("k1", "ecdsa-secp256k1", 2, principals.keygen_params("k1", 2, [1, 2, 3])["approval"])
    principals.allow_operator(hs.values(), "k1")
    c.principals, c.hs = principals, hs
    yield c
    mp.undo()


@pytest.fixture
def cheat(coordinator):
    """Set party 2's cheat for one test; afterwards it is honest and readmitted, and nothing is left kept."""
    def set_(mode):
        coordinator.hs[2].cheat = mode
    yield set_
    coordinator.hs[2].cheat = None
    coordinator.readmit(2)
    for h in coordinator.hs.values():
        assert not [s for s in h.sessions.values() if s.protocol in ("presign", "identify")], "a run left behind"


def _sign(c, digests):
    sigs = c.sign_many("k1", c.principals.raw("k1", digests))
    pk = coincurve.PublicKey(c.ecdsa.keys["k1"].public_key.to_bytes())
    assert len(sigs) == len(digests)
    for d, (rs, rec) in zip(digests, sigs):
        assert pk.verify(Signature("ecdsa-secp256k1", rs, rec).der(), d, hasher=None)


def test_wrong_delta_is_identified_excluded_and_signing_goes_on(coordinator, cheat):
    c = coordinator
    cheat("wrong_delta")
    before = tm.snapshot()["aborts"]
    with pytest.raises(ProtocolAbort) as e:
        c.presign("k1", (1, 2), 2, worker=None)
    # party 1's identify report names 2 by its Pi-dec for the broadcast delta; 2's own report names nobody
    assert e.value.culprit == 2 and e.value.reporter == 1 and e.value.check.startswith("presign.identify.pi_dec")
    assert c.status()["excluded"] == {2: e.value.check}
    assert tm.snapshot()["aborts"].get(e.value.check, 0) == before.get(e.value.check, 0) + 1  # mpc_aborts_total
    assert c.pool_depths().get("k1:1-2", 0) == 0
    assert c.signer_sets(c.ecdsa.keys["k1"]) == [(1, 2), (1, 3), (2, 3)]  # excluded, not disputed
    _sign(c, [DIGEST, hashlib.sha256(b"two").digest()])  # among 1 and 3, presigned on demand
    assert c.pool_depths()["k1:1-3"] >= 0 and c.pool_depths().get("k1:2-3", 0) == 0
    assert c.readmit(2)["was_excluded"] == e.value.check and c.status()["excluded"] == {}


def test_a_cheater_that_claims_success_is_named_without_identification(coordinator, cheat, monkeypatch):
    c = coordinator
    cheat("wrong_delta_quiet")
    ran = []
    monkeypatch.setattr(cid, "run_identify", lambda *a: ran.append(a))
    with pytest.raises(ProtocolAbort) as e:
        c.presign("k1", (1, 2), 2, worker=None)
    assert (e.value.culprit, e.value.check) == (2, "presign.identify.claimed_success") and not ran
    assert c.status()["excluded"] == {2: "presign.identify.claimed_success"}


def test_a_false_alarm_is_named(coordinator, cheat):
    c = coordinator
    cheat("false_alarm")
    with pytest.raises(ProtocolAbort) as e:
        c.presign("k1", (2, 3), 1, worker=None)
    assert (e.value.culprit, e.value.check) == (2, "presign.identify.claimed_inconsistent")
    assert c.status()["excluded"] == {2: "presign.identify.claimed_inconsistent"}


def test_a_cheater_that_accuses_back_loses_its_sets_then_is_excluded(coordinator, cheat):
    """2-of-3: 1 and 2 name each other, and the coordinator cannot see whose proofs failed: {1, 2} is a dispute and
    that set is not used again; after the same with 3, party 2 is in dispute with 2 = t parties: excluded."""
    c = coordinator
    cheat("accuse")
    with pytest.raises(ProtocolAbort) as e:
        c.presign("k1", (1, 2), 1, worker=None)
    assert (e.value.culprit, e.value.check) == (0, "presign.identify.dispute") and c.status()["excluded"] == {}
    assert tm.snapshot()["aborts"]["presign.identify.dispute"] >= 1
    assert c.status()["disputes"] == [[1, 2]] and c.signer_sets(c.ecdsa.keys["k1"]) == [(1, 3), (2, 3)]
    with pytest.raises(ProtocolAbort) as e:
        c.presign("k1", (2, 3), 1, worker=None)
    assert (e.value.culprit, e.value.check) == (2, "presign.identify.disputes")
    assert c.status()["excluded"] == {2: "presign.identify.disputes"}
    _sign(c, [DIGEST])
    assert c.readmit(2)["disputes_dropped"] == [[1, 2], [2, 3]] and c.status()["disputes"] == []


def test_a_signer_that_will_not_identify_is_marked_down(coordinator, cheat):
    """Refusing identification reads as not answering: marked down for a while (like a crash), not excluded."""
    c = coordinator
    cheat("refuse")
    with pytest.raises(PartyUnavailable) as e:
        c.presign("k1", (1, 2), 1, worker=None)
    assert e.value.party == 2 and not c.health.available(2) and c.status()["excluded"] == {}
    c.health.mark_up(2)


def test_honest_runs_keep_nothing_and_fill_pools(coordinator, cheat):
    c = coordinator
    assert c.presign("k1", (1, 2), 2, worker=None) == 2
    assert c.status()["excluded"] == {}


# the kept run on a holder ---------------------------------------------------------------------------------------
def _run_presign(hs, parties, count=1, principals=None):
    """Presigning driven as the coordinator does; {sid: {party: result}}."""
    sids = [new_sid("presign") for _ in range(count)]
    reqs = [BeginRequest("presign", s, parties, {"key_id": "k1"}) for s in sids]
    res = {i: hs[i].begin(reqs, principals.grant(reqs)) for i in parties}
    while (done := finished(parties, sids, res)) is None:
        inputs = route(parties, sids, res)
        res = {i: hs[i].step(inputs[i]) for i in parties}
    return done


def test_a_kept_run_is_used_once_refused_otherwise_and_expires(coordinator, cheat, monkeypatch):
    hs = coordinator.hs
    cheat("wrong_delta")
    monkeypatch.setattr(nid, "MAX_KEPT", 2)
    out = _run_presign(hs, [1, 2], count=3, principals=coordinator.principals)
    assert all(isinstance(r, nid.PresignFailed) and r.check == "presign.delta_mismatch"
               for res in out.values() for r in res.values())
    kept = {sid: s.machine for sid, s in hs[1].sessions.items() if isinstance(s.machine, nid.KeptPresign)}
    first, second, third = list(out)
    assert set(kept) == {second, third}  # the oldest was wiped to stay within MAX_KEPT
    with pytest.raises(InvalidInput):  # a kept run takes no more messages; trying wipes it
        hs[1].step([(second, [])])
    assert second not in hs[1].sessions and kept[second].failed._k is None
    grant = coordinator.principals.begin  # the coordinator's grant: refused for what it asks, not who asks
    with pytest.raises(HolderNotReady):
        grant(hs[1], [BeginRequest("identify", new_sid("identify"), [1, 2], {"presign_sid": second})])
    with pytest.raises(InvalidInput):  # among other parties than the failed run's: refused, the run stays kept
        grant(hs[1], [BeginRequest("identify", new_sid("identify"), [1, 3], {"presign_sid": third})])
    assert third in hs[1].sessions and kept[third].failed._k is not None
    hs[1].identification.expire(third, kept[third])  # what the KEEP_S timer does
    assert third not in hs[1].sessions and kept[third].failed._k is None
    for h in hs.values():
        h.drop_sessions(list(out))


def test_the_kept_run_is_wiped_after_its_timeout(coordinator, cheat, monkeypatch):
    hs = coordinator.hs
    cheat("wrong_delta")
    monkeypatch.setattr(nid, "KEEP_S", 0.2)
    (sid,) = _run_presign(hs, [1, 2], principals=coordinator.principals)
    machine = hs[1].sessions[sid].machine
    deadline = time.monotonic() + 10
    while any(sid in hs[p].sessions for p in (1, 2)) and time.monotonic() < deadline:  # each has its own timer
        time.sleep(0.05)
    assert sid not in hs[1].sessions and machine.failed._k is None and machine.failed._mta_rand is None


def test_presign_workers_identify_their_own_failed_runs(coordinator, cheat):
    """Refills presign on workers beside the holders: identification runs where the failed run is kept."""
    hs = coordinator.hs
    worker = CheatingHolder(2, str(hs[2].dir), kdf="min", role="worker")
    worker.cheat = "wrong_delta"
    (sid,) = _run_presign({1: hs[1], 2: worker}, [1, 2], principals=coordinator.principals)
    reports = cid.run_identify(coordinator.state, {1: InProcessHandle(hs[1]), 2: InProcessHandle(worker)}, [1, 2], sid)
    assert reports[1].culprit == 2 and reports[1].check.startswith("presign.identify.pi_dec")
    assert reports[2] == nid.IdentifyReport(None) and not worker.sessions and not hs[1].sessions
    with pytest.raises(InvalidInput):  # workers run nothing else
        worker.begin([BeginRequest("keygen", new_sid("keygen"), [1, 2], {})])


# the coordinator's rules, without cryptography -------------------------------------------------------------------
def test_reports_are_weighed_not_trusted():
    R = nid.IdentifyReport
    # t = 3: the majority of the others names 3; 3's own accusation of 1 is outvoted; the check is the reporter's
    conv, acc = cid.judge_reports([1, 2, 3], {1: R(3, "presign.identify.pi_dec.eq"), 2: R(3, "presign.identify.x"),
                                              3: R(1, "presign.identify.y")})
    assert [(a.culprit, a.check, a.reporter) for a in conv] == [(3, "presign.identify.pi_dec.eq", 1)] and acc == []
    # a report about itself or about a stranger counts as naming nobody; a made-up check name is not passed on
    conv, _ = cid.judge_reports([1, 2, 3], {1: R(2, "Not A Check {}"), 2: R(2), 3: R(2, "presign.identify.z")})
    assert [(a.culprit, a.check) for a in conv] == [(2, "presign.identify.report")]
    conv, _ = cid.judge_reports([1, 2, 3], {1: R(3), 2: R(9), 3: R(1)})  # no majority: 2 named nobody
    assert [(a.culprit, a.check) for a in conv] == [(2, "presign.identify.no_culprit")]
    conv, _ = cid.judge_reports([1, 2], {1: R(2, "presign.identify.a"), 2: "garbage"})
    assert [(a.culprit, a.reporter) for a in conv] == [(2, 1)]
    conv, acc = cid.judge_reports([1, 2], {1: R(2), 2: R(1)})  # 2-of-n: a dispute
    assert conv == [] and sorted(acc) == [(1, 2), (2, 1)]


def test_route_relays_only_envelopes_in_their_producers_name():
    def env(sender, recipient):
        return SealedEnvelope(b"s", 1, sender, recipient, "presign", b"x", bytes(64))

    results = {1: [StepResult(b"s", [env(1, 0), env(3, 2)])], 2: [StepResult(b"s", [env(2, 0)])],
               3: [StepResult(b"s", [env(3, 0)])]}
    inputs = route([1, 2, 3], [b"s"], results)
    assert [(e.sender, e.recipient) for e in inputs[2][0][1]] == [(1, 0), (3, 0)]  # 1's forgery as 3 is not relayed
