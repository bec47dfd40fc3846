"""Issue 14: presigning, aux-info and identification sessions and FROST nonce commitments start only on a grant the
committee's coordinator signed (its key announced with the directory, replaced only with the admin quorum), are
rate-limited per key, and a refused grant starts and consumes nothing."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest

from mpc_ray.client.credentials import Credentials
from mpc_ray.coordinator.coordinator import CoordinatorConfig
from mpc_ray.coordinator.sessions import new_sid
from mpc_ray.errors import InvalidInput, PolicyDenied, Unauthorized
from mpc_ray.node import session_gate
from mpc_ray.node.audit import iter_records
from mpc_ray.node.holder import BeginRequest, ShareHolder
from mpc_ray.node.principals import RequestKind
from mpc_ray.requests.grants import (
    MAX_GRANT_TTL_S,
    GrantItem,
    GrantSigner,
    check_grant,
    commit_item,
    grant_digest,
)
from tests.support.committee import keyed_committee


@pytest.fixture(scope="module")
def c(tmp_path_factory):
    """A committee with ECDSA key k1 and FROST key f1, this module's own."""
    with keyed_committee(tmp_path_factory.mktemp("grants")) as c:
        yield c


@pytest.fixture(autouse=True)
def fresh_gates(c):
    """Each test starts with empty replay sets and full buckets (the module constants as the test set them)."""
    for h in c.holders.values():
        h.authorization.restart()
    yield
    for h in c.holders.values():
        h.drop_sessions(list(h.sessions))


def presign_reqs(parties=(1, 2), key_id="k1", count=2) -> list[BeginRequest]:
    return [BeginRequest("presign", new_sid("presign"), list(parties), {"key_id": key_id}) for _ in range(count)]


def refused(rule: str, fn, *args):
    with pytest.raises(Unauthorized) as e:
        fn(*args)
    assert e.value.rule == rule, e.value
    return e.value


# begin ------------------------------------------------------------------------------------------------------------
def test_a_granted_batch_starts_and_its_grant_is_not_replayed(c):
    h, reqs = c.holders[1], presign_reqs()
    grant = c.principals.grant(reqs)
    out = h.begin(reqs, grant)
    assert [r.sid for r in out] == [r.sid for r in reqs] and {r.sid for r in reqs} <= set(h.sessions)
    c.holders[2].begin(reqs, grant)  # one grant for the whole batch, on every party
    h.drop_sessions([r.sid for r in reqs])
    before = set(h.sessions)
    refused("auth.not_coordinator", h.begin, reqs, grant)  # recorded and sent again: refused, though dropped
    refused("auth.not_coordinator", h.begin, reqs[:1], grant)
    assert set(h.sessions) == before


@pytest.mark.parametrize("protocol", ["presign", "aux", "identify"])
def test_unsigned_or_foreign_grants_start_nothing(c, protocol):
    h = c.holders[1]
    params = {"presign": {"key_id": "k1"}, "aux": {"level": "112"}, "identify": {"presign_sid": b"presign:x"}}
    reqs = [BeginRequest(protocol, new_sid(protocol), [1, 2], params[protocol])]
    stranger = GrantSigner.generate()
    for grant in (None, "grant", stranger.for_begin(reqs, time.time())):
        refused("auth.not_coordinator", h.begin, reqs, grant)
    assert not h.sessions


def test_expired_and_far_future_grants_are_refused(c):
    h, reqs, coord = c.holders[1], presign_reqs(count=1), c.principals.coordinator
    refused("auth.not_coordinator", h.begin, reqs, coord.for_begin(reqs, time.time() - 120))
    refused("auth.not_coordinator", h.begin, reqs, coord.sign([GrantItem.of(
        r.protocol, r.sid, r.parties, r.params) for r in reqs], time.time(), ttl_s=MAX_GRANT_TTL_S + 60))
    assert not h.sessions
    h.begin(reqs, coord.for_begin(reqs, time.time()))  # the same sessions, granted properly


def test_a_grant_covers_exactly_its_sessions(c):
    h, reqs = c.holders[1], presign_reqs()
    grant = c.principals.grant(reqs)
    other = presign_reqs()
    for wrong in (other,  # other sids
                  [*reqs, *other[:1]],  # one session more than granted
                  [dataclasses.replace(r, protocol="aux", params={"level": "112"}) for r in reqs],  # protocol
                  [dataclasses.replace(r, parties=[1, 3]) for r in reqs],  # parties
                  [dataclasses.replace(r, params={"key_id": "f1"}) for r in reqs]):  # params
        refused("auth.not_coordinator", h.begin, wrong, grant)
    assert not h.sessions
    tampered = dataclasses.replace(grant, items=(dataclasses.replace(grant.items[0], parties=(1, 3)),
                                                 *grant.items[1:]))  # what it covers changed: the signature fails
    refused("auth.not_coordinator", h.begin, [dataclasses.replace(reqs[0], parties=[1, 3])], tampered)
    h.begin(reqs, grant)  # untouched, it still starts its own sessions


def test_admin_approved_sessions_need_no_grant_and_aux_reruns_still_need_the_admins(c):
    h = c.holders[1]
    reqs = [BeginRequest("aux", new_sid("aux"), [1, 2, 3], {"level": "112"})]
    e = refused("auth.unsigned", h.begin, reqs, c.principals.grant(reqs))  # granted, but aux info exists
    assert "extend_directory" in str(e)
    refused("auth.unsigned", h.begin, [BeginRequest("refresh", new_sid("refresh"), [1, 2, 3],
                                                    {"key_id": "k1", "epoch": 1})])  # the admins' as before
    assert not h.sessions


def test_workers_take_the_key_from_the_store_and_run_only_presigning(c):
    worker = ShareHolder(1, str(c.holders[1].dir), kdf="min", role="worker")
    assert worker.coordinator_key == c.principals.coordinator.verify_key
    reqs = presign_reqs()
    refused("auth.not_coordinator", worker.begin, reqs)
    worker.begin(reqs, c.principals.grant(reqs))
    worker.drop_sessions([r.sid for r in reqs])
    with pytest.raises(InvalidInput):  # only its holder takes a coordinator key
        worker.set_directory(list(worker.directory.values()), GrantSigner.generate().verify_key)
    with pytest.raises(InvalidInput):  # and only presigning runs on it, granted or not
        reqs = [BeginRequest("aux", new_sid("aux"), [1, 2], {"level": "112"})]
        worker.begin(reqs, c.principals.grant(reqs))


# frost_commit -----------------------------------------------------------------------------------------------------
def test_frost_commit_needs_a_grant_for_this_party_key_and_count(c):
    h, coord = c.holders[1], c.principals.coordinator
    before = h.frost_signer.nonce_count("f1")
    now = time.time()
    for grant in (None, GrantSigner.generate().sign([commit_item(1, "f1", 2)], now),  # unsigned, wrong key
                  coord.sign([commit_item(2, "f1", 2)], now),  # another party
                  coord.sign([commit_item(1, "k1", 2)], now),  # another key
                  coord.sign([commit_item(1, "f1", 3)], now),  # another count
                  coord.sign([commit_item(1, "f1", 2)], now - 120),  # expired
                  coord.for_begin(presign_reqs(parties=(1, 2)), now)):  # another protocol
        refused("auth.not_coordinator", h.frost_commit, "f1", 2, grant)
    grant = coord.sign([commit_item(1, "f1", 2), commit_item(2, "f1", 2)], now)  # one grant for a refill round
    assert len(h.frost_commit("f1", 2, grant)) == 2 and len(c.holders[2].frost_commit("f1", 2, grant)) == 2
    refused("auth.not_coordinator", h.frost_commit, "f1", 2, grant)  # replayed
    assert h.frost_signer.nonce_count("f1") == before + 2


# rate limits ------------------------------------------------------------------------------------------------------
def test_presigning_is_rate_limited_per_key(c, monkeypatch):
    monkeypatch.setattr(session_gate, "PRESIGN_BUCKET", (3, 0.0))
    h = c.holders[1]
    first, second = presign_reqs(count=2), presign_reqs(count=2)
    h.begin(first, c.principals.grant(first))
    grant = c.principals.grant(second)
    e = refused("auth.rate_limited", h.begin, second, grant)  # 2 + 2 > 3: the whole call, nothing started
    assert "rate-limited" in str(e) and not {r.sid for r in second} & set(h.sessions)
    h.begin(second[:1], grant)  # nothing was taken by the refusal: its grant still starts what fits
    third = presign_reqs(count=1)
    refused("auth.rate_limited", h.begin, third, c.principals.grant(third))


def test_frost_nonces_are_rate_limited_per_key_and_the_refusal_consumes_nothing(c, monkeypatch):
    monkeypatch.setattr(session_gate, "NONCE_BUCKET", (5, 0.0))
    h, coord = c.holders[1], c.principals.coordinator
    assert len(c.principals.commit(h, "f1", 4)) == 4
    before = h.frost_signer.nonce_count("f1")
    grant = coord.sign([commit_item(1, "f1", 2)], time.time())
    refused("auth.rate_limited", h.frost_commit, "f1", 2, grant)
    assert h.frost_signer.nonce_count("f1") == before
    assert len(h.frost_commit("f1", 1, coord.sign([commit_item(1, "f1", 1)], time.time()))) == 1  # what is left


def test_stored_presignatures_are_capped_per_key(c, monkeypatch):
    h = c.holders[1]
    monkeypatch.setattr(session_gate, "MAX_STORED_PRESIGNATURES", h.presignature_count("k1") + 1)
    reqs = presign_reqs(count=2)
    with pytest.raises(InvalidInput, match="MAX_STORED_PRESIGNATURES"):
        h.begin(reqs, c.principals.grant(reqs))
    assert not h.sessions
    h.begin(reqs[:1], c.principals.grant(reqs[:1]))  # one more fits


def test_buckets_refill_with_time():
    bucket = session_gate.TokenBucket(10, 5.0, now=100.0)
    bucket.tokens = 0.0
    assert bucket.level(101.0) == 5.0 and bucket.level(200.0) == 10.0  # capped at its capacity
    assert bucket.level(150.0) == 10.0  # a clock that steps back adds nothing


# the coordinator's key ---------------------------------------------------------------------------------------------
def test_the_coordinator_key_is_taken_once_and_replaced_only_by_the_admin_quorum(c):
    h = c.holders[1]
    old, new = c.principals.coordinator, GrantSigner.generate()
    entries = list(h.directory.values())
    with pytest.raises(InvalidInput):  # trust on first use, as the directory: another key is refused
        h.set_directory(entries, new.verify_key)
    h.set_directory(entries, old.verify_key)  # the same one again (a restarted coordinator's setup)
    for request in (None, c.principals.approval(RequestKind.SET_POLICY, verify_key=new.verify_key.hex()),
                    c.principals.raw("k1", [bytes(32)])):
        with pytest.raises(Unauthorized):
            h.set_coordinator(request, new.verify_key)
    with pytest.raises(PolicyDenied) as e:  # approved for another key
        h.set_coordinator(c.principals.approval(RequestKind.SET_COORDINATOR, verify_key="ab" * 32),
                          new.verify_key)
    assert e.value.rule == "admin.params"
    assert h.coordinator_key == old.verify_key
    approval = c.principals.approval(RequestKind.SET_COORDINATOR, verify_key=new.verify_key.hex())
    try:
        h.set_coordinator(approval, new.verify_key)
        assert h.coordinator_key == new.verify_key
        records = [r for r in iter_records(h.dir / "audit.jsonl") if r["kind"] == "set_coordinator"]
        assert records[-1]["decision"] == "allow" and new.verify_key.hex() in json.dumps(records[-1]["intent"])
        reqs = presign_reqs(count=1)
        refused("auth.not_coordinator", h.begin, reqs, old.for_begin(reqs, time.time()))
        h.begin(reqs, new.for_begin(reqs, time.time()))
        worker = ShareHolder(1, str(h.dir), kdf="min", role="worker")  # persisted beside the directory
        assert worker.coordinator_key == new.verify_key
    finally:  # the module's other tests use the first key
        h.set_coordinator(c.principals.approval(RequestKind.SET_COORDINATOR, verify_key=old.verify_key.hex()),
                          old.verify_key)


def test_a_worker_follows_a_replaced_key(c):
    h, old, new = c.holders[2], c.principals.coordinator, GrantSigner.generate()
    worker = ShareHolder(2, str(h.dir), kdf="min", role="worker")
    h.set_coordinator(c.principals.approval(RequestKind.SET_COORDINATOR, verify_key=new.verify_key.hex()),
                      new.verify_key)
    try:
        reqs = presign_reqs(parties=(2, 3), count=1)
        worker.begin(reqs, new.for_begin(reqs, time.time()))  # reads the new key from the store on a mismatch
        worker.drop_sessions([reqs[0].sid])
        reqs = presign_reqs(parties=(2, 3), count=1)
        refused("auth.not_coordinator", worker.begin, reqs, old.for_begin(reqs, time.time()))
    finally:
        h.set_coordinator(c.principals.approval(RequestKind.SET_COORDINATOR, verify_key=old.verify_key.hex()),
                          old.verify_key)


# the grant format (pure) ------------------------------------------------------------------------------------------
def test_malformed_grants_are_refused_not_crashed_on():
    signer = GrantSigner.generate()
    item = GrantItem.of("presign", b"presign:1", [1, 2], {"key_id": "k1"})
    good = signer.sign([item], 1000.0)
    check_grant(good, signer.verify_key, [item], 1000.0)
    bad = [dataclasses.replace(good, items=list(good.items)), dataclasses.replace(good, items=()),
           dataclasses.replace(good, expiry=float(good.expiry)), dataclasses.replace(good, signature=b"x" * 63),
           dataclasses.replace(good, items=("item",)),
           dataclasses.replace(good, items=(dataclasses.replace(item, parties=[1, 2]),)),
           dataclasses.replace(good, items=(dataclasses.replace(item, parties=(0, 2)),)),
           dataclasses.replace(good, items=(dataclasses.replace(item, sid="presign:1"),))]
    for grant in bad:
        with pytest.raises(Unauthorized):
            check_grant(grant, signer.verify_key, [item], 1000.0)
    with pytest.raises(Unauthorized):  # no key set on the node
        check_grant(good, None, [item], 1000.0)


def test_plain_params_are_covered_and_typed():
    a = GrantItem.of("aux", b"aux:1", [1], {"level": "112", "flag": True, "n": 1, "raw": b"\x01", "none": None})
    assert a.encode() != GrantItem.of("aux", b"aux:1", [1], {"level": "112", "flag": 1, "n": 1, "raw": b"\x01",
                                                             "none": None}).encode()  # True is not 1
    assert a.encode() == GrantItem.of("aux", b"aux:1", [1], {"level": "112", "flag": True, "n": 1, "raw": b"\x01",
                                                             "none": None, "approval": object()}).encode()
    assert grant_digest([a.encode()], 5) != grant_digest([a.encode()], 6)


def test_the_coordinator_seed_is_kept_with_the_credentials_and_never_shown(tmp_path):
    creds = Credentials.generate()
    path = tmp_path / "creds.json"
    creds.save(path)
    assert Credentials.from_file(path).coordinator_seed == creds.coordinator_seed
    doc = creds.to_json()
    del doc["coordinator_seed"]  # a file from before: loads, with a fresh seed
    assert len(Credentials.from_json(doc).coordinator_seed) == 32
    assert creds.coordinator_seed.hex() not in repr(creds)
    cfg = CoordinatorConfig(parties=[1, 2], coordinator_seed=creds.coordinator_seed)
    assert creds.coordinator_seed.hex() not in repr(cfg) and "coordinator_seed" not in repr(cfg)
    signer = GrantSigner(creds.coordinator_seed)
    assert creds.coordinator_seed.hex() not in repr(signer)
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(signer)


# the coordinator's refill -------------------------------------------------------------------------------------------
def test_a_rate_limited_holder_reads_as_a_full_pool_to_the_frost_refill(c, monkeypatch):
    import ray

    from mpc_ray.coordinator.coordinator import Coordinator
    from mpc_ray.coordinator.frost_engine import FrostKey
    from mpc_ray.crypto.frost_suites import get_suite
    from mpc_ray.node.frost_records import public_package_from_bytes
    from mpc_ray.node.lifecycle import frost_public_entry
    from tests.support.committee import InProcessHandle, get_in_process

    monkeypatch.setattr(ray, "get", get_in_process)
    monkeypatch.setattr(session_gate, "NONCE_BUCKET", (10_000, 0.0))  # never refilled
    gate = c.holders[1].authorization.gate  # party 1 admits all its nonce pairs of f1 (the grant already checked)
    gate.admit_commit("f1", 10_000, (b"\x01" * 32, int(time.time()) + 60))
    assert gate.tokens_left("nonce", "f1") == 0 and c.holders[2].authorization.gate.tokens_left("nonce", "f1") == 10_000
    handles = {p: InProcessHandle(h) for p, h in c.holders.items()}
    coord = Coordinator(CoordinatorConfig(parties=[1, 2, 3], refill=False, pool_depth=4, pool_low_water=2,
                                          coordinator_seed=c.principals.creds.coordinator_seed), "test",
                        holders=handles.__getitem__)
    pub = public_package_from_bytes(c.holders[1].store.get(frost_public_entry("f1")))
    coord.frost.adopt(FrostKey("f1", "eddsa-ed25519", get_suite("eddsa-ed25519"), pub, b"", 2, [1, 2, 3]))
    assert coord.frost.refill_once() == 8  # parties 2 and 3 filled; party 1 refused
    assert coord.frost.pool_depths() == {"f1:1": 0, "f1:2": 4, "f1:3": 4}
    assert coord.health.available(1) and ("f1", 1) in coord.frost._limited  # not marked down: backs off a while
    assert coord.frost.refill_once() == 0  # and is not asked again at once (no busy loop)
